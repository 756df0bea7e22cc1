import type {
  ContextStore,
  ExpectedTenant,
  IdctxObserver,
  IdentityContext,
  Requirements,
  Signer,
  VerificationError,
  VerifiedContext,
  Verifier,
} from '@idctx/core'
import type { Job } from 'bullmq'

/**
 * Options of `wrapQueue` and `wrapFlowProducer`: how jobs are signed. Checked once; any problem,
 * an unknown key included, is a `ConfigError` (`ERR_IDCTX_CONFIG`) listing each path with a
 * "did you mean".
 *
 * @example
 * ```ts
 * const options: SigningOptions = { signer, maxDelayLifetimeSeconds: 3600 }
 * ```
 */
export interface SigningOptions {
  /**
   * Signs the jobs — one token per event-loop turn, or per `add`, `addBulk` or flow call with
   * `batchProfile: false` — and the grant of each `upsertJobScheduler`. Its observer receives one
   * `onSigned` per token.
   */
  signer: Signer
  /**
   * Where the current identity context is read from (default: core's `defaultContextStore`); it
   * must have `run`, `current` and `exit`.
   */
  contextStore?: ContextStore
  /**
   * Lifetime in seconds of the token of a job that runs at once. Omitted: the signer's own
   * default, and 300 (the signer's default default) as the base of a delayed job's lifetime —
   * set it when the signer uses another `lifetimeSeconds`.
   */
  lifetimeSeconds?: number
  /**
   * Longest token a call may get, in seconds (default 900). A delayed job's token lives
   * `lifetimeSeconds + delay`; beyond this cap `add` throws instead of signing a token that would
   * expire before the job runs. The signer's `maxLifetimeSeconds` and every verifier's
   * `maxLifetimeSeconds` must be at least as large.
   */
  maxDelayLifetimeSeconds?: number
  /**
   * What to do when no identity context is given or current: `'throw'` a `SigningError`
   * (default), or add the job `'unsigned'` (verifiers reject it as `missing` unless in audit mode).
   */
  onMissingContext?: 'throw' | 'unsigned'
  /**
   * One signature per event-loop turn (default true; design, "Batch profile"): the `add`,
   * `addBulk` (and, on a flow producer, `add`/`addBulk`) calls made in the same turn, whatever
   * their identity contexts, share one batch-profile token (`idctx-batch+jwt`), signed when the
   * turn ends (`setImmediate`) or at `maxBatchJobs`; each job's `__idctx` is then
   * `<jws>~<proof>~<context record>`. Calls group only when their token lifetimes agree (a delayed
   * job's lifetime includes its delay). A call alone in its turn keeps the single profile
   * (`<jws>` or `<jws>~<proof>`). Each call is still its own BullMQ call, made in call order,
   * with its own result or error. `false`: every call signs its own token at once.
   */
  batchProfile?: boolean
  /**
   * Most jobs one batch-profile token covers (default 1024, 2..1048576); a call is never split:
   * a call of more jobs is signed alone.
   */
  maxBatchJobs?: number
}

/**
 * Per-call options: the last argument of the wrapped `add`, `addBulk` and flow calls. An unknown
 * key is a `ConfigError` (the promise rejects, nothing is added); an explicit `context` that is
 * not signable (e.g. an empty or missing `txn`) is a `SigningError`.
 *
 * @example
 * ```ts
 * await queue.add('invoice', data, {}, { context: { sub: 'u-42', tid: 'acme', txn } })
 * ```
 */
export interface AddOptions {
  /** Sign for this context instead of the current one of the context store. */
  context?: IdentityContext
  /**
   * Base lifetime of this call's token in seconds, before a delay is added — e.g. the parent of
   * a flow whose children take long. Capped by `maxDelayLifetimeSeconds`.
   */
  lifetimeSeconds?: number
}

/**
 * What a worker does with a job that fails verification.
 *
 * @example
 * ```ts
 * const policy: RejectionPolicy = process.env.IDCTX_ENFORCE === '1' ? 'fail' : 'audit'
 * ```
 */
export type RejectionPolicy = 'fail' | 'audit'

/**
 * Per-call options of the wrapped `upsertJobScheduler` (its fourth argument): which identity the
 * scheduler's runs act for, and how long its grant lives.
 *
 * @example
 * ```ts
 * await reports.upsertJobScheduler('nightly', { pattern: '0 3 * * *' }, { name: 'report', data }, {
 *   context: { sub: 'svc-reports', tid: 'acme', txn: randomUUID(), pty: 'system' },
 *   grantLifetimeSeconds: 2 * 86_400,
 * })
 * ```
 */
export interface SchedulerOptions {
  /**
   * The principal the runs execute as (`sub`, `tid`, `pty`, `roles`, `scope`, `act`), instead of
   * the current context of the context store. Its `txn` is the upsert's; each run gets its own.
   */
  context?: IdentityContext
  /**
   * Lifetime of the grant in seconds (default: the signer's `grantLifetimeSeconds`, 86400),
   * capped by the signer's `maxGrantLifetimeSeconds` (a `SigningError` above it) and checked
   * against every verifier's `maxGrantLifetimeSeconds` (`lifetime_exceeded`). Runs after it
   * expires are rejected as `expired` until the scheduler is upserted again.
   */
  grantLifetimeSeconds?: number
}

/**
 * What a verified scheduler run carries beside its identity.
 *
 * @example
 * ```ts
 * if (idctx.scheduler !== undefined) log.info({ scheduler: idctx.scheduler.id, grant: idctx.scheduler.grantJti })
 * ```
 */
