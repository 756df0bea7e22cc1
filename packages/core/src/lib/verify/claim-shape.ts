import type { BatchClaims } from '../../batch-context.js'
import type { ActorClaim, IdctxClaims } from '../../claims.js'

/**
 * The shape rules of {@link claimsSchema} and {@link batchClaimsSchema}, written out by hand for
 * the uncached verification path, where zod's general machinery cost ~1.5 µs of a ~10 µs
 * overhead per token (bench: `pnpm bench crypto`). zod stays the specification: a property test
 * (test/claim-shape.test.ts) checks that these functions accept, refuse and output exactly what
 * the schemas do, naming the same first claim at fault, over hostile payloads.
 *
 * Each returns the claims (only the schema's members, in its order, unknown ones dropped) or the
 * name of the first member, in schema order, that has the wrong shape.
 */
export type ShapeResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly claim: string }

const MH = /^[A-Za-z0-9_-]{43}$/
const TRC = /^[0-9a-f]{32}$/
const MAX_SECONDS = 2 ** 40
/**
 * zod's presence test: `key in input` (an inherited member counts; an explicit undefined is kept).
 * A payload from JSON.parse has only own members, but the functions must agree on any object.
 */
const has = (o: object, k: string): boolean => k in o

/** `z.string().min(1).max(256)` */
const isId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 256
/** `z.number().int().nonnegative().max(2 ** 40)` */
const isSeconds = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_SECONDS
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The actor chain as `z.object({ sub, act? }).strict()`, recursively; undefined when refused.
 * strict() looks for unknown members with for-in (inherited enumerable ones count), as here.
 */
function actorOf(v: unknown): ActorClaim | undefined {
  if (!isObject(v)) return undefined
  for (const k in v) if (k !== 'sub' && k !== 'act') return undefined
  if (!isId(v.sub)) return undefined
  if (v.act === undefined) return has(v, 'act') ? { sub: v.sub, act: undefined } : { sub: v.sub }
  const inner = actorOf(v.act)
  return inner === undefined ? undefined : { sub: v.sub, act: inner }
}

/** `roles`: `z.array(id).max(64)`; a copy, or undefined when refused. */
function rolesOf(v: unknown): string[] | undefined {
  if (!Array.isArray(v) || v.length > 64) return undefined
  for (const r of v) if (!isId(r)) return undefined
  return v.slice() as string[]
}

const PTY = new Set<unknown>(['user', 'service', 'system'])

/** A single-profile token's (or a grant's) payload against {@link claimsSchema}. */
export function shapeClaims(p: Record<string, unknown>): ShapeResult<IdctxClaims> {
  const { iss, aud, sub, tid, txn, jti, iat, exp, nbf, pty, roles, scope, act, dst, mh, trc } = p
  if (!isId(iss)) return { ok: false, claim: 'iss' }
  if (!isId(aud)) return { ok: false, claim: 'aud' }
  if (!isId(sub)) return { ok: false, claim: 'sub' }
  if (!isId(tid)) return { ok: false, claim: 'tid' }
  if (!isId(txn)) return { ok: false, claim: 'txn' }
  if (!isId(jti)) return { ok: false, claim: 'jti' }
  if (!isSeconds(iat)) return { ok: false, claim: 'iat' }
  if (!isSeconds(exp)) return { ok: false, claim: 'exp' }
  if (nbf !== undefined && !isSeconds(nbf)) return { ok: false, claim: 'nbf' }
  if (pty !== undefined && !PTY.has(pty)) return { ok: false, claim: 'pty' }
  const r = roles === undefined ? undefined : rolesOf(roles)
  if (roles !== undefined && r === undefined) return { ok: false, claim: 'roles' }
  if (scope !== undefined && (typeof scope !== 'string' || scope.length > 2048)) return { ok: false, claim: 'scope' }
  const a = act === undefined ? undefined : actorOf(act)
  if (act !== undefined && a === undefined) return { ok: false, claim: 'act' }
  if (dst !== undefined && (typeof dst !== 'string' || dst.length < 1 || dst.length > 512)) return { ok: false, claim: 'dst' }
  if (typeof mh !== 'string' || !MH.test(mh)) return { ok: false, claim: 'mh' }
  if (trc !== undefined && (typeof trc !== 'string' || !TRC.test(trc))) return { ok: false, claim: 'trc' }
  // zod writes an optional member only when the payload has it (`in`): so does this.
  const out: Record<string, unknown> = { iss, aud, sub, tid, txn, jti, iat, exp }
  if (has(p, 'nbf')) out.nbf = nbf
  if (has(p, 'pty')) out.pty = pty
  if (has(p, 'roles')) out.roles = r
  if (has(p, 'scope')) out.scope = scope
  if (has(p, 'act')) out.act = a
  if (has(p, 'dst')) out.dst = dst
  out.mh = mh
  if (has(p, 'trc')) out.trc = trc
  return { ok: true, value: out as unknown as IdctxClaims }
}

/** A batch-profile token's payload against {@link batchClaimsSchema}. */
export function shapeBatchClaims(p: Record<string, unknown>): ShapeResult<BatchClaims> {
  const { iss, aud, jti, iat, exp, nbf, dst, mh } = p
  if (!isId(iss)) return { ok: false, claim: 'iss' }
  if (!isId(aud)) return { ok: false, claim: 'aud' }
  if (!isId(jti)) return { ok: false, claim: 'jti' }
  if (!isSeconds(iat)) return { ok: false, claim: 'iat' }
  if (!isSeconds(exp)) return { ok: false, claim: 'exp' }
  if (nbf !== undefined && !isSeconds(nbf)) return { ok: false, claim: 'nbf' }
  if (dst !== undefined && (typeof dst !== 'string' || dst.length < 1 || dst.length > 512)) return { ok: false, claim: 'dst' }
  if (typeof mh !== 'string' || !MH.test(mh)) return { ok: false, claim: 'mh' }
  const out: Record<string, unknown> = { iss, aud, jti, iat, exp }
  if (has(p, 'nbf')) out.nbf = nbf
  if (has(p, 'dst')) out.dst = dst
  out.mh = mh
  return { ok: true, value: out as unknown as BatchClaims }
}
