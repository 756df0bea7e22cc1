import { describe, it, expect, afterEach } from 'vitest'
import { SigningError, type VerifiedContext } from '@idctx/core'
import { createProcessor, wrapQueue } from '@idctx/bullmq'
import type { Job } from 'bullmq'
import { finished, fixture, harness, testClock, userContext, type Harness } from './harness.js'

// Time is simulated with injected clocks (signer, verifier, worker) instead of waiting.
describe('bullmq token time policy against a real Redis', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  it('a delayed job gets lifetime + delay: it verifies after the default 300 s, and not beyond its exp', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reminders')
    const queue = wrapQueue(raw, { signer: f.orders })
    const ctx = userContext()
    const first = await queue.add('remind', { n: 1 }, { delay: 600_000 }, { context: ctx })
    const second = await queue.add('remind', { n: 2 }, { delay: 600_000 }, { context: ctx })

    const clock = testClock()
    const seen: VerifiedContext[] = []
    h.worker(
      'reminders',
      createProcessor(
        async (_job, { identity }) => {
          seen.push(identity!)
        },
        { verifier: f.verifier({ clock: clock.now }), tenant: 'acme' },
      ),
    )
    // 800 s later: past the default lifetime, inside lifetime + delay (900 s).
    clock.offsetMs = 800_000
    await first.promote()
    expect((await finished(raw, first.id)).state).toBe('completed')
    expect(seen).toHaveLength(1)
    expect(seen[0]!.claims.exp - seen[0]!.claims.iat).toBe(900)

    // 1000 s later: beyond exp + the verifier's 30 s clock tolerance.
    clock.offsetMs = 1_000_000
    await second.promote()
    const { job: failed } = await finished(raw, second.id)
    expect(failed.failedReason).toBe('idctx rejected: expired')
    expect(seen).toHaveLength(1)
  })

  it('a delay beyond maxDelayLifetimeSeconds is refused at add; a raised cap needs matching verifiers', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('reminders')
    const queue = wrapQueue(raw, { signer: f.orders })
    await expect(queue.add('remind', { n: 1 }, { delay: 700_000 }, { context: userContext() })).rejects.toThrow(SigningError)
    await expect(queue.add('remind', { n: 1 }, { delay: 700_000 }, { context: userContext() })).rejects.toThrow(/maxDelayLifetimeSeconds/)
    expect(await raw.count()).toBe(0)

    // An hour of delay: the wrapper, the signer and the verifier must all allow the lifetime.
    const long = wrapQueue(raw, { signer: f.signer('orders', { maxLifetimeSeconds: 7200 }), maxDelayLifetimeSeconds: 7200 })
    const job = await long.add('remind', { n: 2 }, { delay: 3_600_000 }, { context: userContext() })
    const clock = testClock(3_700_000)
    const strict = h.worker('reminders', createProcessor(async () => 'ran', { verifier: f.verifier({ clock: clock.now }), tenant: 'acme' }))
    await job.promote()
    expect((await finished(raw, job.id)).job.failedReason).toBe('idctx rejected: lifetime_exceeded')
    await strict.close()

    const again = await long.add('remind', { n: 3 }, { delay: 3_600_000 }, { context: userContext() })
    h.worker('reminders', createProcessor(async () => 'ran', { verifier: f.verifier({ clock: clock.now, maxLifetimeSeconds: 7200 }), tenant: 'acme' }))
    await again.promote()
    expect((await finished(raw, again.id)).state).toBe('completed')
  })

  it('a retry within retryGraceSeconds after exp verifies; the first attempt gets no grace', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('exports')
    const queue = wrapQueue(raw, { signer: f.orders })
    const job = await queue.add('export', { n: 1 }, { attempts: 3 }, { context: userContext() })
    const clock = testClock()
    const attempts: { attemptsMade: number; sub: string | undefined }[] = []
    h.worker(
      'exports',
      createProcessor(
        async (j: Job, { identity }) => {
          attempts.push({ attemptsMade: j.attemptsMade, sub: identity?.sub })
          if (attempts.length === 1) {
            // The first attempt fails late: 360 s after signing (exp 300 s, tolerance 30 s).
            clock.offsetMs = 360_000
            throw new Error('transient')
          }
          return 'ok'
        },
        { verifier: f.verifier({ clock: clock.now, maxExpiryGraceSeconds: 120 }), tenant: 'acme', retryGraceSeconds: 60, clock: clock.now },
      ),
    )
    const { job: done, state } = await finished(raw, job.id)
    expect(state).toBe('completed')
    expect(attempts).toEqual([
      { attemptsMade: 0, sub: 'u-42' },
      { attemptsMade: 1, sub: 'u-42' },
    ])
    expect(done.attemptsMade).toBe(2)

    // The verifier's clock is still 360 s ahead: a new job's first attempt gets no grace.
    const late = await queue.add('export', { n: 2 }, { attempts: 3 }, { context: userContext() })
    const { job: failed } = await finished(raw, late.id)
    expect(failed.failedReason).toBe('idctx rejected: expired')
    expect(failed.attemptsMade).toBe(1)
    expect(attempts).toHaveLength(2)
  })

  it('a retry beyond the grace, or without one, is rejected as expired', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('exports')
    const queue = wrapQueue(raw, { signer: f.orders })
    const beyond = await queue.add('export', { n: 1 }, { attempts: 3 }, { context: userContext() })
    const clock = testClock()
    let calls = 0
    const worker = h.worker(
      'exports',
      createProcessor(
        async () => {
          calls++
          clock.offsetMs = 460_000 // exp 300 + grace 60 + tolerance 30 < 460
          throw new Error('transient')
        },
        { verifier: f.verifier({ clock: clock.now, maxExpiryGraceSeconds: 120 }), tenant: 'acme', retryGraceSeconds: 60, clock: clock.now },
      ),
    )
    const { job: failed } = await finished(raw, beyond.id)
    expect(failed.failedReason).toBe('idctx rejected: expired')
    expect(failed.attemptsMade).toBe(2)
    expect(calls).toBe(1)
    await worker.close()

    // No retryGraceSeconds: even 360 s (within what a grace would allow) is expired.
    const noGrace = await queue.add('export', { n: 2 }, { attempts: 3 }, { context: userContext() })
    clock.offsetMs = 0
    calls = 0
    h.worker(
      'exports',
      createProcessor(
        async () => {
          calls++
          clock.offsetMs = 360_000
          throw new Error('transient')
        },
        { verifier: f.verifier({ clock: clock.now, maxExpiryGraceSeconds: 120 }), tenant: 'acme', clock: clock.now },
      ),
    )
    const { job: failed2 } = await finished(raw, noGrace.id)
    expect(failed2.failedReason).toBe('idctx rejected: expired')
    expect(calls).toBe(1)
  })

  it('no retry grace for a token that had expired before the job became processable', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('exports')
    const queue = wrapQueue(raw, { signer: f.orders })
    // The job claims to be created 10 minutes from now: its token (exp 300 s) never covered that.
    const job = await queue.add('export', { n: 1 }, { attempts: 3, timestamp: Date.now() + 600_000 }, { context: userContext() })
    const clock = testClock()
    let calls = 0
    h.worker(
      'exports',
      createProcessor(
        async () => {
          calls++
          clock.offsetMs = 360_000
          throw new Error('transient')
        },
        { verifier: f.verifier({ clock: clock.now, maxExpiryGraceSeconds: 120 }), tenant: 'acme', retryGraceSeconds: 60, clock: clock.now },
      ),
    )
    const { job: failed } = await finished(raw, job.id)
    expect(failed.failedReason).toBe('idctx rejected: expired')
    expect(calls).toBe(1)
  })
})
