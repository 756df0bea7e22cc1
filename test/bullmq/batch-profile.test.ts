import { describe, it, expect, afterEach } from 'vitest'
import { createMemoryReplayStore, runWithContext, type IdentityContext, type SignedEvent, type VerifiedContext } from '@idctx/core'
import { createProcessor, decodeCarrier, wrapFlowProducer, wrapQueue, type JobIdentity } from '@idctx/bullmq'
import type { Job } from 'bullmq'
import { eventually, finished, fixture, harness, type Harness } from './harness.js'

const user = (i: number): IdentityContext => ({ sub: `u-${i}`, tid: i % 3 === 0 ? 'globex' : 'acme', txn: `txn-${i}`, pty: 'user', roles: [`role-${i}`] })

interface Seen {
  readonly id: string | undefined
  readonly n: unknown
  readonly identity: VerifiedContext | undefined
}

function collecting(seen: Seen[]) {
  return async (job: Job<Record<string, unknown>>, idctx: JobIdentity) => {
    seen.push({ id: job.id, n: job.data.n, identity: idctx.identity })
    return 'ok'
  }
}

/** A fixture whose `orders` signer counts its signatures. */
function countingFixture() {
  const f = fixture()
  const signed: SignedEvent[] = []
  return { f, signed, orders: f.signer('orders', { observer: { onSigned: (e) => signed.push(e) } }) }
}

