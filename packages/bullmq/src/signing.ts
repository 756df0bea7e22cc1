import {
  bullmqDestination,
  bullmqLeaf,
  ConfigError,
  createTurnSigner,
  defaultContextStore,
  SigningError,
  type ContextStore,
  type IdentityContext,
  type MessageBinding,
  type SignedCall,
  type Signer,
  type TurnSigner,
  isContextStore,
  unknownOptions,
} from '@idctx/core'
import { encodeCarrier, IDCTX_KEY } from './carrier.js'
import { signableCopy } from './job-data.js'
import { checkCallOptions } from './options.js'
import type { AddOptions, SigningOptions } from './types.js'

/** The keys of {@link SigningOptions}; any other key is a ConfigError. */
const SIGNING_OPTION_KEYS = ['signer', 'contextStore', 'lifetimeSeconds', 'maxDelayLifetimeSeconds', 'onMissingContext', 'batchProfile', 'maxBatchJobs'] as const
/** The keys of the per-call {@link AddOptions}. */
export const ADD_OPTION_KEYS = ['context', 'lifetimeSeconds'] as const

/** The signer's own default lifetime: the base of a delayed job's lifetime when none is set. */
const SIGNER_DEFAULT_LIFETIME = 300
const DEFAULT_MAX_DELAY_LIFETIME = 900
const MAX_SECONDS = 86_400 * 7

/** Signing options, checked once when a queue or flow producer is wrapped. */
export interface ResolvedSigningOptions {
  readonly signer: Signer
  readonly contextStore: ContextStore
  readonly lifetimeSeconds: number | undefined
  readonly maxDelayLifetimeSeconds: number
  readonly onMissingContext: 'throw' | 'unsigned'
  /** The calls of one event-loop turn signed together (design, "Batch profile"); undefined: `batchProfile: false`. */
  readonly turn: TurnSigner | undefined
}

/** One job about to be added: where it goes, its data, and when it first becomes processable. */
export interface PendingJob {
  readonly queueName: string
  readonly name: string
  readonly data: unknown
  readonly delayMs: number | undefined
}

function seconds(issues: { path: string; message: string }[], path: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > MAX_SECONDS)) {
    issues.push({ path, message: `must be a whole number of seconds in 1..${MAX_SECONDS}` })
  }
}

/** Validates and freezes the options of a wrapped queue or flow producer. */
export function resolveSigningOptions(what: string, options: SigningOptions): ResolvedSigningOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError(what, [{ path: '', message: 'options are required' }])
  const issues: { path: string; message: string }[] = unknownOptions(options, SIGNING_OPTION_KEYS)
  if (typeof options.signer?.sign !== 'function' || typeof options.signer.signGrant !== 'function') {
    issues.push({ path: 'signer', message: 'a Signer (createSigner) is required' })
  }
  if (options.contextStore !== undefined && !isContextStore(options.contextStore)) {
    issues.push({ path: 'contextStore', message: 'must be a ContextStore (run, current and exit)' })
  }
  seconds(issues, 'lifetimeSeconds', options.lifetimeSeconds)
  seconds(issues, 'maxDelayLifetimeSeconds', options.maxDelayLifetimeSeconds)
  const onMissing = options.onMissingContext ?? 'throw'
  if (onMissing !== 'throw' && onMissing !== 'unsigned') {
    issues.push({ path: 'onMissingContext', message: "must be 'throw' or 'unsigned'" })
  }
  const max = options.maxDelayLifetimeSeconds ?? DEFAULT_MAX_DELAY_LIFETIME
  if (options.lifetimeSeconds !== undefined && options.lifetimeSeconds > max) {
    issues.push({ path: 'lifetimeSeconds', message: 'must not exceed maxDelayLifetimeSeconds' })
  }
  if (options.batchProfile !== undefined && typeof options.batchProfile !== 'boolean') {
    issues.push({ path: 'batchProfile', message: 'must be a boolean (false: one token per call, signed at once)' })
  }
  const maxJobs = options.maxBatchJobs
  if (maxJobs !== undefined && (typeof maxJobs !== 'number' || !Number.isInteger(maxJobs) || maxJobs < 2 || maxJobs > 2 ** 20)) {
    issues.push({ path: 'maxBatchJobs', message: 'must be a whole number of jobs in 2..1048576' })
  }
  if (options.batchProfile === false && maxJobs !== undefined) {
    issues.push({ path: 'maxBatchJobs', message: 'only applies with batchProfile: true (the default)' })
  }
  if (issues.length > 0) throw new ConfigError(what, issues)
  return Object.freeze({
    signer: options.signer,
    contextStore: options.contextStore ?? defaultContextStore,
    lifetimeSeconds: options.lifetimeSeconds,
    maxDelayLifetimeSeconds: max,
    onMissingContext: onMissing,
    turn: options.batchProfile === false ? undefined : createTurnSigner(options.signer, maxJobs === undefined ? {} : { maxMessages: maxJobs }),
  })
}

