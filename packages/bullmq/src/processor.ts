import {
  bullmqDestination,
  bullmqLeaf,
  ConfigError,
  defaultContextStore,
  notify,
  ReasonCode,
  VerificationError,
  type ContextStore,
  type ExpectedTenant,
  type IdctxClaims,
  type IdctxObserver,
  type Requirements,
  type VerifiedContext,
  type Verifier,
  type VerifyInput,
} from '@idctx/core'
import type { Job, Processor } from 'bullmq'
import { decodeCarrier, IDCTX_KEY } from './carrier.js'
import { JobRejectedError } from './errors.js'
import { isPlainObject, withoutCarrier } from './job-data.js'
import { jobView } from './job-view.js'
import { jobTraceparent } from './traceparent.js'
import { resolveSchedulers, schedulerFor, signSchedulerRun } from './scheduler.js'
import type {
  IdctxProcessor,
  JobIdentity,
  ProcessorOptions,
  RejectionPolicy,
  SchedulerIdentity,
  SignedJobData,
  VerifiedJobContext,
} from './types.js'

interface Resolved<D> {
  readonly verifier: Verifier
  readonly tenant: ExpectedTenant | ((job: Job<D>) => ExpectedTenant)
  readonly payloadTenant: ((data: D) => string | undefined) | undefined
  readonly requirements: Requirements | ((job: Job<D>) => Requirements | undefined) | undefined
  readonly policy: RejectionPolicy
  readonly retryGraceSeconds: number
  readonly schedulers: ReadonlyMap<string, SchedulerIdentity>
  readonly contextStore: ContextStore
  readonly observer: IdctxObserver | undefined
  readonly clock: () => number
}

function isExpectedTenant(v: unknown): boolean {
  if (typeof v === 'string') return v.length > 0
  if (Array.isArray(v)) return v.every((t) => typeof t === 'string')
  return v !== null && typeof v === 'object' && (v as { any?: unknown }).any === true
}