describe('batch profile against a real Redis: one signature per event-loop turn', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  it('50 adds of 50 users in one turn: one signature; every job verified with its own user', async () => {
    h = harness()
    const { f, signed, orders } = countingFixture()
    const queue = wrapQueue(h.queue('invoices'), { signer: orders })
    const jobs = await Promise.all(Array.from({ length: 50 }, (_, i) => runWithContext(user(i), () => queue.add('invoice', { n: i }))))
    expect(signed).toHaveLength(1)
    expect(signed[0]).toMatchObject({ profile: 'batch', count: 50, contexts: 50 })

    // What Redis holds: <jws>~<proof>~<context record>, one token for all.
    const stored = await Promise.all(jobs.map(async (j) => JSON.parse((await h.redis().hget(h.jobKey('invoices', j.id as string), 'data')) as string) as Record<string, unknown>))
    const carriers = stored.map((d) => decodeCarrier(d.__idctx) as { token: string; proof: string; contextRecord: string })
    expect(new Set(carriers.map((c) => c.token)).size).toBe(1)
    carriers.forEach((c, i) => expect(JSON.parse(c.contextRecord)).toMatchObject({ sub: `u-${i}`, tid: user(i).tid, txn: `txn-${i}` }))

    const seen: Seen[] = []
    h.worker('invoices', createProcessor(collecting(seen), { verifier: f.verifier(), tenant: ['acme', 'globex'] }), { concurrency: 50 })
    for (const j of jobs) expect((await finished(h.queue('invoices'), j.id)).state).toBe('completed')
    expect(seen).toHaveLength(50)
    for (const s of seen) {
      const i = s.n as number
      expect(s.identity).toMatchObject({ sub: `u-${i}`, tid: user(i).tid, txn: `txn-${i}`, roles: [`role-${i}`], destination: 'bullmq:invoices/invoice' })
      expect(s.identity?.claims).toMatchObject({ iss: 'orders', sub: `u-${i}`, act: { sub: 'orders' } })
    }
  })

  it('50 adds in one turn: a job under another job\'s context record is binding_mismatch; without its record, malformed; copied elsewhere, replayed', async () => {
    h = harness()
    const { f, orders, signed } = countingFixture()
    const queue = wrapQueue(h.queue('moves'), { signer: orders })
    const jobs = await Promise.all(Array.from({ length: 50 }, (_, i) => queue.add('invoice', { n: i }, {}, { context: user(i) })))
    expect(signed).toHaveLength(1)
    const parts = jobs.map((j) => String((j.data as Record<string, unknown>).__idctx).split('~'))
    const raw = h.queue('moves')
    const underOther = await raw.add('invoice', { n: 0, __idctx: [parts[0]![0], parts[0]![1], parts[1]!.slice(2).join('~')].join('~') })
    const underOtherWithProof = await raw.add('invoice', { n: 2, __idctx: parts[1]!.join('~') })
    const withoutRecord = await raw.add('invoice', { n: 1, __idctx: parts[1]!.slice(0, 2).join('~') })

    const seen: Seen[] = []
    h.worker('moves', createProcessor(collecting(seen), { verifier: f.verifier({ replay: createMemoryReplayStore() }), tenant: ['acme', 'globex'] }))
    for (const j of jobs) expect((await finished(h.queue('moves'), j.id)).state).toBe('completed')
    const copied = await raw.add('invoice', { n: 1, __idctx: parts[1]!.join('~') }, { jobId: `copy-of-${jobs[1]!.id}` })
    const reasons = await Promise.all([underOther, underOtherWithProof, withoutRecord, copied].map(async (j) => (await finished(h.queue('moves'), j.id)).job.failedReason))
    expect(reasons).toEqual(['idctx rejected: binding_mismatch', 'idctx rejected: binding_mismatch', 'idctx rejected: malformed', 'idctx rejected: replayed'])
    expect(seen).toHaveLength(50)
    for (const s of seen) expect(s.identity?.sub).toBe(`u-${s.n as number}`)
  })

  it('a bad add in a turn fails alone; add, addBulk and delayed adds of one turn are signed by lifetime', async () => {
    h = harness()
    const { f, signed, orders } = countingFixture()
    const queue = wrapQueue(h.queue('mixed'), { signer: orders })
    const outcomes = await Promise.allSettled([
      queue.add('invoice', { n: 1 }, {}, { context: user(1) }),
      queue.add('invoice', { n: 2, at: new Date() } as never, {}, { context: user(2) }),
      queue.add('invoice', { n: 3 }, {}, { context: { sub: 'u', tid: 'acme', txn: '' } }),
      queue.addBulk([{ name: 'invoice', data: { n: 4 } }, { name: 'refund', data: { n: 5 } }], { context: user(4) }),
      queue.add('invoice', { n: 6 }, { delay: 500 }, { context: user(6) }),
      queue.add('invoice', { n: 7 }, { delay: 500 }, { context: user(7) }),
    ])
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'added' : (o.reason as Error).name))).toEqual(['added', 'SigningError', 'SigningError', 'added', 'added', 'added'])
    // one token for the jobs that run at once, one for the delayed ones (their lifetime includes the delay)
    expect(signed.map((e) => [e.profile, e.count])).toEqual([
      ['batch', 3],
      ['batch', 2],
    ])
    const seen: Seen[] = []
    h.worker('mixed', createProcessor(collecting(seen), { verifier: f.verifier(), tenant: ['acme', 'globex'] }))
    await eventually(() => (seen.length >= 5 ? true : undefined), 20_000, '5 jobs')
    expect(seen.map((s) => [s.n, s.identity?.sub]).sort()).toEqual([
      [1, 'u-1'],
      [4, 'u-4'],
      [5, 'u-4'],
      [6, 'u-6'],
      [7, 'u-7'],
    ])
    expect(await h.queue('mixed').getJobCounts('waiting', 'delayed', 'failed')).toEqual({ waiting: 0, delayed: 0, failed: 0 })
  })

  it('flows of one turn share a token; parent and children verify with their flow\'s user', async () => {
    h = harness()
    const { f, signed, orders } = countingFixture()
    const flows = wrapFlowProducer(h.flowProducer(), { signer: orders })
    const nodes = await Promise.all(
      [0, 1].map((i) =>
        flows.add({ name: 'render', queueName: 'reports', data: { n: i * 10 }, children: [{ name: 'fetch', queueName: 'sources', data: { n: i * 10 + 1 } }] }, undefined, { context: user(i) }),
      ),
    )
    expect(signed).toHaveLength(1)
    const seen: Seen[] = []
    const verifier = f.verifier()
    h.worker('sources', createProcessor(collecting(seen), { verifier, tenant: ['acme', 'globex'] }))
    h.worker('reports', createProcessor(collecting(seen), { verifier, tenant: ['acme', 'globex'] }))
    for (const n of nodes) expect((await finished(h.queue('reports'), n.job.id)).state).toBe('completed')
    expect(seen.map((s) => [s.n, s.identity?.sub]).sort()).toEqual([
      [0, 'u-0'],
      [1, 'u-0'],
      [10, 'u-1'],
      [11, 'u-1'],
    ])
  })

  it('50 adds in flight: far fewer signatures than adds (batchProfile: false signs each)', async () => {
    h = harness()
    const { f, signed, orders } = countingFixture()
    const queue = wrapQueue(h.queue('flight'), { signer: orders })
    const rounds = 4
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        for (let k = 0; k < rounds; k++) await queue.add('invoice', { n: i * 100 + k }, {}, { context: user(i) })
      }),
    )
    const adds = 50 * rounds
    console.info(`[batch profile] ${adds} adds in flight 50 at a time: ${signed.length} signatures, ${(adds / signed.length).toFixed(1)} adds per signature`)
    expect(signed.reduce((n, e) => n + e.count, 0)).toBe(adds)
    expect(signed.length).toBeLessThan(adds / 4)
    const seen: Seen[] = []
    h.worker('flight', createProcessor(collecting(seen), { verifier: f.verifier(), tenant: ['acme', 'globex'] }), { concurrency: 50 })
    await eventually(() => (seen.length >= adds ? true : undefined), 60_000, `${adds} jobs`)
    for (const s of seen) expect(s.identity?.sub).toBe(`u-${Math.floor((s.n as number) / 100)}`)

    const off: SignedEvent[] = []
    const each = wrapQueue(h.queue('flight-off'), { signer: f.signer('orders', { observer: { onSigned: (e) => off.push(e) } }), batchProfile: false })
    await Promise.all(Array.from({ length: 10 }, (_, i) => each.add('invoice', { n: i }, {}, { context: user(i) })))
    expect(off).toHaveLength(10)
  })
})
