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
 * Options of `wrapQueue` and `wrapFlowProducer`: how jobs are signed.
 *
 * @example
 * ```ts
 * const options: SigningOptions = { signer, maxDelayLifetimeSeconds: 3600 }
 * ```
 */
export interface SigningOptions {
  /** Signs one token per `add`, `addBulk` or flow call. Its observer receives `onSigned`. */
  signer: Signer
  /** Where the current identity context is read from (default: core's `defaultContextStore`). */
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
}

/**
 * Per-call options: the last argument of the wrapped `add`, `addBulk` and flow calls.
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
 * The scheduler principal: a system identity. `pty` is always `system`; each run gets its own
 * `txn` (derived from the run's job id, so retries of one run share it).
 *
 * @example
 * ```ts
 * const context: SchedulerContext = { sub: 'svc-nightly-report', tid: 'acme', roles: ['reporter'] }
 * ```
 */
export interface SchedulerContext {
  readonly sub: string
  readonly tid: string
  readonly pty?: 'system'
  readonly roles?: readonly string[]
  readonly scope?: string
}

/**
 * How the worker signs the runs of one job scheduler (see docs/bullmq.md, "Job schedulers").
 *
 * @example
 * ```ts
 * const schedulers = { 'nightly-report': { context: { sub: 'svc-report', tid: 'acme' }, signer: schedulerSigner } }
 * ```
 */
export interface SchedulerIdentity {
  /** The system principal the runs execute as. */
  readonly context: SchedulerContext
  /** The scheduler's own issuer; the worker's verifier must trust it (and its ACL allow it). */
  readonly signer: Signer
}

/**
 * Options of `createProcessor`: how jobs are verified and what happens to rejected ones.
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
  /** Job schedulers whose runs the worker signs itself, by scheduler id. */
  schedulers?: Readonly<Record<string, SchedulerIdentity>>
  /** The store the processor runs in, so jobs it adds carry the context on (default: core's). */
  contextStore?: ContextStore
  /** Receives `onDisposition` for every rejected job, and `onRejected` for checks made here. */
  observer?: IdctxObserver
  /** Epoch milliseconds, for the retry-grace check (default Date.now; match the verifier's). */
  clock?: () => number
}

/**
 * The second argument of an idctx processor when the job verified.
 *
 * @example
 * ```ts
 * createProcessor(async (job, { identity, signal }) => render(identity.tid, job.data, signal), options)
 * ```
 */
export interface VerifiedJobContext {
  /** The verified identity; the processor also runs inside it (context store). */
  readonly identity: VerifiedContext
  readonly rejection: undefined
  /** BullMQ's lock token of this attempt (not the idctx token). */
  readonly lockToken: string | undefined
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
  readonly lockToken: string | undefined
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
