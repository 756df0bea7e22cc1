import { createHash } from 'node:crypto'
import {
  bullmqDestination,
  bullmqSchedulerLeaf,
  ConfigError,
  type VerifiedContext,
} from '@idctx/core'
import { encodeGrantCarrier, IDCTX_KEY } from './carrier.js'
import { signableCopy } from './job-data.js'
import { checkCallOptions } from './options.js'
import { contextFor, type ResolvedSigningOptions } from './signing.js'
import type { SchedulerOptions } from './types.js'

/** The keys of the per-call {@link SchedulerOptions}. */
export const SCHEDULER_OPTION_KEYS = ['context', 'grantLifetimeSeconds'] as const

/** A job scheduler template as BullMQ's `upsertJobScheduler` takes it. */
interface Template {
  name?: string
  data?: unknown
  opts?: unknown
}

/**
 * The template the wrapped `upsertJobScheduler` stores: the job name made explicit (BullMQ's
 * default is the scheduler id), and the data checked like `add` checks it, with a grant under
 * `__idctx` (`g:<jws>`): `signer.signGrant` for the given or current context, bound to
 * `bullmq:<queue>/<name>` and {@link bullmqSchedulerLeaf}(queue, schedulerId, name, data).
 * Without a context: a `SigningError`, or the template unsigned with `onMissingContext:
 * 'unsigned'` (its runs are then `missing`). Throws ConfigError for unknown per-call options.
 */
export function signedSchedulerTemplate(
  o: ResolvedSigningOptions,
  queueName: string,
  schedulerId: unknown,
  template: unknown,
  call: SchedulerOptions | undefined,
): Template & { name: string; data: Record<string, unknown> } {
  checkCallOptions('upsertJobScheduler options', call, SCHEDULER_OPTION_KEYS)
  if (typeof schedulerId !== 'string' || schedulerId.length === 0) throw new TypeError('a job scheduler id must be a non-empty string')
  if (template !== undefined && template !== null && typeof template !== 'object') throw new TypeError('a job scheduler template must be an object')
  const t = (template ?? {}) as Template
  const name = t.name ?? schedulerId
  if (typeof name !== 'string') throw new TypeError('a job scheduler template name must be a string')
  // BullMQ stores `data ?? {}`: sign exactly that, copied now (BullMQ serializes it only after
  // awaiting its connection: a caller changing its template meanwhile must not make the stored
  // data differ from the data the grant binds). JSON data, so a JSON round trip copies it exactly.
  const data = signableCopy(t.data ?? undefined)
  const lifetime = call?.grantLifetimeSeconds
  if (lifetime !== undefined && (!Number.isInteger(lifetime) || lifetime <= 0)) {
    throw new ConfigError('upsertJobScheduler options', [{ path: 'grantLifetimeSeconds', message: 'must be a positive whole number of seconds' }])
  }
  const context = contextFor(o, call)
  if (context === undefined) return { ...t, name, data }
  const grant = o.signer.signGrant(
    context,
    { destination: bullmqDestination(queueName, name), leaf: bullmqSchedulerLeaf(queueName, schedulerId, name, data) },
    lifetime === undefined ? {} : { lifetimeSeconds: lifetime },
  )
  return { ...t, name, data: { ...data, [IDCTX_KEY]: encodeGrantCarrier(grant.token) } }
}

const MILLIS = /^\d{1,16}$/

/**
 * The scheduler id a job is a run of: `job.repeatJobKey`, when the job id is the one BullMQ gives
 * that scheduler's runs (`repeat:<schedulerId>:<millis>`); undefined for any other job. Redis
 * writers can set both on a job of their own: this only says which scheduler leaf a grant must
 * match, it proves nothing by itself.
 *
 * @example
 * ```ts
 * schedulerRunOf({ repeatJobKey: 'nightly', id: 'repeat:nightly:1700000000000' }) // 'nightly'
 * ```
 */
export function schedulerRunOf(job: { readonly repeatJobKey?: string | undefined; readonly id?: string | undefined }): string | undefined {
  const key = job.repeatJobKey
  if (typeof key !== 'string' || key.length === 0 || typeof job.id !== 'string') return undefined
  const prefix = `repeat:${key}:`
  if (!job.id.startsWith(prefix) || !MILLIS.test(job.id.slice(prefix.length))) return undefined
  return key
}

/**
 * The transaction id of one scheduler run: 32 hex characters of SHA-256 over a domain tag, the
 * grant's `jti` and the run's job id. Retries (and stalled re-runs) of a run share it; two runs,
 * or two grants (a re-upsert), never do.
 *
 * @example
 * ```ts
 * runTxn('grant-jti', 'repeat:nightly:1700000000000') // e.g. '5f0c…' (32 hex)
 * ```
 */
export function runTxn(grantJti: string, jobId: string): string {
  return createHash('sha256').update(`idctx-bullmq-run-v1\0${grantJti}\0${jobId}`).digest('hex').slice(0, 32)
}

/**
 * The identity a verified scheduler run executes as: the grant's principal (`sub`, `tid`, `pty`,
 * `roles`, `scope`, `act`) with the run's own `txn`; `claims`, `destination` and `tokenSha256`
 * stay those of the grant. Frozen, like every verified context.
 */
export function runContext(grant: VerifiedContext, jobId: string): VerifiedContext {
  return Object.freeze({ ...grant, txn: runTxn(grant.claims.jti, jobId) })
}
