import { describe, it, expect, afterEach } from 'vitest'
import { createMemoryReplayStore, type ReplayEntry, type ReplayStore } from '@idctx/core'
import { createProcessor, wrapQueue } from '@idctx/bullmq'
import { finished, fixture, harness, recordingObserver, userContext, type Harness } from './harness.js'

describe('bullmq destinations and coordinates (real Redis)', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  it('a job signed for queue billing, name refund/x does not verify on queue billing/refund, name x → binding_mismatch', async () => {
    h = harness()
    const f = fixture()
    const billing = h.queue('billing')
    const moved = h.queue('billing/refund')
    const queue = wrapQueue(billing, { signer: f.orders })
    const ctx = userContext()
    // Signed alone (the token has dst) and in a bulk with another name (no dst: the leaf decides).
    const alone = await queue.add('refund/x', { amount: 10 }, {}, { context: ctx })
    const [inBulk] = await queue.addBulk([
      { name: 'refund/x', data: { amount: 20 } },
      { name: 'other', data: { amount: 30 } },
    ], { context: ctx })
    const stored = async (id: string | undefined) =>
      JSON.parse((await h.redis().hget(h.jobKey('billing', id as string), 'data')) as string) as Record<string, unknown>
    const copies = [await moved.add('x', await stored(alone.id)), await moved.add('x', await stored(inBulk?.id))]
    const observer = recordingObserver()
    let ran = 0
    h.worker('billing/refund', createProcessor(async () => { ran++ }, { verifier: f.verifier({ observer }), tenant: 'acme' }))
    for (const c of copies) expect((await finished(moved, c.id)).job.failedReason).toBe('idctx rejected: binding_mismatch')
    expect(ran).toBe(0)
    expect(observer.events.filter((e) => e.kind === 'rejected').map((e) => e.event.destination)).toEqual([
      'bullmq:billing%2Frefund/x',
      'bullmq:billing%2Frefund/x',
    ])
    // On their own queue they verify.
    const seen: string[] = []
    h.worker('billing', createProcessor(async (_job, { identity }) => { seen.push(identity.destination) }, { verifier: f.verifier(), tenant: 'acme' }))
    expect((await finished(billing, alone.id)).state).toBe('completed')
    expect((await finished(billing, inBulk?.id)).state).toBe('completed')
    expect(seen.filter((d) => d === 'bullmq:billing/refund%2Fx')).toHaveLength(2)
  })

  it('a job id with a newline and an ANSI escape is percent-encoded in coordinates and events', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const queue = wrapQueue(raw, { signer: f.orders })
    const evil = 'pay\n1\u001b[31mred'
    const encoded = 'pay%0A1%1B%5B31mred'
    const signed = await queue.add('pay', { amount: 1 }, { jobId: evil }, { context: userContext() })
    const unsigned = await raw.add('pay', { amount: 2 }, { jobId: `${evil}-unsigned` })
    expect([signed.id, unsigned.id]).toEqual([evil, `${evil}-unsigned`])
    const inner = createMemoryReplayStore()
    const entries: ReplayEntry[] = []
    const replay: ReplayStore = {
      check(entry) {
        entries.push(entry)
        return inner.check(entry)
      },
    }
    const observer = recordingObserver()
    h.worker('payments', createProcessor(async () => 'ok', { verifier: f.verifier({ replay, observer }), tenant: 'acme', observer }))
    expect((await finished(raw, evil)).state).toBe('completed')
    expect((await finished(raw, `${evil}-unsigned`)).job.failedReason).toBe('idctx rejected: missing')
    expect(entries.map((e) => e.coordinates)).toEqual([`${h.prefix}:payments/${encoded}`])
    const dispositions = observer.events.filter((e) => e.kind === 'disposition')
    expect(dispositions.map((e) => e.event.coordinates)).toEqual([`${h.prefix}:payments/${encoded}-unsigned`])
    // No event field holds a raw control character.
    const text = JSON.stringify(observer.events)
    expect(/\\n|\\u001b/.test(text)).toBe(false)
  })
})
