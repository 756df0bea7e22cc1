import { describe, it, expect, afterEach } from 'vitest'
import { createMemoryRevocationStore, runWithContext, SigningError, type VerifiedContext } from '@idctx/core'
import { createProcessor, decodeCarrier, runTxn, wrapQueue, type JobIdentity, type SchedulerRun } from '@idctx/bullmq'
import type { Job, Queue } from 'bullmq'
import { eventually, finished, fixture, harness, recordingObserver, testClock, userContext, type Harness } from './harness.js'

/** The scheduler principal of these tests: a service, acting for tenant acme. */
const principal = () => userContext({ sub: 'svc-reports', pty: 'service', roles: ['reporter'], scope: 'reports:run' })

interface Run {
  readonly id: string | undefined
  readonly data: unknown
  readonly identity: VerifiedContext | undefined
  readonly scheduler: SchedulerRun | undefined
  readonly reason: string | undefined
}

function claimsOf(token: string): { jti: string; exp: number; iat: number; txn: string; sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { jti: string; exp: number; iat: number; txn: string; sub: string }
}

/** The grant stored in a scheduler's template (`g:<jws>` under __idctx), and the template data. */
async function storedGrant(raw: Queue, schedulerId: string): Promise<{ grant: string; data: Record<string, unknown> }> {
  const scheduler = await raw.getJobScheduler(schedulerId)
  const data = scheduler?.template?.data as Record<string, unknown> | undefined
  const carrier = decodeCarrier(data?.__idctx)
  if (data === undefined || carrier === undefined || carrier === 'malformed' || carrier.kind !== 'grant') throw new Error('no grant in the template')
  return { grant: carrier.token, data }
}

