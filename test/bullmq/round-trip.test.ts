import { describe, it, expect, afterEach } from 'vitest'
import { currentContext, runWithContext, type ActorClaim, type VerifiedContext } from '@idctx/core'
import { createProcessor, decodeCarrier, wrapFlowProducer, wrapQueue, type JobIdentity } from '@idctx/bullmq'
import type { Job } from 'bullmq'
import { eventually, finished, fixture, harness, recordingObserver, userContext, type Harness } from './harness.js'

interface Seen {
  readonly queue: string
  readonly name: string
  readonly id: string | undefined
  readonly data: Record<string, unknown>
  readonly identity: VerifiedContext | undefined
}

function collecting(seen: Seen[]) {
  return async (job: Job<Record<string, unknown>>, idctx: JobIdentity) => {
    seen.push({ queue: job.queueName, name: job.name, id: job.id, data: job.data, identity: idctx.identity })
    return 'ok'
  }
}

function actorChain(act: ActorClaim | undefined): string[] {
  const out: string[] = []
  for (let a = act; a !== undefined; a = a.act) out.push(a.sub)
  return out
}

describe('bullmq round trip against a real Redis', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  it('add: the processor gets the data without __idctx and the verified identity, inside the context', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('invoices'), { signer: f.orders })
    const ctx = userContext()
    const job = await runWithContext(ctx, () => queue.add('invoice', { invoiceId: 'inv-1', total: 30, lines: [{ sku: 'a', qty: 2 }] }))

    // What Redis holds: the data plus one compact token string (no proof for a job signed alone).
    const stored = JSON.parse((await h.redis().hget(h.jobKey('invoices', job.id as string), 'data')) as string) as Record<string, unknown>
    expect(Object.keys(stored).sort()).toEqual(['__idctx', 'invoiceId', 'lines', 'total'])
    const carrier = decodeCarrier(stored.__idctx)
    expect(carrier).toMatchObject({ kind: 'message', proof: undefined })
    expect((carrier as { token: string }).token).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)

    const seen: { data: unknown; hasKey: boolean; identity: VerifiedContext | undefined; current: unknown; progress: unknown }[] = []
    const observer = recordingObserver()
    h.worker(
      'invoices',
      createProcessor(
        async (j: Job<Record<string, unknown>>, idctx) => {
          await j.updateProgress(50)
          seen.push({
            data: j.data,
            hasKey: Object.prototype.hasOwnProperty.call(j.data, '__idctx'),
            identity: idctx.identity,
            current: currentContext()?.txn,
            progress: j.progress,
          })
          return 'done'
        },
        { verifier: f.verifier({ observer }), tenant: 'acme', observer },
      ),
    )
    const { job: done, state } = await finished(h.queue('invoices'), job.id)
    expect(state).toBe('completed')
    expect(done.returnvalue).toBe('done')
    expect(done.progress).toBe(50)
    expect(seen).toHaveLength(1)
    const s = seen[0]!
    expect(s.data).toEqual({ invoiceId: 'inv-1', total: 30, lines: [{ sku: 'a', qty: 2 }] })
    expect(s.hasKey).toBe(false)
    expect(s.current).toBe(ctx.txn)
    expect(s.identity).toMatchObject({ sub: 'u-42', tid: 'acme', txn: ctx.txn, pty: 'user', roles: ['clerk'] })
    expect(s.identity?.claims.iss).toBe('orders')
    expect(s.identity?.claims.dst).toBe('bullmq:invoices/invoice')
    expect(s.identity?.destination).toBe('bullmq:invoices/invoice')
    expect(observer.events.filter((e) => e.kind === 'verified')).toHaveLength(1)
    expect(observer.events.filter((e) => e.kind === 'rejected' || e.kind === 'disposition')).toHaveLength(0)
  })

  it('the processor runs inside the verified context: its own add carries sub, tid, txn and an extended act chain', async () => {
    h = harness()
    const f = fixture()
    const verifier = f.verifier()
    const invoices = wrapQueue(h.queue('invoices'), { signer: f.orders })
    const ledger = wrapQueue(h.queue('ledger'), { signer: f.billing })
    const ctx = userContext()
    const seen: Seen[] = []
    h.worker(
      'invoices',
      createProcessor(
        async (job: Job<{ invoiceId: string }>) => {
          // No explicit context: the wrapped queue reads the one the processor runs in.
          const next = await ledger.add('entry', { invoiceId: job.data.invoiceId, amount: 30 })
          return next.id
        },
        { verifier, tenant: 'acme' },
      ),
    )
    h.worker('ledger', createProcessor(collecting(seen), { verifier, tenant: 'acme' }))
    const first = await runWithContext(ctx, () => invoices.add('invoice', { invoiceId: 'inv-7' }))
    const { job: done } = await finished(h.queue('invoices'), first.id)
    const nextId = done.returnvalue as string
    await finished(h.queue('ledger'), nextId)
    expect(seen).toHaveLength(1)
    const id = seen[0]!.identity!
    expect(id).toMatchObject({ sub: ctx.sub, tid: ctx.tid, txn: ctx.txn, pty: 'user', roles: ['clerk'] })
    expect(id.claims.iss).toBe('billing')
    // billing signed this hop, on behalf of a context that orders had signed before.
    expect(actorChain(id.claims.act)).toEqual(['billing', 'orders'])
    expect(seen[0]!.data).toEqual({ invoiceId: 'inv-7', amount: 30 })
  })

  it('addBulk: one token for the call, a proof per job, each job verified on its own', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('mail'), { signer: f.orders })
    const ctx = userContext()
    const jobs = await runWithContext(ctx, () =>
      queue.addBulk([
        { name: 'welcome', data: { to: 'user-1' } },
        { name: 'receipt', data: { to: 'user-1', order: 'o-1' } },
        { name: 'welcome', data: { to: 'user-2' } },
      ]),
    )
    expect(jobs).toHaveLength(3)
    const carriers = jobs.map((j) => decodeCarrier((j.data as Record<string, unknown>).__idctx))
    const tokens = new Set(carriers.map((c) => (c as { token: string }).token))
    expect(tokens.size).toBe(1)
    expect(carriers.map((c) => (c as { proof?: string }).proof?.split('.').slice(0, 2).join('.'))).toEqual(['0.3', '1.3', '2.3'])

    const seen: Seen[] = []
    h.worker('mail', createProcessor(collecting(seen), { verifier: f.verifier(), tenant: ['acme', 'globex'] }))
    for (const j of jobs) expect((await finished(h.queue('mail'), j.id)).state).toBe('completed')
    expect(seen).toHaveLength(3)
    for (const s of seen) {
      expect(s.identity).toMatchObject({ sub: 'u-42', tid: 'acme', txn: ctx.txn })
      expect(s.data).not.toHaveProperty('__idctx')
      // Two job names: the token has no single destination; the leaves still bind each job.
      expect(s.identity?.claims.dst).toBeUndefined()
      expect(s.identity?.destination).toBe(`bullmq:mail/${s.name}`)
    }
    expect(new Set(seen.map((s) => s.identity?.claims.jti)).size).toBe(1)
  })

  it('FlowProducer: the parent and every child are signed and verified, each with the identity', async () => {
    h = harness()
    const f = fixture()
    const flows = wrapFlowProducer(h.flowProducer(), { signer: f.orders })
    const ctx = userContext()
    const node = await runWithContext(ctx, () =>
      flows.add({
        name: 'render',
        queueName: 'reports',
        data: { reportId: 'r-1' },
        children: [
          { name: 'fetch', queueName: 'sources', data: { source: 'ledger' } },
          {
            name: 'fetch',
            queueName: 'sources',
            data: { source: 'crm' },
            children: [{ name: 'auth', queueName: 'sources', data: { realm: 'crm' } }],
          },
        ],
      }),
    )
    const seen: Seen[] = []
    const verifier = f.verifier()
    let childValues: Record<string, unknown> = {}
    h.worker(
      'reports',
      createProcessor(
        async (job: Job<Record<string, unknown>>, idctx) => {
          // Flow methods work on the job view.
          childValues = await job.getChildrenValues()
          return collecting(seen)(job, idctx)
        },
        { verifier, tenant: 'acme' },
      ),
    )
    h.worker('sources', createProcessor(async (job: Job<Record<string, unknown>>, idctx) => {
      await collecting(seen)(job, idctx)
      return job.data.source ?? job.data.realm
    }, { verifier, tenant: 'acme' }))
    const { state } = await finished(h.queue('reports'), node.job.id)
    expect(state).toBe('completed')
    expect(seen.map((s) => `${s.queue}/${s.name}`).sort()).toEqual(['reports/render', 'sources/auth', 'sources/fetch', 'sources/fetch'])
    for (const s of seen) {
      expect(s.identity).toMatchObject({ sub: 'u-42', tid: 'acme', txn: ctx.txn })
      expect(s.data).not.toHaveProperty('__idctx')
    }
    expect(new Set(seen.map((s) => s.identity?.claims.jti)).size).toBe(1)
    expect(Object.values(childValues).sort()).toEqual(['crm', 'ledger'])
    expect(seen.find((s) => s.name === 'render')?.data).toEqual({ reportId: 'r-1' })
  })

  it('FlowProducer.addBulk signs every job of every flow with one token', async () => {
    h = harness()
    const f = fixture()
    const flows = wrapFlowProducer(h.flowProducer(), { signer: f.orders })
    const nodes = await flows.addBulk(
      [
        { name: 'a', queueName: 'bulkflow', data: { n: 1 }, children: [{ name: 'a-child', queueName: 'bulkflow', data: { n: 2 } }] },
        { name: 'b', queueName: 'bulkflow' },
      ],
      { context: userContext({ tid: 'globex' }) },
    )
    const seen: Seen[] = []
    h.worker('bulkflow', createProcessor(collecting(seen), { verifier: f.verifier(), tenant: 'globex' }))
    expect(nodes).toHaveLength(2)
    for (const n of nodes) expect((await finished(h.queue('bulkflow'), n.job.id)).state).toBe('completed')
    await eventually(() => (seen.length === 3 ? true : undefined))
    expect(seen.map((s) => s.name).sort()).toEqual(['a', 'a-child', 'b'])
    // A node without data is signed as {} and arrives as {}.
    expect(seen.find((s) => s.name === 'b')?.data).toEqual({})
    for (const s of seen) expect(s.identity?.tid).toBe('globex')
  })
})
