import { createHash } from 'node:crypto'
import { bullmqDestination, bullmqLeaf, SigningError, type IdentityContext } from '@idctx/core'
import type { Job } from 'bullmq'
import { IDCTX_KEY } from './carrier.js'
import { isPlainObject, signableData } from './job-data.js'
import type { SchedulerIdentity } from './types.js'

type Issues = { path: string; message: string }[]

/**
 * Checks a job scheduler template for the wrapped `upsertJobScheduler`: its data must be signable
 * (plain, JSON-safe, no `__idctx`). It is stored without a token — a token fixed at upsert time
 * would expire long before the later runs.
 */
export function schedulerTemplate<T>(template: T): T {
  if (template === undefined || template === null) return template
  if (typeof template !== 'object') throw new TypeError('a job scheduler template must be an object')
  const data = (template as { data?: unknown }).data
  if (data !== undefined) signableData(data)
  return template
}

/** Checks the `schedulers` option of a processor once, at construction. */
export function resolveSchedulers(
  schedulers: Readonly<Record<string, SchedulerIdentity>> | undefined,
  issues: Issues,
): ReadonlyMap<string, SchedulerIdentity> {
  const out = new Map<string, SchedulerIdentity>()
  if (schedulers === undefined) return out
  if (schedulers === null || typeof schedulers !== 'object') {
    issues.push({ path: 'schedulers', message: 'must be an object keyed by scheduler id' })
    return out
  }
  for (const [id, s] of Object.entries(schedulers)) {
    const path = `schedulers.${id.slice(0, 64)}`
    if (id.length === 0) issues.push({ path, message: 'scheduler id must not be empty' })
    if (s === null || typeof s !== 'object') {
      issues.push({ path, message: 'must be { context, signer }' })
      continue
    }
    if (typeof s.signer?.sign !== 'function') issues.push({ path: `${path}.signer`, message: 'a Signer is required' })
    const c = s.context as Partial<SchedulerIdentity['context']> | undefined
    if (c === null || typeof c !== 'object') {
      issues.push({ path: `${path}.context`, message: 'a system principal { sub, tid } is required' })
      continue
    }
    if (typeof c.sub !== 'string' || c.sub.length === 0) issues.push({ path: `${path}.context.sub`, message: 'required' })
    if (typeof c.tid !== 'string' || c.tid.length === 0) issues.push({ path: `${path}.context.tid`, message: 'required' })
    // A scheduler may only act as a system principal, never as a user it could impersonate.
    if (c.pty !== undefined && c.pty !== 'system') issues.push({ path: `${path}.context.pty`, message: "must be 'system'" })
    out.set(id, Object.freeze({ context: Object.freeze({ ...s.context }), signer: s.signer }))
  }
  return out
}

/**
 * The scheduler identity that signs this job: only for a job produced by a configured job
 * scheduler (its `repeatJobKey`, and the `repeat:<schedulerId>:<millis>` job id BullMQ gives each
 * run) that carries no token of its own.
 */
export function schedulerFor(
  schedulers: ReadonlyMap<string, SchedulerIdentity>,
  job: Job,
  data: Record<string, unknown> | undefined,
): SchedulerIdentity | undefined {
  if (schedulers.size === 0) return undefined
  const id = job.repeatJobKey
  if (typeof id !== 'string' || data === undefined) return undefined
  if (Object.prototype.hasOwnProperty.call(data, IDCTX_KEY)) return undefined
  if (typeof job.id !== 'string' || !job.id.startsWith(`repeat:${id}:`)) return undefined
  return schedulers.get(id)
}

/**
 * Signs a fresh token for one scheduler run, bound to the run's actual data, for the scheduler's
 * system principal. The token then goes through the normal verifier, like any other.
 */
export function signSchedulerRun(identity: SchedulerIdentity, job: Job, data: Record<string, unknown>): string {
  if (!isPlainObject(data)) throw new SigningError('scheduler job data must be a plain object')
  const c = identity.context
  // Retries of one run share a transaction id; each run gets its own.
  const txn = createHash('sha256').update(`${job.queueQualifiedName}/${String(job.id)}`).digest('hex').slice(0, 32)
  const context: IdentityContext = { sub: c.sub, tid: c.tid, txn, pty: 'system', roles: c.roles, scope: c.scope }
  const signed = identity.signer.sign(context, [
    { destination: bullmqDestination(job.queueName, job.name), leaf: bullmqLeaf(job.queueName, job.name, data) },
  ])
  return signed.token
}
