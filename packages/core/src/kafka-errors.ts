import { IdctxError, type VerificationError } from './errors.js'
import type { ReasonCode } from './reason-codes.js'

/**
 * Thrown from a Kafka consumer wrapper under the `fail` policy when a record fails verification.
 * The wrapper never commits past the record, so the partition stops there until an operator acts
 * (fix the key configuration, seek past it, or switch the policy): nothing unverified is
 * processed and nothing is dropped. Shared by `@idctx/kafkajs` and `@idctx/platformatic-kafka`.
 *
 * @example
 * ```ts
 * if (error instanceof RecordRejectedError) alert(error.reason, error.coordinates)
 * ```
 */
export class RecordRejectedError extends IdctxError {
  static override code = 'ERR_IDCTX_RECORD_REJECTED'
  override code = 'ERR_IDCTX_RECORD_REJECTED'
  readonly reason: ReasonCode
  /** `topic/partition/offset` of the rejected record. */
  readonly coordinates: string
  /** SHA-256 of the token, hex, when the record had one. */
  readonly tokenSha256: string | undefined
  constructor(error: VerificationError, coordinates: string, tokenSha256: string | undefined) {
    super(`record ${coordinates} rejected: ${error.reason}`, { cause: error })
    this.reason = error.reason
    this.coordinates = coordinates
    this.tokenSha256 = tokenSha256
  }
}

/**
 * The dead-letter producer failed to write rejected records. A Kafka consumer wrapper throws it
 * instead of committing past them, so they are delivered again: a rejected record is never lost.
 *
 * @example
 * ```ts
 * if (error instanceof DeadLetterError) console.error(error.deadLetterTopic, error.coordinates, error.cause)
 * ```
 */
export class DeadLetterError extends IdctxError {
  static override code = 'ERR_IDCTX_DEAD_LETTER'
  override code = 'ERR_IDCTX_DEAD_LETTER'
  readonly deadLetterTopic: string
  /** Coordinates of the records that could not be written. */
  readonly coordinates: readonly string[]
  constructor(deadLetterTopic: string, coordinates: readonly string[], cause: unknown) {
    super(`writing ${coordinates.length} rejected record(s) to ${deadLetterTopic} failed`, { cause })
    this.deadLetterTopic = deadLetterTopic
    this.coordinates = coordinates
  }
}
