import type { VerifiedContext } from './context.js'
import type { VerificationError } from './errors.js'
import type { ReasonCode } from './reason-codes.js'

/**
 * Why a consumed record failed verification, as a Kafka adapter's `audit` policy hands it to the
 * handler beside the record (the record is delivered, with no identity context).
 *
 * @example
 * ```ts
 * const note = (violation: Violation) => log.warn({ reason: violation.reason, token: violation.tokenSha256 }, 'would reject')
 * ```
 */
export interface Violation {
  /** The stable reason code the record failed with. */
  readonly reason: ReasonCode
  /** The verification error, with `reason` and `claim`. */
  readonly error: VerificationError
  /** SHA-256 of the token, hex, when the record had one. */
  readonly tokenSha256: string | undefined
}

/**
 * A verified record's verdict, as a Kafka adapter hands it to the handler: its context.
 *
 * @example
 * ```ts
 * const tenantOf = (r: VerifiedRecord) => r.identity.tid // the handler runs inside `identity`
 * ```
 */
export interface VerifiedRecord {
  /** The verified context; the handler runs inside it. */
  readonly identity: VerifiedContext
  /** Always undefined for a verified record. */
  readonly violation?: undefined
}

/**
 * An unverified record's verdict, delivered under the `audit` policy only.
 *
 * @example
 * ```ts
 * const count = (r: VerifiedRecord | AuditedRecord) => {
 *   if (r.identity === undefined) metrics.unverified.add(1, { reason: r.violation.reason })
 * }
 * ```
 */
export interface AuditedRecord {
  /** Always undefined: the record was not verified and the handler runs with no context. */
  readonly identity: undefined
  /** Why it failed verification. */
  readonly violation: Violation
}
