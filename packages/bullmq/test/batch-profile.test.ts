import { describe, it, expect } from 'vitest'
import {
  ConfigError,
  createSigner,
  createVerifier,
  generateKey,
  runWithContext,
  SigningError,
  type IdentityContext,
  type SignedEvent,
} from '@idctx/core'
import type { FlowProducer, Job, Queue } from 'bullmq'
import { createProcessor, decodeCarrier, JobRejectedError, wrapFlowProducer, wrapQueue, type JobIdentity } from '@idctx/bullmq'
import { fakeFlowProducer, fakeQueue, thrownBy } from './util.js'

const key = generateKey()
const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] } })
const user = (i: number): IdentityContext => ({ sub: `u-${i}`, tid: i % 2 === 0 ? 'acme' : 'globex', txn: `txn-${i}` })

function setup(options: { batchProfile?: boolean; maxBatchJobs?: number } = {}) {
  const signed: SignedEvent[] = []
  const signer = createSigner({ issuer: 'orders', audience: 'shop', key, observer: { onSigned: (e) => signed.push(e) } })
  const { queue, calls } = fakeQueue('q')
  return { signed, signer, calls, queue: wrapQueue(queue, { signer, ...options }) }
}

/** The data a fake queue was asked to add, in order (add: one, addBulk: each job's). */
function addedData(calls: { added: unknown[][] }): Record<string, unknown>[] {
  return calls.added.flatMap((c) =>
    c[0] === 'add' ? [c[2] as Record<string, unknown>] : (c[1] as { data: Record<string, unknown> }[]).map((j) => j.data),
  )
}

function jobOf(data: Record<string, unknown>, id: string, name = 'invoice'): Job {
  return { name, queueName: 'q', queueQualifiedName: 'bull:q', id, data, opts: {}, attemptsMade: 0, attemptsStarted: 1, timestamp: Date.now() } as unknown as Job
}

/** Runs each stored job through a processor; the identity it saw, or the reason it was rejected. */
async function process(datas: readonly Record<string, unknown>[], names?: readonly string[]) {
  const p = createProcessor(async (_job: Job, idctx: JobIdentity) => idctx.identity, { verifier, tenant: { any: true } })
  return Promise.all(
    datas.map((d, i) =>
      (p(jobOf(d, String(i), names?.[i]) as never) as Promise<JobIdentity['identity']>).then(
        (identity) => `${identity?.sub}/${identity?.tid}/${identity?.txn}`,
        (e: unknown) => (e instanceof JobRejectedError ? `rejected:${e.reason}` : `threw:${String(e)}`),
      ),
    ),
  )
}

