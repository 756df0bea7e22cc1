import type { ReasonCode, VerificationError } from '@idctx/core'
import { UnrecoverableError } from 'bullmq'

/**
 * Thrown by an idctx processor (policy `'fail'`) for a job that failed verification. It is a
 * BullMQ `UnrecoverableError`, so the job goes to the failed set at once, without retries. The
 * job's `failedReason` is `idctx rejected: <reason>`; `reason` and `cause` hold the details.
 * Its `name` stays `UnrecoverableError`, which BullMQ also recognises by name.
 *
 * @example
 * ```ts
 * worker.on('failed', (job, err) => {
 *   if (err instanceof JobRejectedError) audit(job?.id, err.reason)
 * })
 * ```
 */
export class JobRejectedError extends UnrecoverableError {
  static readonly code = 'ERR_IDCTX_JOB_REJECTED'
  readonly code = 'ERR_IDCTX_JOB_REJECTED'
  /** The stable reason code, as in `failedReason`. */
  readonly reason: ReasonCode
  override readonly cause: VerificationError

  constructor(error: VerificationError) {
    super(`idctx rejected: ${error.reason}`)
    this.name = 'UnrecoverableError'
    this.reason = error.reason
    this.cause = error
  }
}
