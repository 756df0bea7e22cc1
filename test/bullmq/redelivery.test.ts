import { describe, it, expect, afterEach } from 'vitest'
import { createMemoryReplayStore, type ReplayEntry, type ReplayStore } from '@idctx/core'
import { createProcessor, wrapQueue } from '@idctx/bullmq'
import type { Job } from 'bullmq'
import { eventually, finished, fixture, harness, userContext, type Harness } from './harness.js'

/** A memory replay store that also records every entry it was asked about. */
function recordingReplayStore(): ReplayStore & { entries: ReplayEntry[] } {
  const inner = createMemoryReplayStore()
  const entries: ReplayEntry[] = []
  return {
    entries,
    check(entry) {
      entries.push(entry)
      return inner.check(entry)
    },
  } as ReplayStore & { entries: ReplayEntry[] }
}

describe('bullmq redelivery versus replay at the same job id (real Redis)', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  it('a job copied and re-added under the same custom id after the original completed → replayed', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const queue = wrapQueue(raw, { signer: f.orders })
    const original = await queue.add('pay', { amount: 10 }, { jobId: 'pay-1', removeOnComplete: true }, { context: userContext() })
    const copied = JSON.parse((await h.redis().hget(h.jobKey('payments', 'pay-1'), 'data')) as string) as Record<string, unknown>
    const replay = recordingReplayStore()
    const ran: string[] = []
    const worker = h.worker(
      'payments',
      createProcessor(
        async (job: Job) => {
          ran.push(`${String(job.id)}#${job.attemptsMade}`)
        },
        { verifier: f.verifier({ replay }), tenant: 'acme' },
      ),
    )
    const completed = new Promise<void>((resolve) => worker.once('completed', () => resolve()))
    await completed
    expect(await raw.getJob(original.id as string)).toBeUndefined()
    // The same name, data and token, under the same id: BullMQ takes it, as the id is free again.
    const again = await raw.add('pay', copied, { jobId: 'pay-1' })
    expect(again.id).toBe('pay-1')
    const { job: failed } = await finished(raw, 'pay-1')
    expect(failed.failedReason).toBe('idctx rejected: replayed')
    expect(ran).toEqual(['pay-1#0'])
    expect(replay.entries.map((e) => [e.coordinates, e.firstDelivery])).toEqual([
      [`${h.prefix}:payments/pay-1`, true],
      [`${h.prefix}:payments/pay-1`, true],
    ])
  })

  it('a retry of the same job (attemptsMade > 0) is a redelivery and still verifies', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const queue = wrapQueue(raw, { signer: f.orders })
    const job = await queue.add('pay', { amount: 10 }, { jobId: 'pay-2', attempts: 3 }, { context: userContext() })
    const replay = recordingReplayStore()
    const attempts: { made: number; started: number; sub: string | undefined }[] = []
    h.worker(
      'payments',
      createProcessor(
        async (j: Job, { identity }) => {
          attempts.push({ made: j.attemptsMade, started: j.attemptsStarted, sub: identity.sub })
          if (attempts.length === 1) throw new Error('transient')
        },
        { verifier: f.verifier({ replay }), tenant: 'acme' },
      ),
    )
    expect((await finished(raw, job.id)).state).toBe('completed')
    expect(attempts).toEqual([
      { made: 0, started: 1, sub: 'u-42' },
      { made: 1, started: 2, sub: 'u-42' },
    ])
    expect(replay.entries.map((e) => e.firstDelivery)).toEqual([true, false])
  })

  it('a stalled re-run (attemptsStarted > 1, attemptsMade 0) is a redelivery and still verifies', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('payments')
    const queue = wrapQueue(raw, { signer: f.orders })
    const job = await queue.add('pay', { amount: 10 }, { jobId: 'pay-3' }, { context: userContext() })
    const replay = recordingReplayStore()
    const verifier = f.verifier({ replay })
    const attempts: { worker: string; made: number; started: number; sub: string | undefined }[] = []
    let release = () => {}
    const hung = new Promise<void>((resolve) => {
      release = resolve
    })
    // The first worker takes the job and then stops renewing its lock, as a crashed one would.
    h.worker(
      'payments',
      createProcessor(
        async (j: Job, { identity }) => {
          attempts.push({ worker: 'crashed', made: j.attemptsMade, started: j.attemptsStarted, sub: identity.sub })
          await hung
        },
        { verifier, tenant: 'acme' },
      ),
      { lockDuration: 1000, stalledInterval: 300 },
    ).on('error', () => {})
    await eventually(() => (attempts.length === 1 ? true : undefined), 20_000, 'the first attempt')
    await h.redis().del(`${h.jobKey('payments', 'pay-3')}:lock`)
    h.worker(
      'payments',
      createProcessor(
        async (j: Job, { identity }) => {
          attempts.push({ worker: 'second', made: j.attemptsMade, started: j.attemptsStarted, sub: identity.sub })
        },
        { verifier, tenant: 'acme' },
      ),
      { lockDuration: 1000, stalledInterval: 300 },
    )
    expect((await finished(raw, job.id)).state).toBe('completed')
    release()
    expect(attempts).toEqual([
      { worker: 'crashed', made: 0, started: 1, sub: 'u-42' },
      { worker: 'second', made: 0, started: 2, sub: 'u-42' },
    ])
    expect(replay.entries.map((e) => e.firstDelivery)).toEqual([true, false])
  })
})