function delayOf(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0
}

/**
 * The lifetime to ask the signer for: the base lifetime, plus the longest delay of the call so a
 * delayed job's token is still valid when the job becomes processable. Undefined: signer default.
 */
export function lifetimeFor(o: ResolvedSigningOptions, jobs: readonly PendingJob[], call: AddOptions | undefined): number | undefined {
  let delayMs = 0
  for (const j of jobs) delayMs = Math.max(delayMs, delayOf(j.delayMs))
  const base = call?.lifetimeSeconds ?? o.lifetimeSeconds
  if (call?.lifetimeSeconds !== undefined) {
    const v = call.lifetimeSeconds
    if (!Number.isInteger(v) || v <= 0) {
      throw new ConfigError('add options', [{ path: 'lifetimeSeconds', message: 'must be a positive whole number of seconds' }])
    }
  }
  if (delayMs === 0 && base === undefined) return undefined
  const lifetime = (base ?? SIGNER_DEFAULT_LIFETIME) + Math.ceil(delayMs / 1000)
  if (lifetime > o.maxDelayLifetimeSeconds) {
    throw new SigningError(
      delayMs > 0
        ? `a delay of ${Math.ceil(delayMs / 1000)} s needs a token lifetime of ${lifetime} s, above maxDelayLifetimeSeconds (${o.maxDelayLifetimeSeconds}); raise it (and the signer's and verifiers' maxLifetimeSeconds) or use a job scheduler`
        : `lifetime of ${lifetime} s is above maxDelayLifetimeSeconds (${o.maxDelayLifetimeSeconds})`,
    )
  }
  return lifetime
}

/**
 * The context to sign for: the explicit one (even an invalid one, which the signer then refuses
 * with a SigningError), else the current one; undefined when unsigned is allowed.
 */
export function contextFor(o: ResolvedSigningOptions, call: { context?: IdentityContext } | undefined): IdentityContext | undefined {
  const context = call?.context !== undefined ? call.context : o.contextStore.current()
  if (context === undefined && o.onMissingContext === 'throw') {
    throw new SigningError('no identity context to sign the job with: pass { context } or add inside contextStore.run()')
  }
  return context
}

/** Jobs of one call, checked and ready to sign: their data, leaves, lifetime and context. */
export interface PreparedJobs {
  readonly datas: readonly Record<string, unknown>[]
  readonly messages: readonly MessageBinding[]
  /** The lifetime to ask for (base plus the longest delay); undefined: the signer's default. */
  readonly lifetime: number | undefined
  /** Undefined: the jobs are added unsigned (`onMissingContext: 'unsigned'`, or no jobs). */
  readonly context: IdentityContext | undefined
}

/**
 * Checks the jobs of one call when it is made — per-call options, names, data, lifetime, context —
 * and computes their leaves. Nothing is signed. Throws ConfigError (per-call options),
 * SigningError (data, context, lifetime), TypeError (names).
 */
