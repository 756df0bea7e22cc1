import { z } from 'zod'

/** Principal types a token may declare in `pty`. */
export type PrincipalType = 'user' | 'service' | 'system'

/** An RFC 8693 actor chain: the current producer, and nested the producers before it. */
export interface ActorClaim {
  readonly sub: string
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

/** A verified idctx claim set. */
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