describe('bullmq job schedulers carry a grant, against a real Redis', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  function recordingWorker(queue: string, options: Parameters<typeof createProcessor>[1]) {
    const runs: Run[] = []
    const worker = h.worker(
      queue,
      createProcessor(
        async (job: Job, idctx: JobIdentity) => {
          runs.push({ id: job.id, data: job.data, identity: idctx.identity, scheduler: idctx.scheduler, reason: idctx.rejection?.reason })
        },
        options,
      ),
    )
    return { runs, worker }
  }

  it('a genuine run verifies its grant and runs as the grant principal, each run with a txn of its own', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    const ctx = principal()
    await runWithContext(ctx, () => queue.upsertJobScheduler('nightly-report', { every: 300 }, { name: 'report', data: { kind: 'daily' } }))

    // The template holds the data and a grant (g:<jws>) for this principal.
    const { grant, data } = await storedGrant(raw, 'nightly-report')
    expect(data.kind).toBe('daily')
    expect(Object.keys(data).sort()).toEqual(['__idctx', 'kind'])
    expect(JSON.parse(Buffer.from(grant.split('.')[0] as string, 'base64url').toString()).typ).toBe('idctx-grant+jwt')
    const grantClaims = claimsOf(grant)
    expect(grantClaims.exp - grantClaims.iat).toBe(86_400)

    const verifier = f.verifier({ producerAcl: { orders: { destinations: ['bullmq:reports/report'], tenants: ['acme'] } } })
    const { runs } = recordingWorker('reports', { verifier, tenant: 'acme', requirements: { scopes: ['reports:run'] } })
    await eventually(() => (runs.length >= 2 ? true : undefined), 20_000, 'two scheduler runs')
    await raw.removeJobScheduler('nightly-report')
    const [a, b] = runs as [Run, Run]
    expect(a.id).toMatch(/^repeat:nightly-report:\d+$/)
    expect(b.id).toMatch(/^repeat:nightly-report:\d+$/)
    expect(b.id).not.toBe(a.id)
    for (const r of [a, b]) {
      expect(r.reason).toBeUndefined()
      expect(r.data).toEqual({ kind: 'daily' })
      expect(r.identity).toMatchObject({ sub: 'svc-reports', tid: 'acme', pty: 'service', roles: ['reporter'], scope: 'reports:run', act: { sub: 'orders' } })
      expect(r.identity?.claims.iss).toBe('orders')
      expect(r.identity?.claims.jti).toBe(grantClaims.jti)
      expect(r.identity?.destination).toBe('bullmq:reports/report')
      expect(r.scheduler).toEqual({ id: 'nightly-report', grantJti: grantClaims.jti, grantTxn: ctx.txn })
      expect(r.identity?.txn).toBe(runTxn(grantClaims.jti, r.id as string))
    }
    expect(a.identity?.txn).not.toBe(b.identity?.txn)
    expect(a.identity?.txn).not.toBe(ctx.txn)
  })

  it('an unsigned job dressed as a run (repeat:<id>:<n> id, repeatJobKey, repeat opts) → missing', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    await runWithContext(principal(), () =>
      wrapQueue(raw, { signer: f.orders }).upsertJobScheduler('nightly-report', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } }),
    )
    // What anyone with access to the queue can add: BullMQ takes these options from a plain add.
    const spoof = await raw.add('report', { kind: 'all-tenants' }, {
      jobId: 'repeat:nightly-report:1700000000000',
      repeatJobKey: 'nightly-report',
      repeat: { every: 3_600_000 },
    } as never)
    expect((await raw.getJob(spoof.id as string))?.repeatJobKey).toBe('nightly-report')
    const observer = recordingObserver()
    const { runs } = recordingWorker('reports', { verifier: f.verifier(), tenant: 'acme', observer })
    const { job: failed } = await finished(raw, spoof.id)
    expect(failed.failedReason).toBe('idctx rejected: missing')
    expect(runs.filter((r) => r.id === spoof.id)).toEqual([])
    expect(observer.events.filter((e) => e.kind === 'disposition').map((e) => [e.event.reason, e.event.coordinates])).toEqual([
      ['missing', `${h.prefix}:reports/repeat%3Anightly-report%3A1700000000000`],
    ])
  })

  it('template data edited in Redis, or a run\'s data edited → binding_mismatch; the untouched run passes', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    const redis = h.redis()
    const template = await runWithContext(principal(), async () => {
      const first = await queue.upsertJobScheduler('edited-template', { every: 300 }, { name: 'report', data: { kind: 'daily' } })
      const edited = await queue.upsertJobScheduler('edited-run', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } })
      return { first, edited }
    })
    // The scheduler's template: every run created from now on carries the edited data.
    const schedulerKey = `${h.prefix}:reports:repeat:edited-template`
    const stored = JSON.parse((await redis.hget(schedulerKey, 'data')) as string) as Record<string, unknown>
    await redis.hset(schedulerKey, 'data', JSON.stringify({ ...stored, kind: 'all-tenants' }))
    // One run's data: only that run.
    const runKey = h.jobKey('reports', template.edited.id as string)
    const runData = JSON.parse((await redis.hget(runKey, 'data')) as string) as Record<string, unknown>
    await redis.hset(runKey, 'data', JSON.stringify({ ...runData, kind: 'all-tenants' }))

    const failures: { id: string | undefined; reason: string }[] = []
    const { runs, worker } = recordingWorker('reports', { verifier: f.verifier(), tenant: 'acme' })
    worker.on('failed', (job, err) => failures.push({ id: job?.id, reason: err.message }))
    expect((await finished(raw, template.edited.id)).job.failedReason).toBe('idctx rejected: binding_mismatch')
    // The first run of edited-template was created before the edit: it passes; the next one not.
    expect((await finished(raw, template.first.id)).state).toBe('completed')
    await eventually(() => (failures.some((x) => x.id !== template.edited.id) ? true : undefined), 20_000, 'a run from the edited template')
    await raw.removeJobScheduler('edited-template')
    await raw.removeJobScheduler('edited-run')
    expect(runs.map((r) => r.id)).toEqual([template.first.id])
    expect(runs[0]?.identity?.sub).toBe('svc-reports')
    expect(new Set(failures.map((x) => x.reason))).toEqual(new Set(['idctx rejected: binding_mismatch']))
  })

  it('an expired grant → expired; upserting again renews it', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.signer('orders', { grantLifetimeSeconds: 60 }) })
    const first = await runWithContext(principal(), () => queue.upsertJobScheduler('short', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } }))
    const before = claimsOf((await storedGrant(raw, 'short')).grant)
    expect(before.exp - before.iat).toBe(60)
    // 2 minutes later by the verifier's clock: past exp and the 30 s tolerance.
    const clock = testClock(120_000)
    const worker = recordingWorker('reports', { verifier: f.verifier({ clock: clock.now }), tenant: 'acme' }).worker
    expect((await finished(raw, first.id)).job.failedReason).toBe('idctx rejected: expired')
    await worker.close()

    // Re-upsert with a longer grant: the pending run is replaced and carries the new grant.
    const renewed = await runWithContext(principal(), () =>
      queue.upsertJobScheduler('short', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } }, { grantLifetimeSeconds: 600 }),
    )
    const after = claimsOf((await storedGrant(raw, 'short')).grant)
    expect(after.jti).not.toBe(before.jti)
    expect(after.exp - after.iat).toBe(600)
    const pending = await raw.getJob(renewed.id as string)
    expect((decodeCarrier((pending?.data as Record<string, unknown>).__idctx) as { token: string }).token).toBe((await storedGrant(raw, 'short')).grant)
    expect(await raw.getJobState(renewed.id as string)).toBe('delayed')
    const { runs } = recordingWorker('reports', { verifier: f.verifier({ clock: clock.now }), tenant: 'acme' })
    await pending?.promote()
    expect((await finished(raw, renewed.id)).state).toBe('completed')
    await raw.removeJobScheduler('short')
    expect(runs.map((r) => r.identity?.claims.jti)).toEqual([after.jti])
  })

  it('a revoked grant (deny-list, its jti) → revoked', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    const run = await runWithContext(principal(), () => queue.upsertJobScheduler('revoked', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } }))
    const revocation = createMemoryRevocationStore()
    revocation.revoke('jti', claimsOf((await storedGrant(raw, 'revoked')).grant).jti)
    const { runs } = recordingWorker('reports', { verifier: f.verifier({ revocation }), tenant: 'acme' })
    expect((await finished(raw, run.id)).job.failedReason).toBe('idctx rejected: revoked')
    await raw.removeJobScheduler('revoked')
    expect(runs).toEqual([])
  })

  it('a grant copied into a job that is not a run of its scheduler → binding_mismatch', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    await runWithContext(principal(), () =>
      wrapQueue(raw, { signer: f.orders }).upsertJobScheduler('nightly-report', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } }),
    )
    const { data } = await storedGrant(raw, 'nightly-report')
    const plain = await raw.add('report', data)
    const otherScheduler = await raw.add('report', data, { jobId: 'repeat:other:1700000000000', repeatJobKey: 'other', repeat: { every: 3_600_000 } } as never)
    // Its repeatJobKey, but not the job id BullMQ gives a run of it.
    const notARunId = await raw.add('report', data, { jobId: 'copy-1', repeatJobKey: 'nightly-report', repeat: { every: 3_600_000 } } as never)
    const { runs } = recordingWorker('reports', { verifier: f.verifier(), tenant: 'acme' })
    expect((await finished(raw, plain.id)).job.failedReason).toBe('idctx rejected: binding_mismatch')
    expect((await finished(raw, otherScheduler.id)).job.failedReason).toBe('idctx rejected: binding_mismatch')
    expect((await finished(raw, notARunId.id)).job.failedReason).toBe('idctx rejected: binding_mismatch')
    await raw.removeJobScheduler('nightly-report')
    const copies = new Set([plain.id, otherScheduler.id, notARunId.id])
    expect(runs.filter((r) => copies.has(r.id))).toEqual([])
  })

  it('a message token as a grant, and a grant as a message token → wrong_typ', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    const run = await runWithContext(principal(), () => queue.upsertJobScheduler('nightly-report', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } }))
    const { grant } = await storedGrant(raw, 'nightly-report')
    const signed = await queue.add('report', { kind: 'daily' }, {}, { context: principal() })
    const token = (decodeCarrier((signed.data as Record<string, unknown>).__idctx) as { token: string }).token
    // The run's grant replaced by a message token in grant form (HSET of the run's data).
    await h.redis().hset(h.jobKey('reports', run.id as string), 'data', JSON.stringify({ kind: 'daily', __idctx: `g:${token}` }))
    // The grant as a plain job's message token.
    const grantAsToken = await raw.add('report', { kind: 'daily', __idctx: grant })
    const { runs } = recordingWorker('reports', { verifier: f.verifier(), tenant: 'acme' })
    expect((await finished(raw, run.id)).job.failedReason).toBe('idctx rejected: wrong_typ')
    expect((await finished(raw, grantAsToken.id)).job.failedReason).toBe('idctx rejected: wrong_typ')
    expect((await finished(raw, signed.id)).state).toBe('completed')
    await raw.removeJobScheduler('nightly-report')
    expect(runs.map((r) => r.id)).toEqual([signed.id])
  })

  it('a template must be signable, token-free and have a context; unsigned templates (onMissingContext) give missing runs', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    await runWithContext(principal(), async () => {
      await expect(queue.upsertJobScheduler('s1', { every: 1000 }, { name: 'report', data: { __idctx: 'x' } })).rejects.toThrow(
        new SigningError('job data already has the reserved key __idctx'),
      )
      await expect(queue.upsertJobScheduler('s2', { every: 1000 }, { name: 'report', data: { at: new Date() } })).rejects.toThrow(SigningError)
    })
    await expect(queue.upsertJobScheduler('s3', { every: 1000 }, { name: 'report', data: {} })).rejects.toThrow(
      new SigningError('no identity context to sign the job with: pass { context } or add inside contextStore.run()'),
    )
    expect(await raw.getJobSchedulersCount()).toBe(0)

    const lenient = wrapQueue(raw, { signer: f.orders, onMissingContext: 'unsigned' })
    const run = await lenient.upsertJobScheduler('unsigned', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } })
    expect((await raw.getJobScheduler('unsigned'))?.template?.data).toEqual({ kind: 'daily' })
    recordingWorker('reports', { verifier: f.verifier(), tenant: 'acme' })
    expect((await finished(raw, run.id)).job.failedReason).toBe('idctx rejected: missing')
    await raw.removeJobScheduler('unsigned')
  })

  it('what a queue writer can still do with a grant: run its own scheduler once more, with its own data and principal', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    await runWithContext(principal(), () =>
      wrapQueue(raw, { signer: f.orders }).upsertJobScheduler('nightly-report', { every: 3_600_000 }, { name: 'report', data: { kind: 'daily' } }),
    )
    const { data } = await storedGrant(raw, 'nightly-report')
    // Documented (docs/bullmq.md, "Job schedulers"): the grant has no replay step, every run carries it.
    const extra = await raw.add('report', data, { jobId: 'repeat:nightly-report:1700000000000', repeatJobKey: 'nightly-report', repeat: { every: 3_600_000 } } as never)
    const { runs } = recordingWorker('reports', { verifier: f.verifier(), tenant: 'acme' })
    expect((await finished(raw, extra.id)).state).toBe('completed')
    await raw.removeJobScheduler('nightly-report')
    const seen = runs.find((r) => r.id === extra.id)
    expect(seen?.data).toEqual({ kind: 'daily' })
    expect(seen?.identity?.sub).toBe('svc-reports')
  })
})
