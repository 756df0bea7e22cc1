import {
  bullmqDestination,
  bullmqLeaf,
  ConfigError,
  defaultContextStore,
  SigningError,
  type ContextStore,
  type IdentityContext,
  type MessageBinding,
  type Signer,
  isContextStore,
  unknownOptions,
} from '@idctx/core'
import { encodeCarrier, IDCTX_KEY } from './carrier.js'
import { signableData } from './job-data.js'
import { checkCallOptions } from './options.js'
import type { AddOptions, SigningOptions } from './types.js'

/** The keys of {@link SigningOptions}; any other key is a ConfigError. */
const SIGNING_OPTION_KEYS = ['signer', 'contextStore', 'lifetimeSeconds', 'maxDelayLifetimeSeconds', 'onMissingContext'] as const
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
  if (issues.length > 0) throw new ConfigError(what, issues)
  return Object.freeze({
    signer: options.signer,
    contextStore: options.contextStore ?? defaultContextStore,
    lifetimeSeconds: options.lifetimeSeconds,
    maxDelayLifetimeSeconds: max,
    onMissingContext: onMissing,
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

/**
 * Signs jobs with one token and returns each job's data with its `__idctx` carrier, in input
 * order. The per-call options and the data are validated first, so nothing is signed when one job
 * cannot be. Throws ConfigError (per-call options), SigningError (data, context, lifetime).
 */
export function signJobs(o: ResolvedSigningOptions, jobs: readonly PendingJob[], call: AddOptions | undefined): Record<string, unknown>[] {
  checkCallOptions('add options', call, ADD_OPTION_KEYS)
  for (const j of jobs) {
    if (typeof j.name !== 'string' || typeof j.queueName !== 'string') throw new TypeError('a job needs a string name and queue name')
  }
  const datas = jobs.map((j) => signableData(j.data))
  if (jobs.length === 0) return []
  const lifetime = lifetimeFor(o, jobs, call)
  const context = contextFor(o, call)
  if (context === undefined) return datas
  const messages: MessageBinding[] = jobs.map((j, i) => ({
    destination: bullmqDestination(j.queueName, j.name),
    leaf: bullmqLeaf(j.queueName, j.name, datas[i] as Record<string, unknown>),
  }))
  const signed = o.signer.sign(context, messages, lifetime === undefined ? {} : { lifetimeSeconds: lifetime })
  return datas.map((d, i) => ({ ...d, [IDCTX_KEY]: encodeCarrier(signed.token, signed.proofs[i]) }))
}

/** Runs `fn`, turning a synchronous throw into a rejected promise, as an async API should. */
export function rejecting<P extends Promise<unknown>>(fn: () => P): P {
  try {
    return fn()
  } catch (e) {
    return Promise.reject(e) as P
  }
}
