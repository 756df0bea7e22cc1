import { IdctxError, type ReasonCode, type VerificationError } from '@idctx/core'

/**
 * Thrown from the consumer under the `fail` policy when a record fails verification. kafkajs
 * treats a throwing handler as "not processed": it redelivers the record (after its retries and
 * a consumer restart) and never commits past it, so the partition stops at this record until an
 * operator acts (fix the key configuration, seek past it, or switch the policy). That is the
 * point of `fail`: nothing unverified is processed and nothing is dropped.
 *
 * @example
 * ```ts
 * consumer.on(consumer.events.CRASH, ({ payload }) => {
 *   if (payload.error instanceof RecordRejectedError) alert(payload.error.reason, payload.error.coordinates)
 * })
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
 * The dead-letter producer failed to write a rejected record. The consumer throws it so kafkajs
 * redelivers the record instead of committing past it: a rejected record is never lost.
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