function resolve<D>(options: ProcessorOptions<D>): Resolved<D> {
  const what = 'createProcessor options'
  if (options === null || typeof options !== 'object') throw new ConfigError(what, [{ path: '', message: 'options are required' }])
  const issues: { path: string; message: string }[] = []
  if (typeof options.verifier?.verify !== 'function') issues.push({ path: 'verifier', message: 'a Verifier (createVerifier) is required' })
  if (typeof options.tenant !== 'function' && !isExpectedTenant(options.tenant)) {
    issues.push({ path: 'tenant', message: 'required: a tenant id, a list of ids, { any: true } or a function of the job' })
  }
  if (options.payloadTenant !== undefined && typeof options.payloadTenant !== 'function') {
    issues.push({ path: 'payloadTenant', message: 'must be a function of the job data' })
  }
  const policy = options.policy ?? 'fail'
  if (policy !== 'fail' && policy !== 'audit') issues.push({ path: 'policy', message: "must be 'fail' or 'audit'" })
  const grace = options.retryGraceSeconds ?? 0
  if (!Number.isInteger(grace) || grace < 0 || grace > 86_400) {
    issues.push({ path: 'retryGraceSeconds', message: 'must be a whole number of seconds in 0..86400' })
  }
  if (options.contextStore !== undefined && typeof options.contextStore.run !== 'function') {
    issues.push({ path: 'contextStore', message: 'must be a ContextStore' })
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') issues.push({ path: 'clock', message: 'must be a function' })
  const schedulers = resolveSchedulers(options.schedulers, issues)
  if (issues.length > 0) throw new ConfigError(what, issues)
  return Object.freeze({
    verifier: options.verifier,
    tenant: options.tenant,
    payloadTenant: options.payloadTenant,
    requirements: options.requirements,
    policy,
    retryGraceSeconds: grace,
    schedulers,
    contextStore: options.contextStore ?? defaultContextStore,
    observer: options.observer,
    clock: options.clock ?? Date.now,
  })
}

type Outcome =
  | { readonly ok: true; readonly context: VerifiedContext }
  | { readonly ok: false; readonly error: VerificationError; readonly tokenSha256: string | undefined }

/**
 * Wraps a BullMQ processor so that every job is verified before it runs. The returned function is
 * the BullMQ processor `(job, token, signal)` to give to `new Worker(...)`.
 *
 * - The token is read from `job.data.__idctx` and verified for the destination
 *   `bullmq:<queue>/<jobName>`, the job's data without `__idctx`, the expected tenant, and the
 *   delivery coordinates `<prefix>:<queue>/<jobId>` (a retry keeps the job id: a redelivery, not a
 *   replay).
 * - Verified: your processor runs inside the verified context (so jobs and records it produces
 *   with wrapped producers carry `sub`, `tid`, `txn` on) and gets `(jobView, { identity,
 *   lockToken, signal })`; `jobView.data` has no `__idctx`, its methods work as the job's.
 * - Rejected, policy `'fail'` (default): a {@link JobRejectedError} (an `UnrecoverableError`,
 *   `failedReason` `idctx rejected: <reason>`), so BullMQ fails the job without retrying.
 *   Policy `'audit'`: your processor runs outside any identity context with `{ identity:
 *   undefined, rejection }`. Either way the observer gets `onDisposition`.
 * - A store error of the verifier is thrown as is: the job is retried, not rejected.
 *
 * @example
 * ```ts
 * const worker = new Worker(
 *   'invoices',
 *   createProcessor(async (job, { identity }) => {
 *     await bill(identity.tid, job.data.invoiceId)
 *   }, { verifier, tenant: 'acme' }),
 *   { connection },
 * )
 * ```
 */
export function createProcessor<DataType = Record<string, unknown>, ResultType = unknown, NameType extends string = string>(
  processor: IdctxProcessor<DataType, ResultType, NameType, VerifiedJobContext>,
  options: ProcessorOptions<DataType> & { policy?: 'fail' },
): Processor<SignedJobData<DataType>, ResultType, NameType>
export function createProcessor<DataType = Record<string, unknown>, ResultType = unknown, NameType extends string = string>(
  processor: IdctxProcessor<DataType, ResultType, NameType, JobIdentity>,
  options: ProcessorOptions<DataType>,
): Processor<SignedJobData<DataType>, ResultType, NameType>
export function createProcessor<DataType, ResultType, NameType extends string>(
  userProcessor:
    | IdctxProcessor<DataType, ResultType, NameType, VerifiedJobContext>
    | IdctxProcessor<DataType, ResultType, NameType, JobIdentity>,
  options: ProcessorOptions<DataType>,
): Processor<SignedJobData<DataType>, ResultType, NameType> {
  // Only policy 'audit' (the second overload) ever passes an unverified context.
  const processor = userProcessor as IdctxProcessor<DataType, ResultType, NameType, JobIdentity>
  if (typeof processor !== 'function') throw new TypeError('createProcessor needs a processor function')
  const o = resolve(options)

  const reject = (
    reason: ReasonCode,
    message: string,
    destination: string,
    started: number,
    tokenSha256: string | undefined,
    claims: IdctxClaims | undefined,
    traceparent: string | undefined,
  ): Outcome => {
    const error = new VerificationError(reason, message, reason === ReasonCode.Expired ? 'exp' : undefined)
    notify(o.observer, 'onRejected', {
      reason,
      destination,
      tokenSha256,
      iss: claims?.iss,
      kid: undefined,
      jti: claims?.jti,
      txn: claims?.txn,
      tid: claims?.tid,
      sub: claims?.sub,
      trc: claims?.trc,
      traceparent,
      durationMs: performance.now() - started,
    })
    return { ok: false, error, tokenSha256 }
  }

  const check = async (
    job: Job<DataType, ResultType, NameType>,
    view: Job<DataType, ResultType, NameType>,
    data: Record<string, unknown> | undefined,
    clean: unknown,
  ): Promise<Outcome> => {
    // The duration only goes to the observer: no clock call per job without one.
    const started = o.observer !== undefined ? performance.now() : 0
    const destination = bullmqDestination(job.queueName, job.name)
    const traceparent = jobTraceparent(job.opts)
    let tokens: string[] = []
    let proof: string | undefined
    const scheduler = schedulerFor(o.schedulers, job as Job, data)
    if (scheduler !== undefined && data !== undefined) {
      tokens = [signSchedulerRun(scheduler, job as Job, data)]
    } else if (data !== undefined && Object.prototype.hasOwnProperty.call(data, IDCTX_KEY)) {
      const carrier = decodeCarrier(data[IDCTX_KEY])
      if (carrier === 'malformed') {
        const message = `the ${IDCTX_KEY} value is not a token string`
        return reject(ReasonCode.Malformed, message, destination, started, undefined, undefined, traceparent)
      }
      if (carrier !== undefined) {
        tokens = [carrier.token]
        proof = carrier.proof
      }
    }
    // attemptsStarted > 1 also covers a redelivery after a stalled (crashed) worker.
    const retry = job.attemptsMade > 0 || job.attemptsStarted > 1
    const grace = retry && o.retryGraceSeconds > 0 ? o.retryGraceSeconds : undefined
    const requirements = typeof o.requirements === 'function' ? o.requirements(view) : o.requirements
    const input: VerifyInput = {
      tokens,
      proof,
      destination,
      leaf: () => bullmqLeaf(job.queueName, job.name, data ?? {}),
      expectedTenant: typeof o.tenant === 'function' ? o.tenant(view) : o.tenant,
      payloadTenant: o.payloadTenant !== undefined && data !== undefined ? o.payloadTenant(clean as DataType) : undefined,
      coordinates: `${job.queueQualifiedName}/${String(job.id)}`,
      requirements,
      expiryGraceSeconds: grace,
      traceparent,
    }
    const r = await o.verifier.verify(input)
    if (!r.ok) return { ok: false, error: r.error, tokenSha256: r.tokenSha256 }
    if (grace !== undefined) {
      // Grace only extends a token that was still valid when the job first became processable.
      const exp = r.claims.exp * 1000
      const processable = job.timestamp + (job.opts.delay ?? 0)
      if (exp <= o.clock() && exp < processable) {
        return reject(
          ReasonCode.Expired,
          'token expired before the job first became processable: no retry grace',
          destination,
          started,
          r.tokenSha256,
          r.claims,
          traceparent,
        )
      }
    }
    return { ok: true, context: r.context }
  }

  return async function idctxProcessor(
    job: Job<SignedJobData<DataType>, ResultType, NameType>,
    lockToken?: string,
    signal?: AbortSignal,
  ): Promise<ResultType> {
    const real = job as unknown as Job<DataType, ResultType, NameType>
    const raw: unknown = real.data
    const data = isPlainObject(raw) ? raw : undefined
    const clean = data === undefined ? raw : withoutCarrier(data)
    const view = jobView(real, clean)
    const outcome = await check(real, view, data, clean)
    if (outcome.ok) {
      const identity = outcome.context
      return o.contextStore.run(identity, () => processor(view, { identity, rejection: undefined, lockToken, signal }))
    }
    notify(o.observer, 'onDisposition', {
      reason: outcome.error.reason,
      destination: bullmqDestination(real.queueName, real.name),
      policy: o.policy,
      target: o.policy === 'fail' ? 'failed' : undefined,
      coordinates: `${real.queueQualifiedName}/${String(real.id)}`,
      tokenSha256: outcome.tokenSha256,
      traceparent: jobTraceparent(real.opts),
    })
    if (o.policy === 'fail') throw new JobRejectedError(outcome.error)
    return processor(view, { identity: undefined, rejection: outcome.error, lockToken, signal })
  }
}
