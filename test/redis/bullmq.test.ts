/**
 * BullMQ workers in two processes share the Redis replay store: a job copied into the queue (the
 * same data with its `__idctx` carrier, under a new job id) is rejected as `replayed` whichever
 * worker takes it, and a retried job that moves to the other worker is a redelivery, not a replay.
 */
import { randomUUID } from 'node:crypto'
import { createSigner, exportPublicJwk, generateKey, runWithContext } from '@idctx/core'
import { wrapQueue } from '@idctx/bullmq'
import { Queue } from 'bullmq'
import { describe, expect, it } from 'vitest'
import { AUDIENCE, uniqueName, waitFor } from '../kafka/helpers.js'
import { startInstance, stopAll, type Instance } from './children.js'
import type { BullmqWorkerConfig, BullmqWorkerMessage } from './procs/bullmq-worker.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const JOBS = 100
const CTX = { sub: 'u-42', tid: 'acme', txn: randomUUID(), pty: 'user' as const }

type Done = { worker: string } & Extract<BullmqWorkerMessage, { type: 'completed' | 'failed' }>

describe('Redis replay store shared by BullMQ workers in 2 processes', () => {
  it(`${JOBS} jobs copied under new ids: all replayed, whichever worker takes them; retries that move to the other worker pass`, async () => {
    const workers: Instance<BullmqWorkerMessage>[] = []
    const u = new URL(REDIS_URL)
    const bullPrefix = `test-${randomUUID().slice(0, 8)}`
    const queue = new Queue<Record<string, unknown>>('invoices', { connection: { host: u.hostname, port: Number(u.port || 6379) }, prefix: bullPrefix })
    try {
      const key = generateKey('EdDSA', { kid: uniqueName('orders') })
      const signed = wrapQueue(queue, { signer: createSigner({ issuer: 'orders', audience: AUDIENCE, key }) })
      const config: BullmqWorkerConfig = {
        url: REDIS_URL,
        queue: 'invoices',
        bullPrefix,
        replayPrefix: `test:${randomUUID()}:`,
        issuer: 'orders',
        audience: AUDIENCE,
        jwk: exportPublicJwk(key),
      }
      const done: Done[] = []
      for (const name of ['w1', 'w2']) {
        const w = startInstance<BullmqWorkerMessage>(name, './procs/bullmq-worker.ts', config)
        workers.push(w)
        w.onMessage((m) => {
          if (m.type === 'completed' || m.type === 'failed') done.push({ ...m, worker: name })
        })
      }
      await Promise.all(workers.map((w) => w.waitFor('ready', (m) => m.type === 'ready')))

      // Originals: one in five fails its first attempt and is retried (attempts: 2).
      await runWithContext(CTX, async () => {
        for (let i = 0; i < JOBS; i++) {
          await signed.add('invoice', { k: `o-${i}`, tenant: 'acme', ...(i % 5 === 0 ? { failOnce: true } : {}) }, { jobId: `o-${i}`, attempts: 2 })
        }
      })
      const completed = (id: string) => done.find((d) => d.type === 'completed' && d.jobId === id)
      await waitFor('every original to complete', () => Array.from({ length: JOBS }, (_, i) => `o-${i}`).every((id) => completed(id) !== undefined), 30_000)
      for (const d of done.filter((x) => x.jobId.startsWith('o-'))) {
        if (d.type === 'failed') expect(d.reason).toBe('transient failure, retry me')
        else expect(d.sub).toBe(CTX.sub)
      }
      // A retry on the other worker: a redelivery at the same coordinates.
      const retriedElsewhere = Array.from({ length: JOBS }, (_, i) => `o-${i}`).filter((id) => {
        const first = done.find((d) => d.type === 'failed' && d.jobId === id)
        return first !== undefined && completed(id)?.worker !== first.worker
      }).length

      // Copies: the stored data, carrier included, re-added under a new id by a plain queue.
      for (let i = 0; i < JOBS; i++) {
        const original = await queue.getJob(`o-${i}`)
        expect(original?.data.__idctx).toEqual(expect.any(String))
        await queue.add('invoice', original?.data as Record<string, unknown>, { jobId: `copy-${i}`, attempts: 2 })
      }
      const copyDone = (id: string) => done.find((d) => d.jobId === id)
      await waitFor('every copy to be settled', () => Array.from({ length: JOBS }, (_, i) => `copy-${i}`).every((id) => copyDone(id) !== undefined), 30_000)
      const copies = Array.from({ length: JOBS }, (_, i) => copyDone(`copy-${i}`) as Done)
      expect(copies.filter((d) => d.type !== 'failed' || d.reason !== 'idctx rejected: replayed')).toEqual([])
      // Rejected at once (an UnrecoverableError: no second attempt).
      expect(copies.every((d) => d.attemptsMade <= 1)).toBe(true)
      const byWorker = { w1: copies.filter((d) => d.worker === 'w1').length, w2: copies.filter((d) => d.worker === 'w2').length }
      const crossWorker = copies.filter((d, i) => d.worker !== completed(`o-${i}`)?.worker).length
      expect(byWorker.w1).toBeGreaterThan(0)
      expect(byWorker.w2).toBeGreaterThan(0)
      expect(crossWorker).toBeGreaterThan(0)
      console.log(
        `[redis bullmq] ${JOBS}/${JOBS} copies replayed (w1 ${byWorker.w1}, w2 ${byWorker.w2}; ${crossWorker} on the worker that had not run the original); ` +
          `${JOBS} originals completed, ${retriedElsewhere} retries ran on the other worker and passed`,
      )
    } finally {
      await stopAll(workers)
      await queue.obliterate({ force: true }).catch(() => undefined)
      await queue.close()
    }
  })
})
