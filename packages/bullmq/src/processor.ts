import { createHash } from 'node:crypto'
import {
  bullmqDestination,
  bullmqLeaf,
  bullmqSchedulerLeaf,
  ConfigError,
  defaultContextStore,
  encodeDestinationComponent,
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
  isContextStore,
  unknownOptions,
} from '@idctx/core'
import type { Job, Processor } from 'bullmq'
import { decodeCarrier, IDCTX_KEY } from './carrier.js'
import { JobRejectedError } from './errors.js'
import { isPlainObject, withoutCarrier } from './job-data.js'
import { jobView } from './job-view.js'
import { withoutContext } from './options.js'
import { jobTraceparent } from './traceparent.js'
import { runContext, schedulerRunOf } from './scheduler.js'
import type {
  IdctxProcessor,
  JobIdentity,
  ProcessorOptions,
  RejectionPolicy,
  SchedulerRun,
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
  readonly contextStore: ContextStore
  readonly observer: IdctxObserver | undefined
  readonly clock: () => number
}

/** The keys of {@link ProcessorOptions}; any other key is a ConfigError. */
const PROCESSOR_OPTION_KEYS = [
  'verifier',
  'tenant',
  'payloadTenant',
  'requirements',
  'policy',
  'retryGraceSeconds',
  'contextStore',
  'observer',
  'clock',
  'abortSignal',
] as const

/** Options that no longer exist, and where their job went. */
const REMOVED_OPTIONS = {
  schedulers:
    'removed: a worker no longer signs scheduler runs; upsert the scheduler with a wrapped queue (wrapQueue(...).upsertJobScheduler), which stores a grant its runs are verified by (see docs/bullmq.md, "Job schedulers")',
}

function isExpectedTenant(v: unknown): boolean {
  if (typeof v === 'string') return v.length > 0
  if (Array.isArray(v)) return v.every((t) => typeof t === 'string')
  return v !== null && typeof v === 'object' && (v as { any?: unknown }).any === true
}