export function prepareJobs(o: ResolvedSigningOptions, jobs: readonly PendingJob[], call: AddOptions | undefined): PreparedJobs {
  checkCallOptions('add options', call, ADD_OPTION_KEYS)
  for (const j of jobs) {
    if (typeof j.name !== 'string' || typeof j.queueName !== 'string') throw new TypeError('a job needs a string name and queue name')
  }
  // The jobs reach BullMQ later (a turn later with the batch profile; and BullMQ itself serializes
  // the data only after awaiting its connection): keep a copy of the data as it is now, the data
  // signed, so a caller reusing or changing its object after `add` returned cannot make the stored
  // data differ from the signed data (binding_mismatch at the worker). The check makes the copy
  // in the same walk: exactly what a JSON round trip would give.
  const datas = jobs.map((j) => signableCopy(j.data))
  if (jobs.length === 0) return { datas, messages: [], lifetime: undefined, context: undefined }
  const lifetime = lifetimeFor(o, jobs, call)
  const context = contextFor(o, call)
  if (context === undefined) return { datas, messages: [], lifetime, context }
  const messages: MessageBinding[] = jobs.map((j, i) => ({
    destination: bullmqDestination(j.queueName, j.name),
    leaf: bullmqLeaf(j.queueName, j.name, datas[i] as Record<string, unknown>),
  }))
  return { datas, messages, lifetime, context }
}

/** The jobs' data with their `__idctx` carriers, in input order. */
function carry(prep: PreparedJobs, signed: Pick<SignedCall, 'token' | 'proofs'> & { readonly contextRecord?: string | undefined }): Record<string, unknown>[] {
  return prep.datas.map((d, i) => ({ ...d, [IDCTX_KEY]: encodeCarrier(signed.token, signed.proofs[i], signed.contextRecord) }))
}

/**
 * Signs jobs with one token at once and returns each job's data with its `__idctx` carrier, in
 * input order (the single profile, whatever the turn). The per-call options and the data are
 * validated first, so nothing is signed when one job cannot be. Throws ConfigError (per-call
 * options), SigningError (data, context, lifetime).
 */
export function signJobs(o: ResolvedSigningOptions, jobs: readonly PendingJob[], call: AddOptions | undefined): Record<string, unknown>[] {
  const prep = prepareJobs(o, jobs, call)
  if (prep.context === undefined) return [...prep.datas]
  return carry(prep, o.signer.sign(prep.context, prep.messages, prep.lifetime === undefined ? {} : { lifetimeSeconds: prep.lifetime }))
}

/**
 * Signs a prepared call — with the other calls of its event-loop turn (a batch-profile token;
 * alone, the single profile), or at once with `batchProfile: false` — and hands the data with
 * carriers to `deliver`, which adds them to BullMQ. Calls reach `deliver` in the order they were
 * made (an unsigned one waits for the calls before it), from the caller's own async context.
 * The promise rejects when signing or `deliver` fails.
 */
export function afterSigning<T>(o: ResolvedSigningOptions, prep: PreparedJobs, deliver: (datas: Record<string, unknown>[]) => Promise<T>): Promise<T> {
  if (o.turn === undefined) {
    if (prep.context === undefined) return deliver([...prep.datas])
    return deliver(carry(prep, o.signer.sign(prep.context, prep.messages, prep.lifetime === undefined ? {} : { lifetimeSeconds: prep.lifetime })))
  }
  // One hop only, on either promise: each resolves in call order.
  const order: Promise<SignedCall | void> =
    prep.context === undefined ? o.turn.barrier() : o.turn.sign({ context: prep.context, messages: prep.messages, lifetimeSeconds: prep.lifetime })
  return order.then((signed) => deliver(signed === undefined ? [...prep.datas] : carry(prep, signed)))
}

/** Runs `fn`, turning a synchronous throw into a rejected promise, as an async API should. */
export function rejecting<P extends Promise<unknown>>(fn: () => P): P {
  try {
    return fn()
  } catch (e) {
    return Promise.reject(e) as P
  }
}
