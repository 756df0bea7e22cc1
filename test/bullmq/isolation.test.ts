import { describe, it, expect, afterEach } from 'vitest'
import { currentContext, runWithContext, SigningError, type IdentityContext } from '@idctx/core'
import { createProcessor, wrapFlowProducer, wrapQueue, type JobIdentity, type SignedQueue } from '@idctx/bullmq'
import type { Job, Queue } from 'bullmq'
import { eventually, finished, fixture, harness, userContext, type Harness } from './harness.js'

/** The context the Worker is created in: it must reach no job. */
const foreign = userContext({ sub: 'u-foreign', txn: 'txn-foreign' })

interface Seen {
  readonly id: string | undefined
  readonly name: string
  readonly identityTxn: string | undefined
  readonly reason: string | undefined
  readonly current: IdentityContext | undefined
  readonly forwarded: string
}

describe('a processor never runs inside an identity it was not given (real Redis)', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  /**
   * A worker created inside the foreign context, whose processor records the context it runs in
   * and forwards a job through a wrapped queue (signed for whatever context is current).
   */
  function foreignWorker(queue: string, options: Omit<Parameters<typeof createProcessor>[1], 'tenant'>, forward: SignedQueue<Queue>) {
    const seen: Seen[] = []
    let calls = 0
    const worker = runWithContext(foreign, () =>
      h.worker(
        queue,
        createProcessor(
          async (job: Job, idctx: JobIdentity) => {
            calls++
            const current = currentContext()
            const forwarded = await forward.add('next', { from: job.id }).then(
              (j) => `signed:${String(j.id)}`,
              (e: unknown) => (e instanceof SigningError ? 'SigningError' : `other:${String(e)}`),
            )
            seen.push({ id: job.id, name: job.name, identityTxn: idctx.identity?.txn, reason: idctx.rejection?.reason, current, forwarded })
          },
          { tenant: 'acme', ...options },
        ),
      ),
    )
    return { seen, worker, calls: () => calls }
  }

  it('a verified job sees its own identity; an audit-rejected one none, and cannot forward (SigningError)', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const queue = wrapQueue(raw, { signer: f.orders })
    const ctx = userContext()
    const good = await queue.add('pay', { amount: 1 }, {}, { context: ctx })
    const unsigned = await raw.add('pay', { amount: 2 })
    const forward = wrapQueue(h.queue('forwarded'), { signer: f.billing })
    const { seen } = foreignWorker('payments', { verifier: f.verifier(), policy: 'audit' }, forward)
    expect((await finished(raw, good.id)).state).toBe('completed')
    expect((await finished(raw, unsigned.id)).state).toBe('completed')
    const byId = new Map(seen.map((s) => [s.id, s]))
    expect(byId.get(good.id)).toMatchObject({ identityTxn: ctx.txn, reason: undefined, current: { sub: 'u-42', txn: ctx.txn } })
    expect(byId.get(good.id)?.forwarded).toMatch(/^signed:/)
    expect(byId.get(unsigned.id)).toEqual({ id: unsigned.id, name: 'pay', identityTxn: undefined, reason: 'missing', current: undefined, forwarded: 'SigningError' })
    // Only the verified job's forward reached the next queue.
    expect(await h.queue('forwarded').count()).toBe(1)
  })

  it('flows: the parent and every child run in their own identity, never the foreign one', async () => {
    h = harness()
    const f = fixture()
    const flows = wrapFlowProducer(h.flowProducer(), { signer: f.orders })
    const ctx = userContext()
    const node = await runWithContext(ctx, () =>
      flows.add({
        name: 'render',
        queueName: 'flowisol',
        data: { reportId: 'r-1' },
        children: [
          { name: 'fetch', queueName: 'flowisol', data: { source: 'ledger' } },
          { name: 'fetch', queueName: 'flowisol', data: { source: 'crm' } },
        ],
      }),
    )
    const forward = wrapQueue(h.queue('forwarded'), { signer: f.billing })
    const { seen } = foreignWorker('flowisol', { verifier: f.verifier(), policy: 'audit' }, forward)
    expect((await finished(h.queue('flowisol'), node.job.id)).state).toBe('completed')
    await eventually(() => (seen.length === 3 ? true : undefined), 20_000, 'three flow jobs')
    expect(seen.map((s) => s.name).sort()).toEqual(['fetch', 'fetch', 'render'])
    expect(seen.map((s) => [s.identityTxn, s.current?.txn, s.current?.sub, s.reason])).toEqual(seen.map(() => [ctx.txn, ctx.txn, 'u-42', undefined]))
  })

  it('policy fail: a rejected job never reaches the processor', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const unsigned = await raw.add('pay', { amount: 2 })
    const forward = wrapQueue(h.queue('forwarded'), { signer: f.billing })
    const { seen, calls } = foreignWorker('payments', { verifier: f.verifier() }, forward)
    expect((await finished(raw, unsigned.id)).job.failedReason).toBe('idctx rejected: missing')
    expect(calls()).toBe(0)
    expect(seen).toEqual([])
    expect(await h.queue('forwarded').count()).toBe(0)
  })
})
