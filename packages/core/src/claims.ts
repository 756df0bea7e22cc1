import { z } from 'zod'

/**
 * Principal types a token may declare in `pty`.
 *
 * @example
 * ```ts
 * const pty: PrincipalType = 'service'
 * await runWithContext({ sub: 'nightly-export', tid: 'acme', txn, pty }, () => exportInvoices())
 * ```
 */
export type PrincipalType = 'user' | 'service' | 'system'

/**
 * An RFC 8693 actor chain: the current producer, and nested the producers before it.
 *
 * @example
 * ```ts
 * const act: ActorClaim = { sub: 'billing', act: { sub: 'orders' } } // orders → billing
 * actorDepth(act) // 2
 * ```
 */
export interface ActorClaim {
  /** The issuer id of the producer that carried the context. */
  readonly sub: string
  /** The producers before it, the most recent outermost; absent on the first hop. */
  readonly act?: ActorClaim | undefined
}

/**
 * Claims that every idctx token must carry (the design's "required" column); a token without one
 * of them fails with `missing_claim`.
 *
 * @example
 * ```ts
 * REQUIRED_CLAIMS.includes('tid') // true
 * ```
 */
export const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'tid', 'txn', 'jti', 'iat', 'exp', 'mh'] as const

const id = z.string().min(1).max(256)
const seconds = z.number().int().nonnegative().max(2 ** 40)
const actor: z.ZodType<ActorClaim> = z.lazy(() =>
  z.object({ sub: id, act: actor.optional() }).strict(),
)

/**
 * The zod schema of the idctx claim set. Only applied after the signature has been checked.
 * Unknown claims are dropped; `mh` is a base64url SHA-256 (43 characters).
 *
 * @example
 * ```ts
 * const claims = claimsSchema.parse(payload)
 * ```
 */
export const claimsSchema = z.object({
  iss: id,
  aud: id,
  sub: id,
  tid: id,
  txn: id,
  jti: id,
  iat: seconds,
  exp: seconds,
  nbf: seconds.optional(),
  pty: z.enum(['user', 'service', 'system']).optional(),
  roles: z.array(id).max(64).optional(),
  scope: z.string().max(2048).optional(),
  act: actor.optional(),
  dst: z.string().min(1).max(512).optional(),
  mh: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  trc: z.string().regex(/^[0-9a-f]{32}$/).optional(),
})

/**
 * A verified idctx claim set.
 *
 * Times (`iat`, `exp`, `nbf`) are epoch seconds; `mh` is the base64url Merkle root (SHA-256) of
 * the messages the token signs, `trc` a 32-hex W3C trace id.
 *
 * @example
 * ```ts
 * const claims: IdctxClaims = {
 *   iss: 'orders', aud: 'shop', sub: 'u-7d2f', tid: 'acme', txn: 'b1c9', jti: 'Q2hV…',
 *   iat: 1_800_000_000, exp: 1_800_000_300, mh: 'n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg',
 * }
 * if (result.ok) audit.write({ user: result.claims.sub, tenant: result.claims.tid })
 * ```
 */
export type IdctxClaims = z.infer<typeof claimsSchema>

/**
 * Depth of an actor chain (0 when absent).
 *
 * @example
 * ```ts
 * actorDepth({ sub: 'billing', act: { sub: 'orders' } }) // 2
 * ```
 */
export function actorDepth(act: ActorClaim | undefined): number {
  let depth = 0
  for (let a = act; a !== undefined; a = a.act) depth++
  return depth
}
