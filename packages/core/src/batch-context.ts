import { z } from 'zod'
import { claimsSchema, type IdctxClaims } from './claims.js'
import type { IdentityContext } from './context.js'

/**
 * The `typ` of a batch-profile token (design, "Batch profile: one signature for every send of
 * one event-loop turn"): one signature over the messages of many calls, whatever their identity
 * contexts. Each message carries its own context record; the token carries none.
 *
 * @example
 * ```ts
 * JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).typ === BATCH_TYP
 * ```
 */
export const BATCH_TYP = 'idctx-batch+jwt'

/**
 * Claims a batch-profile token must carry; a token without one fails with `missing_claim`.
 * `nbf` is optional and `dst` is present when every message of the token has the same one.
 *
 * @example
 * ```ts
 * BATCH_REQUIRED_CLAIMS.includes('sub') // false: the user travels in the context record
 * ```
 */
export const BATCH_REQUIRED_CLAIMS = ['iss', 'aud', 'jti', 'iat', 'exp', 'mh'] as const

/**
 * Per-user claims that live in each message's context record under the batch profile and never
 * in a batch-profile token: a batch token carrying one of them is `malformed`.
 *
 * @example
 * ```ts
 * PER_MESSAGE_CLAIMS.includes('tid') // true
 * ```
 */
export const PER_MESSAGE_CLAIMS = ['sub', 'tid', 'txn', 'pty', 'roles', 'scope', 'act', 'trc'] as const

/**
 * The zod schema of a batch-profile token's claims (applied after the signature): `iss`, `aud`,
 * `jti`, `iat`, `exp`, `mh`, optional `nbf` and `dst`, with the same member rules as
 * {@link claimsSchema}. Unknown claims are dropped, as in the single profile; the per-user claims
 * of {@link PER_MESSAGE_CLAIMS} are refused by the verifier before this schema runs.
 *
 * @example
 * ```ts
 * const claims = batchClaimsSchema.parse(payload)
 * ```
 */
export const batchClaimsSchema = z.object({
  iss: claimsSchema.shape.iss,
  aud: claimsSchema.shape.aud,
  jti: claimsSchema.shape.jti,
  iat: claimsSchema.shape.iat,
  exp: claimsSchema.shape.exp,
  nbf: claimsSchema.shape.nbf,
  dst: claimsSchema.shape.dst,
  mh: claimsSchema.shape.mh,
})

/**
 * The verified claims of a batch-profile token (no per-user claims): `iss`, `aud`, `jti`, `iat`,
 * `exp` (epoch seconds), `mh`, and `nbf`, `dst` when present.
 *
 * @example
 * ```ts
 * const c: BatchClaims = { iss: 'orders', aud: 'shop', jti, iat, exp: iat + 300, mh }
 * ```
 */
export type BatchClaims = z.infer<typeof batchClaimsSchema>

/**
 * `n` of a context record: 16 random bytes in canonical base64url (22 characters, the last one
 * carrying 2 bits and 4 zero bits: A, Q, g or w).
 */
const NONCE = /^[A-Za-z0-9_-]{21}[AQgw]$/

/**
 * The zod schema of a context record: `sub`, `tid`, `txn` and `n` required; `pty`, `roles`,
 * `scope`, `act`, `trc` optional, each with exactly the rules and limits of the claim of the same
 * name ({@link claimsSchema}); no other member.
 *
 * @example
 * ```ts
 * contextRecordSchema.safeParse(JSON.parse(text)).success
 * ```
 */
export const contextRecordSchema = z.strictObject({
  sub: claimsSchema.shape.sub,
  tid: claimsSchema.shape.tid,
  txn: claimsSchema.shape.txn,
  pty: claimsSchema.shape.pty,
  roles: claimsSchema.shape.roles,
  scope: claimsSchema.shape.scope,
  act: claimsSchema.shape.act,
  trc: claimsSchema.shape.trc,
  n: z.string().regex(NONCE),
})

/**
 * One message's identity under the batch profile, as its context record holds it: the RFC 8785
 * canonical JSON of `{sub, tid, txn, pty?, roles?, scope?, act?, trc?, n}`. `act` is the actor
 * chain with the signing issuer on top (as a single-profile token's `act`), `trc` the W3C trace
 * id of the call that produced the message, `n` 16 random bytes (base64url) so that the sibling
 * hashes a proof reveals say nothing of other users' contexts.
 *
 * @example
 * ```ts
 * const record: ContextRecord = {
 *   sub: 'u-7d2f', tid: 'acme', txn: 'b1c9', act: { sub: 'orders' },
 *   trc: '4bf92f3577b34da6a3ce929d0e0e4736', n: 'fJ1x2Yq3u9Q0bKX8s7L2aw',
 * }
 * const claims = mergeBatchClaims(batchClaims, record) // the shape a single-profile token verifies to
 * ```
 */
export interface ContextRecord extends IdentityContext {
  readonly trc?: string | undefined
  readonly n: string
}

/**
 * Required members of a context record: one missing is `missing_claim`.
 *
 * @example
 * ```ts
 * CONTEXT_RECORD_REQUIRED.includes('n') // true
 * ```
 */
export const CONTEXT_RECORD_REQUIRED = ['sub', 'tid', 'txn', 'n'] as const

/**
 * The claims a verified batch-profile message is seen with: the token's `iss`, `aud`, `jti`,
 * `iat`, `exp`, `nbf`, `dst`, `mh` merged with the record's `sub`, `tid`, `txn`, `pty`, `roles`,
 * `scope`, `act`, `trc` — the same shape as a single-profile token's claims (`n` is left out).
 *
 * @example
 * ```ts
 * mergeBatchClaims(tokenClaims, record).sub === record.sub // true
 * ```
 */
export function mergeBatchClaims(token: BatchClaims, record: ContextRecord): IdctxClaims {
  const c: IdctxClaims = {
    iss: token.iss,
    aud: token.aud,
    sub: record.sub,
    tid: record.tid,
    txn: record.txn,
    jti: token.jti,
    iat: token.iat,
    exp: token.exp,
    mh: token.mh,
  }
  if (token.nbf !== undefined) c.nbf = token.nbf
  if (record.pty !== undefined) c.pty = record.pty
  if (record.roles !== undefined) c.roles = [...record.roles]
  if (record.scope !== undefined) c.scope = record.scope
  if (record.act !== undefined) c.act = record.act
  if (token.dst !== undefined) c.dst = token.dst
  if (record.trc !== undefined) c.trc = record.trc
  return c
}