describe('wrapQueue: the adds of one event-loop turn share one signature', () => {
  it('50 adds of 50 users: one token; every job verifies with its own user', async () => {
    const { signed, calls, queue } = setup()
    await Promise.all(Array.from({ length: 50 }, (_, i) => runWithContext(user(i), () => queue.add('invoice', { n: i }))))
    expect(signed).toHaveLength(1)
    expect(signed[0]).toMatchObject({ profile: 'batch', count: 50, contexts: 50 })
    const datas = addedData(calls)
    expect(datas.map((d) => d.n)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    for (const d of datas) expect(decodeCarrier(d.__idctx)).toMatchObject({ kind: 'message', proof: expect.any(String), contextRecord: expect.any(String) })
    expect(await process(datas)).toEqual(Array.from({ length: 50 }, (_, i) => `u-${i}/${user(i).tid}/txn-${i}`))
  })

  it('stores the data that was signed when add was called, whatever the caller does with its objects before the turn ends', async () => {
    for (const batchProfile of [true, false]) {
      const { calls, queue } = setup({ batchProfile })
      const data = { invoiceId: 'inv-1', lines: [{ sku: 'a', qty: 1 }] }
      const bulk = [{ name: 'invoice', data: { invoiceId: 'inv-2', total: 2 } }]
      const other = queue.add('invoice', { invoiceId: 'inv-0' }, {}, { context: user(2) })
      const added = queue.add('invoice', data, {}, { context: user(1) })
      const addedBulk = queue.addBulk(bulk, { context: user(3) })
      // The caller reuses its objects at once: top level, nested, and the bulk job's data.
      data.invoiceId = 'changed'
      ;(data.lines[0] as { qty: number }).qty = 99
      ;(bulk[0] as { data: { total: number } }).data.total = 999
      await Promise.all([other, added, addedBulk])
      const datas = addedData(calls)
      expect(datas.map(({ __idctx, ...rest }) => rest)).toEqual([
        { invoiceId: 'inv-0' },
        { invoiceId: 'inv-1', lines: [{ sku: 'a', qty: 1 }] },
        { invoiceId: 'inv-2', total: 2 },
      ])
      expect(await process(datas)).toEqual(['u-2/acme/txn-2', 'u-1/globex/txn-1', 'u-3/globex/txn-3'])
    }
  })

  it('a scheduler template is stored as it was when its grant was signed', async () => {
    const { calls, queue } = setup()
    const data = { report: { kind: 'daily', rows: 10 } }
    const upserted = queue.upsertJobScheduler('nightly', { every: 1000 }, { name: 'report', data }, { context: user(1) })
    data.report.rows = 99
    await upserted
    const stored = ((calls.added[0] as unknown[])[3] as { data: Record<string, unknown> }).data
    expect(stored.report).toEqual({ kind: 'daily', rows: 10 })
    expect(decodeCarrier(stored.__idctx)).toMatchObject({ kind: 'grant' })
  })

  it('an add alone in its turn keeps the single profile: __idctx is the bare token', async () => {
    const { signed, calls, queue } = setup()
    await queue.add('invoice', { n: 1 }, {}, { context: user(1) })
    const [d] = addedData(calls)
    expect(decodeCarrier(d?.__idctx)).toEqual({ kind: 'message', token: expect.any(String), proof: undefined, contextRecord: undefined })
    expect(signed.map((e) => e.profile)).toEqual(['single'])
    expect(await process([d!])).toEqual(['u-1/globex/txn-1'])
  })

  it('add and addBulk of one turn share the token; jobs of one call share their record', async () => {
    const { signed, calls, queue } = setup()
    await Promise.all([
      queue.addBulk([{ name: 'invoice', data: { n: 0 } }, { name: 'refund/x', data: { n: 1 } }], { context: user(0) }),
      queue.add('invoice', { n: 2 }, {}, { context: user(1) }),
    ])
    expect(signed).toHaveLength(1)
    const datas = addedData(calls)
    const carriers = datas.map((d) => decodeCarrier(d.__idctx) as { contextRecord: string })
    expect(carriers[0]?.contextRecord).toBe(carriers[1]?.contextRecord)
    expect(carriers[2]?.contextRecord).not.toBe(carriers[0]?.contextRecord)
    expect(await process(datas, ['invoice', 'refund/x', 'invoice'])).toEqual(['u-0/acme/txn-0', 'u-0/acme/txn-0', 'u-1/globex/txn-1'])
  })

  it('a job under another job\'s context record (and proof) is binding_mismatch; a record removed is malformed', async () => {
    const { calls, queue } = setup()
    await Promise.all([0, 1, 2].map((i) => queue.add('invoice', { n: i }, {}, { context: user(i) })))
    const datas = addedData(calls)
    const parts = datas.map((d) => String(d.__idctx).split('~'))
    const moved = [
      { ...datas[0], __idctx: [parts[0]?.[0], parts[0]?.[1], parts[1]?.slice(2).join('~')].join('~') },
      { ...datas[2], __idctx: parts[1]?.join('~') },
      { ...datas[1], __idctx: parts[1]?.slice(0, 2).join('~') },
    ]
    expect(await process(moved)).toEqual(['rejected:binding_mismatch', 'rejected:binding_mismatch', 'rejected:malformed'])
  })

  it('a bad add fails alone, when it is made; the others of the turn are signed together', async () => {
    const { signed, calls, queue } = setup()
    const outcomes = await Promise.allSettled([
      queue.add('invoice', { n: 1 }, {}, { context: user(1) }),
      queue.add('invoice', { at: new Date() }, {}, { context: user(2) }),
      queue.add('invoice', { n: 3 }, {}, { context: { sub: '', tid: 'acme', txn: 't' } }),
      queue.add('invoice', { n: 4 }, {}, { contxt: user(4) } as never),
      queue.add('invoice', { n: 5 }),
      queue.add('invoice', { n: 6 }, {}, { context: user(6) }),
    ])
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'added' : (o.reason as Error).name))).toEqual(['added', 'SigningError', 'SigningError', 'ConfigError', 'SigningError', 'added'])
    expect(signed).toHaveLength(1)
    expect(addedData(calls).map((d) => d.n)).toEqual([1, 6])
    expect(outcomes[1]?.status === 'rejected' && outcomes[1].reason).toBeInstanceOf(SigningError)
    expect(outcomes[3]?.status === 'rejected' && outcomes[3].reason).toBeInstanceOf(ConfigError)
  })

  it('delayed jobs group by lifetime; unsigned adds keep their place', async () => {
    const signed: SignedEvent[] = []
    const signer = createSigner({ issuer: 'orders', audience: 'shop', key, observer: { onSigned: (e) => signed.push(e) } })
    const { queue: raw, calls } = fakeQueue('q')
    const queue = wrapQueue(raw, { signer, onMissingContext: 'unsigned' })
    await Promise.all([
      queue.add('invoice', { n: 0 }, { delay: 60_000 }, { context: user(0) }),
      queue.add('invoice', { n: 1 }, {}, { context: user(1) }),
      queue.add('invoice', { n: 2 }),
      queue.add('invoice', { n: 3 }, { delay: 60_000 }, { context: user(3) }),
      queue.add('invoice', { n: 4 }, {}, { context: user(4) }),
    ])
    expect(addedData(calls).map((d) => d.n)).toEqual([0, 1, 2, 3, 4])
    expect(addedData(calls)[2]).not.toHaveProperty('__idctx')
    expect(signed.map((e) => e.count)).toEqual([2, 2])
    const exps = addedData(calls)
      .filter((d) => d.__idctx !== undefined)
      .map((d) => (JSON.parse(Buffer.from(String(d.__idctx).split('.')[1] as string, 'base64url').toString()) as { exp: number; iat: number }))
      .map((c) => c.exp - c.iat)
    expect(exps).toEqual([360, 300, 360, 300])
  })

  it('batchProfile: false signs every add at once; maxBatchJobs caps a token', async () => {
    const off = setup({ batchProfile: false })
    const p = Promise.all([1, 2, 3].map((i) => off.queue.add('invoice', { n: i }, {}, { context: user(i) })))
    expect(off.signed).toHaveLength(3)
    await p
    const capped = setup({ maxBatchJobs: 2 })
    await Promise.all([1, 2, 3, 4, 5].map((i) => capped.queue.add('invoice', { n: i }, {}, { context: user(i) })))
    expect(capped.signed.map((e) => e.count)).toEqual([2, 2, 1])
    expect(thrownBy(() => wrapQueue(fakeQueue().queue, { signer: off.signer, maxBatchJobs: 1 }))).toBeInstanceOf(ConfigError)
    expect(thrownBy(() => wrapQueue(fakeQueue().queue, { signer: off.signer, batchProfile: false, maxBatchJobs: 4 }))).toBeInstanceOf(ConfigError)
    expect(thrownBy(() => wrapQueue(fakeQueue().queue, { signer: off.signer, batchProfile: 1 as never }))).toBeInstanceOf(ConfigError)
  })

  it('a failing Queue.add fails its own call only', async () => {
    const { signer } = setup()
    const { queue: raw } = fakeQueue('q')
    const failing = { ...raw, name: 'q', defaultJobOptions: {}, add: async (_n: string, d: { n: number }) => (d.n === 2 ? Promise.reject(new Error('redis down')) : { id: String(d.n) }) } as unknown as Queue
    const queue = wrapQueue(failing, { signer })
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => queue.add('invoice', { n: i }, {}, { context: user(i) })))
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
  })
})

describe('wrapFlowProducer: flows of one turn share one signature', () => {
  it('two flows of two users: one token; parent and children verify with their flow\'s user', async () => {
    const signed: SignedEvent[] = []
    const signer = createSigner({ issuer: 'orders', audience: 'shop', key, observer: { onSigned: (e) => signed.push(e) } })
    const { flows: raw, calls } = fakeFlowProducer()
    const flows = wrapFlowProducer(raw as FlowProducer, { signer })
    await Promise.all([0, 1].map((i) => flows.add({ name: 'invoice', queueName: 'q', data: { p: i }, children: [{ name: 'invoice', queueName: 'q', data: { c: i } }] }, undefined, { context: user(i) })))
    expect(signed).toHaveLength(1)
    const jobs = calls.added.flatMap((c) => {
      const f = c[1] as { data: Record<string, unknown>; children: { data: Record<string, unknown> }[] }
      return [f.data, ...f.children.map((ch) => ch.data)]
    })
    expect(await process(jobs)).toEqual(['u-0/acme/txn-0', 'u-0/acme/txn-0', 'u-1/globex/txn-1', 'u-1/globex/txn-1'])
  })
})
