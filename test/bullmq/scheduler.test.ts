import { describe, it, expect, afterEach } from 'vitest'
import { ConfigError, SigningError, type VerifiedContext } from '@idctx/core'
import { createProcessor, wrapQueue } from '@idctx/bullmq'
import type { Job } from 'bullmq'
import { eventually, finished, fixture, harness, recordingObserver, type Harness } from './harness.js'

const SYSTEM = { sub: 'svc-report-scheduler', tid: 'acme', roles: ['reporter'] } as const

describe('bullmq job schedulers against a real Redis', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  it('each run gets a fresh token signed by the scheduler issuer for the system principal', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    await queue.upsertJobScheduler('nightly-report', { every: 200 }, { name: 'report', data: { kind: 'daily' } })

    // The template is stored without a token.
    const scheduler = await raw.getJobScheduler('nightly-report')
    expect(scheduler?.template?.data).toEqual({ kind: 'daily' })

    const runs: { id: string | undefined; data: unknown; identity: VerifiedContext }[] = []
    h.worker(
      'reports',
      createProcessor(
        async (job: Job, { identity }) => {
          runs.push({ id: job.id, data: job.data, identity })
        },
        {
          verifier: f.verifier({ producerAcl: { scheduler: { destinations: ['bullmq:reports/report'], tenants: ['acme'] } } }),
          tenant: 'acme',
          schedulers: { 'nightly-report': { context: SYSTEM, signer: f.scheduler } },
        },
      ),
    )
    await eventually(() => (runs.length >= 2 ? true : undefined), 20_000, 'two scheduler runs')
    await raw.removeJobScheduler('nightly-report')
    const [a, b] = runs as [(typeof runs)[0], (typeof runs)[0]]
    expect(a.id).toMatch(/^repeat:nightly-report:\d+$/)
    expect(b.id).not.toBe(a.id)
    for (const r of [a, b]) {
      expect(r.data).toEqual({ kind: 'daily' })
      expect(r.identity).toMatchObject({ sub: SYSTEM.sub, tid: 'acme', pty: 'system', roles: ['reporter'] })
      expect(r.identity.claims.iss).toBe('scheduler')
      expect(r.identity.claims.dst).toBe('bullmq:reports/report')
    }
    expect(a.identity.claims.jti).not.toBe(b.identity.claims.jti)
    expect(a.identity.txn).not.toBe(b.identity.txn)
  })

  it('a run of a scheduler the worker does not know is rejected as missing', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    const rogue = await queue.upsertJobScheduler('rogue', { every: 60_000 }, { name: 'report', data: { kind: 'all-tenants' } })

    const observer = recordingObserver()
    let ran = 0
    h.worker(
      'reports',
      createProcessor(
        async () => {
          ran++
        },
        {
          verifier: f.verifier(),
          tenant: 'acme',
          observer,
          schedulers: { 'nightly-report': { context: SYSTEM, signer: f.scheduler } },
        },
      ),
    )
    expect((await finished(raw, rogue.id)).job.failedReason).toBe('idctx rejected: missing')
    await raw.removeJobScheduler('rogue')
    expect(ran).toBe(0)
    expect(observer.events.filter((e) => e.kind === 'disposition').map((e) => e.event.reason)).toEqual(['missing'])
  })

  it('a scheduler template must be signable and token-free; a scheduler principal must be a system one', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reports')
    const queue = wrapQueue(raw, { signer: f.orders })
    await expect(queue.upsertJobScheduler('s1', { every: 1000 }, { name: 'report', data: { __idctx: 'x' } })).rejects.toThrow(SigningError)
    await expect(queue.upsertJobScheduler('s2', { every: 1000 }, { name: 'report', data: { at: new Date() } })).rejects.toThrow(SigningError)
    expect(await raw.getJobSchedulersCount()).toBe(0)
    expect(() =>
      createProcessor(async () => {}, {
        verifier: f.verifier(),
        tenant: 'acme',
        schedulers: { s: { context: { sub: 'u-42', tid: 'acme', pty: 'user' as 'system' }, signer: f.scheduler } },
      }),
    ).toThrow(ConfigError)
  })
})
