import { passThrough } from '@idctx/core'
import type { Queue } from 'bullmq'
import { signedSchedulerTemplate } from './scheduler.js'
import { afterSigning, prepareJobs, rejecting, resolveSigningOptions, type PendingJob } from './signing.js'
import type { AddOptions, SchedulerOptions, SigningOptions } from './types.js'

// What the wrapper uses of a BullMQ Queue, spelled out instead of `Queue<any, …>`: BullMQ 6 added
// type parameters to Queue, so no one arity type-checks against both 5.x and 6.x declarations.
type AnyQueue = Pick<Queue, 'name' | 'defaultJobOptions'> & {
  add(...args: any[]): Promise<unknown>
  addBulk(...args: any[]): Promise<unknown>
  upsertJobScheduler(...args: any[]): Promise<unknown>
}

type AddArgs<Q extends AnyQueue> = Parameters<Q['add']>
type BulkJobs<Q extends AnyQueue> = Parameters<Q['addBulk']>[0]
type SchedulerArgs<Q extends AnyQueue> = Parameters<Q['upsertJobScheduler']>

/**
 * The members {@link wrapQueue} replaces or adds; everything else is the queue's own.
 *
 * @example
 * ```ts
 * await signedQueue.unwrapped.add('unsigned-probe', {}) // bypasses signing on purpose
 * ```
 */
export interface SignedQueueMembers<Q extends AnyQueue> {
  /**
   * `Queue.add`, with the job signed for the current (or given) identity context. The data must
   * be a plain, JSON-safe object without `__idctx`; the stored data gets the `__idctx` carrier.
   * Adds of one event-loop turn share one batch-profile token (see `SigningOptions.batchProfile`);
   * the job is added once its turn is signed, in call order. Rejects with a ConfigError for an
   * unknown key in `idctx`, a SigningError when the data or the context cannot be signed —
   * checked when the call is made, so a bad call fails alone and nothing is added then.
   */
  add(name: AddArgs<Q>[0], data: AddArgs<Q>[1], opts?: AddArgs<Q>[2], idctx?: AddOptions): ReturnType<Q['add']>
  /**
   * `Queue.addBulk`, with a Merkle proof per job under one token: the call's own (single
   * profile), or its turn's (batch profile, when other calls share the turn).
   */
  addBulk(jobs: BulkJobs<Q>, idctx?: AddOptions): ReturnType<Q['addBulk']>
  /**
   * `Queue.upsertJobScheduler`, with the template data checked like `add` checks it and a grant
   * stored in it under `__idctx` (`g:<jws>`): signed by the signer for the current (or given)
   * context, bound to this queue, the scheduler id, the job name (default: the scheduler id) and
   * the template data. BullMQ copies it into every run; a worker verifies it and runs each run as
   * the grant's principal with a `txn` of its own. Upserting again renews the grant (default
   * lifetime: the signer's `grantLifetimeSeconds`, one day).
   */
  upsertJobScheduler(
    schedulerId: SchedulerArgs<Q>[0],
    repeatOpts: SchedulerArgs<Q>[1],
    template?: SchedulerArgs<Q>[2],
    idctx?: SchedulerOptions,
  ): ReturnType<Q['upsertJobScheduler']>
  /** The wrapped queue itself, for the rare call that must not be signed. */
  readonly unwrapped: Q
}

/**
 * A BullMQ queue whose `add`, `addBulk` and `upsertJobScheduler` are idctx-aware: they sign.
 *
 * @example
 * ```ts
 * const invoices: SignedQueue<Queue<Invoice>> = wrapQueue(new Queue<Invoice>('invoices', { connection }), { signer })
 * ```
 */
export type SignedQueue<Q extends AnyQueue> = Omit<Q, keyof SignedQueueMembers<Q>> & SignedQueueMembers<Q>

function delayOf(queue: AnyQueue, opts: { delay?: number } | undefined): number | undefined {
  return opts?.delay ?? (queue.defaultJobOptions as { delay?: number } | undefined)?.delay
}

/**
 * Wraps a BullMQ `Queue` so that `add` and `addBulk` sign each job's data with the identity
 * context, bound to the queue, the job name and the exact data. The queue is not modified: the
 * result is a view that passes every other member (`close`, `getJob`, events, …) through.
 *
 * The calls made in one event-loop turn are signed together (design, "Batch profile"; option
 * `batchProfile`, default true): calls with the same token lifetime share one batch-profile token
 * whatever their identity contexts, each job carrying its context record; a call alone in its
 * turn keeps the single profile. Each call is still its own `Queue.add`/`addBulk`, made in call
 * order once its turn is signed.
 *
 * A delayed job (`opts.delay`, or the queue's default delay) gets a token that lives
 * `lifetimeSeconds + delay`, capped by `maxDelayLifetimeSeconds` (see docs/bullmq.md). A job
 * scheduler's template gets a grant (see `upsertJobScheduler`).
 *
 * Throws a ConfigError (`ERR_IDCTX_CONFIG`) for invalid options or an unknown option key.
 *
 * @example
 * ```ts
 * const invoices = wrapQueue(new Queue('invoices', { connection }), { signer })
 * await runWithContext({ sub: 'u-42', tid: 'acme', txn: randomUUID() }, () =>
 *   invoices.add('invoice', { invoiceId: 'inv-1', total: 30 }),
 * )
 * ```
 */
export function wrapQueue<Q extends AnyQueue>(queue: Q, options: SigningOptions): SignedQueue<Q> {
  const o = resolveSigningOptions('wrapQueue options', options)
  const members: SignedQueueMembers<Q> = {
    add: (name, data, opts, idctx) =>
      rejecting(() => {
        const pending: PendingJob = { queueName: queue.name, name, data, delayMs: delayOf(queue, opts) }
        const prep = prepareJobs(o, [pending], idctx)
        return afterSigning(o, prep, ([signed]) => queue.add(name, signed, opts)) as ReturnType<Q['add']>
      }),
    addBulk: (jobs, idctx) =>
      rejecting(() => {
        const list = jobs as { name: string; data: unknown; opts?: { delay?: number } }[]
        const prep = prepareJobs(
          o,
          list.map((j) => ({ queueName: queue.name, name: j.name, data: j.data, delayMs: delayOf(queue, j.opts) })),
          idctx,
        )
        return afterSigning(o, prep, (signed) => queue.addBulk(list.map((j, i) => ({ ...j, data: signed[i] })))) as ReturnType<Q['addBulk']>
      }),
    upsertJobScheduler: (schedulerId, repeatOpts, template, idctx) =>
      rejecting(() => {
        const signed = signedSchedulerTemplate(o, queue.name, schedulerId, template, idctx)
        return queue.upsertJobScheduler(schedulerId, repeatOpts, signed as SchedulerArgs<Q>[2]) as ReturnType<Q['upsertJobScheduler']>
      }),
    unwrapped: queue,
  }
  return passThrough(queue, members)
}
