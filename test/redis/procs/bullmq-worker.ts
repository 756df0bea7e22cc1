/**
 * One BullMQ worker process: `createProcessor` of @idctx/bullmq with the Redis replay store that
 * every worker of the pool shares. Jobs whose data says `failOnce` throw on their first attempt
 * (after verification), so their retry may run on another worker. Reports completions and
 * failures with the job's attempt count.
 */
import { createVerifier, importJwk, type PublicJwk } from '@idctx/core'
import { createProcessor } from '@idctx/bullmq'
import { createRedisReplayStore } from '@idctx/redis'
import { Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { config, fail, onStop, report } from './ipc.js'

export interface BullmqWorkerConfig {
  readonly url: string
  readonly queue: string
  readonly bullPrefix: string
  readonly replayPrefix: string
  readonly issuer: string
  readonly audience: string
  readonly jwk: PublicJwk
}

export type BullmqWorkerMessage =
  | { type: 'ready' }
  | { type: 'completed'; jobId: string; k: string; attemptsMade: number; sub: string }
  | { type: 'failed'; jobId: string; k: string; attemptsMade: number; reason: string }
  | { type: 'fatal'; message: string }

async function main(): Promise<void> {
  const c = config<BullmqWorkerConfig>()
  const u = new URL(c.url)
  const client = new Redis(c.url, { maxRetriesPerRequest: 1 })
  const verifier = createVerifier({
    audience: c.audience,
    issuers: { [c.issuer]: [importJwk(c.jwk)] },
    replay: createRedisReplayStore({ client, prefix: c.replayPrefix }),
  })
  const processor = createProcessor<{ k: string; failOnce?: boolean }>(
    async (job, { identity }) => {
      if (job.data.failOnce === true && job.attemptsMade === 0) throw new Error('transient failure, retry me')
      return identity.sub
    },
    { verifier, tenant: 'acme' },
  )
  const worker = new Worker(c.queue, processor, {
    connection: { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null },
    prefix: c.bullPrefix,
    concurrency: 5,
  })
  worker.on('completed', (job, sub) => void report({ type: 'completed', jobId: String(job.id), k: job.data.k, attemptsMade: job.attemptsMade, sub: String(sub) }))
  worker.on('failed', (job, err) => {
    if (job !== undefined) void report({ type: 'failed', jobId: String(job.id), k: job.data.k, attemptsMade: job.attemptsMade, reason: err.message })
  })
  worker.on('error', () => {})
  onStop(async () => {
    await worker.close()
    client.disconnect()
  })
  await worker.waitUntilReady()
  await report({ type: 'ready' })
}

main().catch(fail)
