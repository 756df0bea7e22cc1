import { Job, Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { invoiceJobId, redisConnection } from '@idctx/example-shared'
import type { AttackTargets, Hop } from './targets.js'

/** An attack on the invoice worker, and the job whose failure must show its rejection. */
export interface PendingJobAttack {
  readonly id: string
  readonly title: string
  readonly hop: Hop
  readonly expected: string
  readonly jobId: string
}

/** The reason code in a job's `failedReason` (`idctx rejected: <reason>`), or the raw reason. */
export function jobRejectReason(failedReason: string | undefined): string | undefined {
  if (failedReason === undefined || failedReason === '') return undefined
  const m = /^idctx rejected: ([a-z_]+)$/.exec(failedReason)
  return m?.[1] ?? failedReason
}

async function until<T>(what: string, deadline: number, probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * Attacks on the BullMQ hop, with write access to Redis. The bait order's invoice job must have
 * been processed: its signed data is copied into a new job (a replay), then rewritten in place
 * (HSET of the job's `data`, a bigger amount) and the job put back in the queue.
 */
export async function jobAttacks(t: AttackTargets, baitOrderId: string, run: string, deadline: number): Promise<PendingJobAttack[]> {
  const connection = redisConnection(t.redisUrl)
  const prefix = t.bullPrefix ?? 'bull'
  const queue = new Queue(t.queue, { connection, prefix })
  const redis = new Redis(connection)
  try {
    const jobId = invoiceJobId(baitOrderId)
    await until('the bait invoice job to complete', deadline, async () => ((await queue.getJobState(jobId)) === 'completed' ? true : undefined))
    const key = `${prefix}:${t.queue}:${jobId}`
    const stored = await redis.hget(key, 'data')
    const name = await redis.hget(key, 'name')
    if (stored === null || name === null) throw new Error('the bait job has no data')

    // 1. The signed data, token and all, as a new job.
    const copyId = `atk-copy-${run}`
    await queue.add(name, JSON.parse(stored) as Record<string, unknown>, { jobId: copyId })

    // 2. The job's data rewritten in Redis, then the job queued again.
    const data = JSON.parse(stored) as Record<string, unknown>
    await redis.hset(key, 'data', JSON.stringify({ ...data, amount: 1_000_000 }))
    const job = await Job.fromId(queue, jobId)
    if (job === undefined) throw new Error('the bait job disappeared')
    await job.retry('completed')

    return [
      { id: 'job-copied', title: 'signed job data copied into a new job', hop: 'invoice-worker', expected: 'replayed', jobId: copyId },
      { id: 'job-tampered', title: "job data rewritten in Redis (HSET …:data) and re-queued", hop: 'invoice-worker', expected: 'binding_mismatch', jobId },
    ]
  } finally {
    await redis.quit()
    await queue.close()
  }
}

/** The reason a job failed with, once it has. */
export async function failedJobReason(queue: Queue, jobId: string): Promise<string | undefined> {
  if ((await queue.getJobState(jobId)) !== 'failed') return undefined
  const job = await Job.fromId(queue, jobId)
  return jobRejectReason(job?.failedReason)
}
