/**
 * Stable reason codes for every way a message can fail verification. They are part of the public
 * API: adapters put them in dead-letter headers and job failure reasons, observers count them.
 * Each one is documented in docs/reason-codes.md, in verification order.
 *
 * @example
 * ```ts
 * import { ReasonCode } from '@idctx/core'
 * if (result.ok === false && result.error.reason === ReasonCode.Expired) { ... }
 * ```
 */
export const ReasonCode = {
  Missing: 'missing',
  Duplicate: 'duplicate',
  Oversize: 'oversize',
  Malformed: 'malformed',
  WrongTyp: 'wrong_typ',
  AlgNotAllowed: 'alg_not_allowed',
  HeaderNotAllowed: 'header_not_allowed',
  UnknownKid: 'unknown_kid',
  BadSignature: 'bad_signature',
  MissingClaim: 'missing_claim',
  WrongIssuer: 'wrong_issuer',
  WrongAudience: 'wrong_audience',
  Expired: 'expired',
  NotYetValid: 'not_yet_valid',
  LifetimeExceeded: 'lifetime_exceeded',
  BindingMismatch: 'binding_mismatch',
  TenantMismatch: 'tenant_mismatch',
  ActorNotAllowed: 'actor_not_allowed',
  InsufficientScope: 'insufficient_scope',
  Revoked: 'revoked',
  Replayed: 'replayed',
} as const

/**
 * One of the stable reason codes of {@link ReasonCode}.
 *
 * @example
 * ```ts
 * const reason: ReasonCode = 'tenant_mismatch'
 * if (!result.ok) metrics.rejected.add(1, { reason: result.error.reason satisfies ReasonCode })
 * ```
 */
export type ReasonCode = (typeof ReasonCode)[keyof typeof ReasonCode]

/**
 * Every reason code, in verification order.
 *
 * @example
 * ```ts
 * for (const reason of REASON_CODES) metrics.rejected.add(0, { reason }) // pre-create series
 * ```
 */
export const REASON_CODES: readonly ReasonCode[] = Object.freeze(Object.values(ReasonCode))

/**
 * Whether a string is one of the stable reason codes (for reading `idctx-reject-reason` headers).
 *
 * @example
 * ```ts
 * isReasonCode('expired') // true
 * ```
 */
export function isReasonCode(value: unknown): value is ReasonCode {
  return typeof value === 'string' && (REASON_CODES as readonly string[]).includes(value)
}