function resolve<D>(options: ProcessorOptions<D>): Resolved<D> {
  const what = 'createProcessor options'
  if (options === null || typeof options !== 'object') throw new ConfigError(what, [{ path: '', message: 'options are required' }])
  const issues: { path: string; message: string }[] = unknownOptions(options, PROCESSOR_OPTION_KEYS, { hints: REMOVED_OPTIONS })
  const verifier = options.verifier as Partial<Verifier> | undefined
  if (typeof verifier?.verify !== 'function' || typeof verifier.verifyGrant !== 'function') {
    issues.push({ path: 'verifier', message: 'a Verifier (createVerifier) is required' })
  }
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
  if (options.contextStore !== undefined && !isContextStore(options.contextStore)) {
    issues.push({ path: 'contextStore', message: 'must be a ContextStore (run, current and exit)' })
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') issues.push({ path: 'clock', message: 'must be a function' })
  if (issues.length > 0) throw new ConfigError(what, issues)
  return Object.freeze({
    verifier: options.verifier,
    tenant: options.tenant,
    payloadTenant: options.payloadTenant,
    requirements: options.requirements,
    policy,
    retryGraceSeconds: grace,
    contextStore: options.contextStore ?? defaultContextStore,
    observer: options.observer,
    clock: options.clock ?? Date.now,
  })
}

/**
 * The leaf a grant is checked against on a job that is not a scheduler run: a hash no signer
 * ever signs (not an RFC 6962 leaf), so a grant copied onto a plain job is `binding_mismatch`
 * after the verifier's earlier steps (`wrong_typ`, signature, time) ran as for any grant.
 */
const NOT_A_RUN = createHash('sha256').update('idctx-bullmq: not a job scheduler run').digest()

/**
 * Where a job is, for replay detection and events: `<prefix>:<queue>/<jobId>`, the job id
 * percent-encoded (it is chosen by whoever adds the job: no control character, newline or `/`
 * reaches a store, an event or a log as itself). The prefix and queue name are the worker's own.
 *
 * @example
 * ```ts
 * jobCoordinates({ queueQualifiedName: 'bull:invoices', id: 'inv\n1' }) // 'bull:invoices/inv%0A1'
 * ```
 */
export function jobCoordinates(job: Pick<Job, 'queueQualifiedName' | 'id'>): string {
  return `${job.queueQualifiedName}/${encodeDestinationComponent(String(job.id))}`
}

type Outcome =
  | { readonly ok: true; readonly context: VerifiedContext; readonly scheduler: SchedulerRun | undefined }
  | { readonly ok: false; readonly error: VerificationError; readonly tokenSha256: string | undefined }

/**
 * Wraps a BullMQ processor so that every job is verified before it runs. The returned function is
 * the BullMQ processor `(job, token, signal)` to give to `new Worker(...)`.
 *
 * - A message token is read from `job.data.__idctx` — with its proof and, for a job signed with
 *   the batch profile (`<jws>~<proof>~<context record>`), the context record that holds the
 *   job's own `sub`, `tid`, `txn` — and verified for the destination
 *   `bullmq:<queue>/<jobName>` (components percent-encoded), the job's data without `__idctx`,
 *   the expected tenant, and the delivery coordinates `<prefix>:<queue>/<jobId>` (job id
 *   percent-encoded). A retry (`attemptsMade > 0`) or a stalled re-run (`attemptsStarted > 1`)
 *   keeps the job id: a redelivery. A first attempt at coordinates already seen — a job copied
 *   and re-added under the same id — is `replayed` (with a replay store).
 * - A grant (`__idctx` = `g:<jws>`, stored by the wrapped `upsertJobScheduler`) is accepted only
 *   on a run of that scheduler: `verifier.verifyGrant` with the scheduler leaf recomputed from the
 *   job's queue, `repeatJobKey`, name and data (a job that is not a run, `repeat:<id>:<millis>`
 *   with its `repeatJobKey`, is `binding_mismatch`). The run gets the grant's principal with a
 *   `txn` of its own (the same for retries of the run).
 * - A job without `__idctx` is `missing`, whatever its id or `repeatJobKey`.
 * - Verified: your processor runs inside the verified context, and only that one, (so jobs and
 *   records it produces with wrapped producers carry `sub`, `tid`, `txn` on) and gets `(jobView,
 *   { identity, rejection: undefined, scheduler, lockToken, signal })`; `jobView.data` has no
 *   `__idctx`, its methods work as the job's.
 * - Rejected, policy `'fail'` (default): a {@link JobRejectedError} (an `UnrecoverableError`,
 *   `failedReason` `idctx rejected: <reason>`), so BullMQ fails the job without retrying.
 *   Policy `'audit'`: your processor runs with NO identity context (`contextStore.exit`, and none
 *   in core's default store), whatever context the Worker was created in, with `{ identity:
 *   undefined, rejection }`: a wrapped producer inside it throws `SigningError`. Either way the
 *   observer gets `onDisposition`.
 * - A store error of the verifier is thrown as is: the job is retried, not rejected.
 *
 * Throws a ConfigError (`ERR_IDCTX_CONFIG`) for invalid options or an unknown option key (the
 * removed `schedulers` option included), a TypeError when `processor` is not a function.
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
    const carrier = data !== undefined && Object.prototype.hasOwnProperty.call(data, IDCTX_KEY) ? decodeCarrier(data[IDCTX_KEY]) : undefined
    if (carrier === 'malformed') {
      const message = `the ${IDCTX_KEY} value is not a token string`
      return reject(ReasonCode.Malformed, message, destination, started, undefined, undefined, traceparent)
    }
    // attemptsStarted > 1 also covers a redelivery after a stalled (crashed) worker: BullMQ 6
    // counts the first start as 1, and a stalled job moved back to wait starts again as 2.
    const retry = job.attemptsMade > 0 || job.attemptsStarted > 1
    const grace = retry && o.retryGraceSeconds > 0 ? o.retryGraceSeconds : undefined
    const requirements = typeof o.requirements === 'function' ? o.requirements(view) : o.requirements
    const expectedTenant = typeof o.tenant === 'function' ? o.tenant(view) : o.tenant
    const payloadTenant = o.payloadTenant !== undefined && data !== undefined ? o.payloadTenant(clean as DataType) : undefined
    const schedulerId = carrier?.kind === 'grant' ? schedulerRunOf(job as Job) : undefined
    const input: VerifyInput = {
      tokens: carrier === undefined ? [] : [carrier.token],
      proof: carrier?.proof,
      // The third part of `__idctx`: a batch-profile job's identity (the verifier refuses one
      // beside a single-profile token or a grant, and a batch token without one).
      contextRecord: carrier?.contextRecord === undefined ? [] : [carrier.contextRecord],
      destination,
      leaf:
        carrier?.kind !== 'grant'
          ? () => bullmqLeaf(job.queueName, job.name, data ?? {})
          : () => (schedulerId === undefined ? NOT_A_RUN : bullmqSchedulerLeaf(job.queueName, schedulerId, job.name, data ?? {})),
      expectedTenant,
      payloadTenant,
      // A grant has no replay step: every run carries it. A message token is seen once.
      coordinates: carrier?.kind === 'grant' ? undefined : jobCoordinates(job),
      firstDelivery: job.attemptsMade === 0 && job.attemptsStarted <= 1,
      requirements,
      expiryGraceSeconds: grace,
      traceparent,
    }
    const r = carrier?.kind === 'grant' ? await o.verifier.verifyGrant(input) : await o.verifier.verify(input)
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
    if (schedulerId === undefined) return { ok: true, context: r.context, scheduler: undefined }
    const scheduler: SchedulerRun = Object.freeze({ id: schedulerId, grantJti: r.claims.jti, grantTxn: r.claims.txn })
    return { ok: true, context: runContext(r.context, String(job.id)), scheduler }
  }

  const handle = async (
    job: Job<SignedJobData<DataType>, ResultType, NameType>,
    lockToken: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ResultType> => {
    const real = job as unknown as Job<DataType, ResultType, NameType>
    const raw: unknown = real.data
    const data = isPlainObject(raw) ? raw : undefined
    const clean = data === undefined ? raw : withoutCarrier(data)
    const view = jobView(real, clean)
    const outcome = await check(real, view, data, clean)
    if (outcome.ok) {
      const identity = outcome.context
      const scheduler = outcome.scheduler
      return o.contextStore.run(identity, () => processor(view, { identity, rejection: undefined, scheduler, lockToken, signal }))
    }
    notify(o.observer, 'onDisposition', {
      reason: outcome.error.reason,
      destination: bullmqDestination(real.queueName, real.name),
      policy: o.policy,
      target: o.policy === 'fail' ? 'failed' : undefined,
      coordinates: jobCoordinates(real),
      tokenSha256: outcome.tokenSha256,
      traceparent: jobTraceparent(real.opts),
    })
    if (o.policy === 'fail') throw new JobRejectedError(outcome.error)
    return processor(view, { identity: undefined, rejection: outcome.error, scheduler: undefined, lockToken, signal })
  }

  // Nothing of the context the Worker was created in reaches verification, the option callbacks
  // or an audit-mode processor; a verified job then runs in its own context only.
  // BullMQ creates an AbortController per job (≈3 µs) for a processor that declares three
  // parameters: declare the third only when the processor asked for the signal.
  if (options.abortSignal === true) {
    return function idctxProcessor(job: Job<SignedJobData<DataType>, ResultType, NameType>, lockToken?: string, signal?: AbortSignal): Promise<ResultType> {
      return withoutContext(o.contextStore, () => handle(job, lockToken, signal))
    }
  }
  return function idctxProcessor(job: Job<SignedJobData<DataType>, ResultType, NameType>, lockToken?: string): Promise<ResultType> {
    return withoutContext(o.contextStore, () => handle(job, lockToken, undefined))
  }
}