export interface SchedulerRun {
  /** The job scheduler id (`job.repeatJobKey`), bound into the grant. */
  readonly id: string
  /** The grant's `jti`: revoke it (`revoke('jti', …)`) to stop every run of this upsert. */
  readonly grantJti: string
  /** The transaction id of the upsert (the grant's `txn`); `identity.txn` is the run's own. */
  readonly grantTxn: string
}

/**
 * Options of `createProcessor`: how jobs are verified and what happens to rejected ones. Checked
 * once; any problem, an unknown key included, is a `ConfigError` (`ERR_IDCTX_CONFIG`) — the
 * removed `schedulers` option with a pointer to scheduler grants.
 *
 * @example
 * ```ts
 * const options: ProcessorOptions<{ tenantId: string }> = {
 *   verifier, tenant: { any: true }, payloadTenant: (d) => d.tenantId, retryGraceSeconds: 120,
 * }
 * ```
 */
export interface ProcessorOptions<DataType = Record<string, unknown>> {
  /** Verifies every job; its observer receives `onVerified` / `onRejected` from verification. */
  verifier: Verifier
  /**
   * The tenant a job must belong to, derived independently of the token: one id, a list, `{ any:
   * true }`, or a function of the job (its data has no `__idctx`).
   */
  tenant: ExpectedTenant | ((job: Job<DataType>) => ExpectedTenant)
  /** Reads a tenant id from the data; when it returns one, it must equal the token's `tid`. */
  payloadTenant?: (data: DataType) => string | undefined
  /** Scopes/roles a job must carry, in addition to the verifier's own requirements. */
  requirements?: Requirements | ((job: Job<DataType>) => Requirements | undefined)
  /** `'fail'` (default): an `UnrecoverableError`, no retries. `'audit'`: run anyway, record it. */
  policy?: RejectionPolicy
  /**
   * Seconds after `exp` a retried job (a later attempt of the same job id) is still accepted,
   * if its token covered the time the job first became processable. Capped by the verifier's
   * `maxExpiryGraceSeconds` (default 0: no grace). Default 0.
   */
  retryGraceSeconds?: number
  /**
   * The store the processor runs in, so jobs it adds carry the context on (default: core's). It
   * must have `run`, `current` and `exit` (a `ConfigError` otherwise). A verified job runs in
   * `run(identity)`; everything else (verification, the option callbacks, an audit-mode rejected
   * job) in `exit`, and with no context in core's default store either.
   */
  contextStore?: ContextStore
  /** Receives `onDisposition` for every rejected job, and `onRejected` for checks made here. */
  observer?: IdctxObserver
  /**
   * Hand the processor BullMQ's abort signal (`idctx.signal`) — default false: BullMQ then skips
   * the AbortController it creates per job for a processor that declares a third parameter
   * (≈3 µs a job), and `idctx.signal` is undefined.
   */
  abortSignal?: boolean
  /** Epoch milliseconds, for the retry-grace check (default Date.now; match the verifier's). */
  clock?: () => number
}

/**
 * The second argument of an idctx processor when the job verified.
 *
 * @example
 * ```ts
 * createProcessor(async (job, { identity, signal }) => render(identity.tid, job.data, signal), { ...options, abortSignal: true })
 * ```
 */
export interface VerifiedJobContext {
  /**
   * The verified identity; the processor also runs inside it (context store). For a scheduler
   * run it is the grant's principal with the run's own `txn`, and `claims` are the grant's.
   */
  readonly identity: VerifiedContext
  readonly rejection: undefined
  /** Set for a run of a job scheduler that verified by its grant; undefined for any other job. */
  readonly scheduler: SchedulerRun | undefined
  /** BullMQ's lock token of this attempt (not the idctx token). */
  readonly lockToken: string | undefined
  /** BullMQ's abort signal for this job; only with the processor option `abortSignal: true`. */
  readonly signal: AbortSignal | undefined
}

/**
 * The second argument of an idctx processor when a job failed verification in audit mode.
 *
 * @example
 * ```ts
 * if (idctx.identity === undefined) log.warn({ reason: idctx.rejection.reason, jobId: job.id })
 * ```
 */
export interface UnverifiedJobContext {
  readonly identity: undefined
  /** Why verification failed; the processor runs outside any identity context. */
  readonly rejection: VerificationError
  readonly scheduler: undefined
  readonly lockToken: string | undefined
  /** BullMQ's abort signal for this job; only with the processor option `abortSignal: true`. */
  readonly signal: AbortSignal | undefined
}

/**
 * What an idctx processor receives beside the job.
 *
 * @example
 * ```ts
 * const handle = async (job: Job, idctx: JobIdentity) => idctx.identity?.tid ?? 'unverified'
 * ```
 */
export type JobIdentity = VerifiedJobContext | UnverifiedJobContext

/**
 * A processor written against idctx: the job's data has no `__idctx`; the identity comes apart.
 * With policy `'fail'` it only ever receives a {@link VerifiedJobContext}.
 *
 * @example
 * ```ts
 * const send: IdctxProcessor<{ to: string }> = async (job, { identity }) => mail(identity!.sub, job.data.to)
 * ```
 */
export type IdctxProcessor<
  DataType = Record<string, unknown>,
  ResultType = unknown,
  NameType extends string = string,
  Identity extends JobIdentity = JobIdentity,
> = (job: Job<DataType, ResultType, NameType>, idctx: Identity) => Promise<ResultType>

/**
 * Job data as stored: the caller's data plus the reserved `__idctx` key.
 *
 * @example
 * ```ts
 * const worker = new Worker<SignedJobData<Invoice>>('invoices', createProcessor(handle, options), { connection })
 * ```
 */
export type SignedJobData<DataType> = DataType & { readonly __idctx?: string }
