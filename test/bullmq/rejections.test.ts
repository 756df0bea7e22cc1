import { describe, it, expect, afterEach } from 'vitest'
import { createMemoryReplayStore, currentContext, ReasonCode, type VerificationError } from '@idctx/core'
import { createProcessor, JobRejectedError, wrapQueue, type JobIdentity, type ProcessorOptions } from '@idctx/bullmq'
import { UnrecoverableError, type Job } from 'bullmq'
import { finished, fixture, harness, recordingObserver, userContext, type Harness } from './harness.js'

describe('bullmq rejections against a real Redis', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  /** A worker on `queue` that records what reached the processor and what BullMQ failed with. */
  function recordingWorker(queue: string, options: Omit<ProcessorOptions, 'tenant'> & Partial<Pick<ProcessorOptions, 'tenant'>>) {
    const ran: { id: string | undefined; data: unknown; idctx: JobIdentity; current: unknown }[] = []
    const failures: { id: string | undefined; err: Error }[] = []
    const worker = h.worker(
      queue,
      createProcessor(
        async (job: Job<Record<string, unknown>>, idctx: JobIdentity) => {
          ran.push({ id: job.id, data: job.data, idctx, current: currentContext() })
          return 'ran'
        },
        { tenant: 'acme', ...options },
      ),
    )
    worker.on('failed', (job, err) => failures.push({ id: job?.id, err }))
    return { ran, failures }
  }

  async function storedData(queue: string, id: string): Promise<Record<string, unknown>> {
    return JSON.parse((await h.redis().hget(h.jobKey(queue, id), 'data')) as string) as Record<string, unknown>
  }

  it('data tampered in Redis after add → binding_mismatch: failed at once with an UnrecoverableError, no retries', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('payments'), { signer: f.orders })
    const job = await queue.add('pay', { account: 'a-1', amount: 10 }, { attempts: 3 }, { context: userContext() })
    const id = job.id as string
    const data = await storedData('payments', id)
    data.amount = 10_000
    await h.redis().hset(h.jobKey('payments', id), 'data', JSON.stringify(data))

    const observer = recordingObserver()
    const { ran, failures } = recordingWorker('payments', { verifier: f.verifier({ observer }), observer })
    const { job: failed, state } = await finished(h.queue('payments'), id)
    expect(state).toBe('failed')
    expect(failed.failedReason).toBe('idctx rejected: binding_mismatch')
    expect(failed.attemptsMade).toBe(1)
    expect(ran).toHaveLength(0)
    expect(failures).toHaveLength(1)
    const err = failures[0]!.err
    expect(err).toBeInstanceOf(UnrecoverableError)
    expect(err).toBeInstanceOf(JobRejectedError)
    expect((err as JobRejectedError).reason).toBe(ReasonCode.BindingMismatch)
    expect(((err as JobRejectedError).cause as VerificationError).reason).toBe(ReasonCode.BindingMismatch)

    const rejected = observer.events.filter((e) => e.kind === 'rejected')
    expect(rejected).toHaveLength(1)
    expect(rejected[0]!.event).toMatchObject({ reason: 'binding_mismatch', destination: 'bullmq:payments/pay', sub: 'u-42', tid: 'acme' })
    const disposition = observer.events.filter((e) => e.kind === 'disposition')
    expect(disposition).toHaveLength(1)
    expect(disposition[0]!.event).toMatchObject({
      reason: 'binding_mismatch',
      policy: 'fail',
      target: 'failed',
      destination: 'bullmq:payments/pay',
      coordinates: `${h.prefix}:payments/${id}`,
    })
    expect(disposition[0]!.event.tokenSha256).toMatch(/^[0-9a-f]{64}$/)
  })

  it('a token copied onto another job (HSET of __idctx) → binding_mismatch; the original still runs', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('payments'), { signer: f.orders })
    const ctx = userContext()
    const a = await queue.add('pay', { account: 'a-1', amount: 10 }, {}, { context: ctx })
    const b = await queue.add('pay', { account: 'a-2', amount: 99 }, {}, { context: userContext({ sub: 'u-7' }) })
    const aData = await storedData('payments', a.id as string)
    const bData = await storedData('payments', b.id as string)
    bData.__idctx = aData.__idctx
    await h.redis().hset(h.jobKey('payments', b.id as string), 'data', JSON.stringify(bData))

    const { ran } = recordingWorker('payments', { verifier: f.verifier() })
    expect((await finished(h.queue('payments'), a.id)).state).toBe('completed')
    const { job: failed, state } = await finished(h.queue('payments'), b.id)
    expect(state).toBe('failed')
    expect(failed.failedReason).toBe('idctx rejected: binding_mismatch')
    expect(ran.map((r) => r.id)).toEqual([a.id])
  })

  it('an identical copy of a signed job under another job id → replayed (redelivery at the same id is not)', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const queue = wrapQueue(raw, { signer: f.orders })
    const a = await queue.add('pay', { account: 'a-1', amount: 10 }, {}, { context: userContext() })
    const copy = await raw.add('pay', await storedData('payments', a.id as string))

    const { ran } = recordingWorker('payments', { verifier: f.verifier({ replay: createMemoryReplayStore() }) })
    expect((await finished(raw, a.id)).state).toBe('completed')
    const { job: failed } = await finished(raw, copy.id)
    expect(failed.failedReason).toBe('idctx rejected: replayed')
    expect(ran.map((r) => r.id)).toEqual([a.id])
  })

  it('a token signed with a clock an hour behind → expired', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('payments'), { signer: f.signer('orders', { clock: () => Date.now() - 3_600_000 }) })
    const job = await queue.add('pay', { amount: 1 }, {}, { context: userContext() })
    const { ran } = recordingWorker('payments', { verifier: f.verifier() })
    const { job: failed } = await finished(h.queue('payments'), job.id)
    expect(failed.failedReason).toBe('idctx rejected: expired')
    expect(ran).toHaveLength(0)
  })

  it('a job of another tenant → tenant_mismatch (fixed tenant and tenant function)', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('payments'), { signer: f.orders })
    const acme = await queue.add('pay', { amount: 1 }, {}, { context: userContext({ tid: 'acme' }) })
    const globex = await queue.add('pay', { amount: 2 }, {}, { context: userContext({ tid: 'globex' }) })
    const tenantsSeen: string[] = []
    const { ran } = recordingWorker('payments', {
      verifier: f.verifier(),
      tenant: (job) => {
        tenantsSeen.push(job.queueName)
        return 'acme'
      },
    })
    expect((await finished(h.queue('payments'), acme.id)).state).toBe('completed')
    const { job: failed } = await finished(h.queue('payments'), globex.id)
    expect(failed.failedReason).toBe('idctx rejected: tenant_mismatch')
    expect(ran.map((r) => r.id)).toEqual([acme.id])
    expect(tenantsSeen).toEqual(['payments', 'payments'])
  })

  it('a tenant field in the payload that differs from the token → tenant_mismatch', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('payments'), { signer: f.orders })
    const ok = await queue.add('pay', { tenantId: 'acme', amount: 1 }, {}, { context: userContext({ tid: 'acme' }) })
    const bad = await queue.add('pay', { tenantId: 'globex', amount: 1 }, {}, { context: userContext({ tid: 'acme' }) })
    const { ran } = recordingWorker('payments', {
      verifier: f.verifier(),
      tenant: { any: true },
      payloadTenant: (data) => (typeof data.tenantId === 'string' ? data.tenantId : undefined),
    })
    expect((await finished(h.queue('payments'), ok.id)).state).toBe('completed')
    const { job: failed } = await finished(h.queue('payments'), bad.id)
    expect(failed.failedReason).toBe('idctx rejected: tenant_mismatch')
    expect(ran.map((r) => r.id)).toEqual([ok.id])
  })

  it('an unsigned job → missing; a non-string __idctx → malformed; a producer outside the ACL → actor_not_allowed', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const unsigned = await raw.add('pay', { amount: 1 })
    const malformed = await raw.add('pay', { amount: 1, __idctx: { forged: true } })
    const billing = await wrapQueue(raw, { signer: f.billing }).add('pay', { amount: 1 }, {}, { context: userContext() })
    const observer = recordingObserver()
    const verifier = f.verifier({ producerAcl: { orders: { destinations: ['bullmq:payments/*'] } } })
    const { ran } = recordingWorker('payments', { verifier, observer })
    expect((await finished(raw, unsigned.id)).job.failedReason).toBe('idctx rejected: missing')
    expect((await finished(raw, malformed.id)).job.failedReason).toBe('idctx rejected: malformed')
    expect((await finished(raw, billing.id)).job.failedReason).toBe('idctx rejected: actor_not_allowed')
    expect(ran).toHaveLength(0)
    // The wrapper itself reports the malformed carrier (the verifier never saw a token).
    expect(observer.events.filter((e) => e.kind === 'rejected').map((e) => e.event.reason)).toEqual(['malformed'])
    expect(observer.events.filter((e) => e.kind === 'disposition').map((e) => e.event.reason)).toEqual([
      'missing',
      'malformed',
      'actor_not_allowed',
    ])
  })

  it('audit policy: a rejected job still runs, outside any context, and the violation is reported', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('payments'), { signer: f.orders })
    const job = await queue.add('pay', { amount: 1 }, {}, { context: userContext() })
    const data = await storedData('payments', job.id as string)
    data.amount = 2
    await h.redis().hset(h.jobKey('payments', job.id as string), 'data', JSON.stringify(data))
    const good = await queue.add('pay', { amount: 3 }, {}, { context: userContext() })

    const observer = recordingObserver()
    const { ran } = recordingWorker('payments', { verifier: f.verifier(), observer, policy: 'audit' })
    expect((await finished(h.queue('payments'), job.id)).state).toBe('completed')
    expect((await finished(h.queue('payments'), good.id)).state).toBe('completed')
    expect(ran).toHaveLength(2)
    const [bad, ok] = ran as [(typeof ran)[0], (typeof ran)[0]]
    expect(bad.idctx.identity).toBeUndefined()
    expect(bad.idctx.rejection?.reason).toBe('binding_mismatch')
    expect(bad.current).toBeUndefined()
    expect(bad.data).toEqual({ amount: 2 })
    expect(ok.idctx.identity?.sub).toBe('u-42')
    expect(ok.idctx.rejection).toBeUndefined()
    const disposition = observer.events.filter((e) => e.kind === 'disposition')
    expect(disposition).toHaveLength(1)
    expect(disposition[0]!.event).toMatchObject({ reason: 'binding_mismatch', policy: 'audit', target: undefined })
  })
})
