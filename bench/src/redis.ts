/**
 * The shared Redis stores against the in-memory ones, same run, same broker and Redis: the
 * wrapped kafkajs consumer (eachMessage and eachBatch) on records sent 100 per send, and the
 * BullMQ worker, each with the Redis replay store (and, for Kafka, the Redis deny-list) vs the
 * in-memory replay store.
 */
import { randomUUID } from 'node:crypto'
import { createMemoryReplayStore, createSigner, createVerifier, generateKey, runWithContext, type ReplayStore } from '@idctx/core'
import { createProcessor, wrapQueue } from '@idctx/bullmq'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { Kafka, logLevel } from 'kafkajs'
// The package's sources, by path: bench/package.json does not list @idctx/redis (adding it means
// a lockfile change); tsx runs them like the workspace packages (`@idctx/source`).
import { createRedisReplayStore, createRedisRevocationStore, type RedisRevocationStore } from '../../packages/redis/src/index.js'
import { fmt, pct, table } from './harness.js'

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const CTX = { sub: 'u-4f1c9a', tid: 'acme', txn: randomUUID(), pty: 'user' as const }
const VALUE = Buffer.from(JSON.stringify({ orderId: 'o-1', tenant: 'acme', amount: 42, lines: [{ sku: 'a', qty: 1 }], note: 'x'.repeat(120) }))
type Store = 'memory' | 'redis'

function connection() {
  const u = new URL(REDIS_URL)
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null }
}

/** Wall time spent waiting for the replay store, and the checks it answered. */
interface StoreTime {
  ms: number
  checks: number
}

/** The store, timed: how long the verifier waited for it (added to `time`). */
function timed(store: ReplayStore, time: StoreTime): ReplayStore {
  const many = store.checkMany?.bind(store)
  return {
    async check(e) {
      const t = performance.now()
      try {
        return await store.check(e)
      } finally {
        time.ms += performance.now() - t
        time.checks++
      }
    },
    ...(many === undefined
      ? {}
      : {
          async checkMany(es) {
            const t = performance.now()
            try {
              return await many(es)
            } finally {
              time.ms += performance.now() - t
              time.checks += es.length
            }
          },
        }),
  }
}

/** A store of the kind, fresh for one run (Redis: a prefix of its own), timed into `time`. */
function stores(kind: Store, redis: Redis, time: StoreTime): { replay: ReplayStore; revocation?: RedisRevocationStore; close(): Promise<void> } {
  if (kind === 'memory') return { replay: timed(createMemoryReplayStore(), time), close: async () => {} }
  const prefix = `idctx-bench:${randomUUID().slice(0, 8)}`
  const revocation = createRedisRevocationStore({ client: redis, prefix: `${prefix}:revocation` })
  return {
    replay: timed(createRedisReplayStore({ client: redis, prefix: `${prefix}:replay:` }), time),
    revocation,
    async close() {
      await revocation.close()
      // Leave nothing behind in the shared Redis.
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        if (keys.length > 0) await redis.unlink(...keys)
        cursor = next
      } while (cursor !== '0')
      await redis.unlink(`{${prefix}:revocation}:entries`)
    },
  }
}

type Results = { rate: Record<string, number>; storeUs: Record<string, number> }

async function kafkaConsume(redis: Redis, log: (s: string) => void, rounds: number): Promise<Results> {
  const kafka = new Kafka({ clientId: 'idctx-bench-redis', brokers: BROKERS, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const key = generateKey('EdDSA', { kid: 'bench-redis' })
  const N = Number(process.env.IDCTX_BENCH_RECORDS ?? 20_000)
  const topic = `idctx-bench-redis-${randomUUID().slice(0, 8)}`
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  const producer = kafka.producer()
  await producer.connect()
  const wrapped = wrapProducer(producer, { signer: createSigner({ issuer: 'orders', audience: 'shop', key }) })
  log(`redis: producing ${N} records, 100 per send`)
  await runWithContext(CTX, async () => {
    for (let i = 0; i < N; i += 400) {
      await Promise.all(
        Array.from({ length: 4 }, (_, j) =>
          wrapped.send({ topic, messages: Array.from({ length: 100 }, (_, k) => ({ key: `o-${i + j * 100 + k}`, value: VALUE })) }),
        ),
      )
    }
  })
  await producer.disconnect()
  const dlq = kafka.producer()
  await dlq.connect()
  const best: Results = { rate: {}, storeUs: {} }
  try {
    for (let r = 0; r < rounds; r++) {
      for (const variant of ['eachMessage', 'eachBatch'] as const) {
        for (const store of ['memory', 'redis'] as Store[]) {
          log(`redis: kafka round ${r + 1}/${rounds} ${variant} ${store}`)
          const time: StoreTime = { ms: 0, checks: 0 }
          const s = stores(store, redis, time)
          if (s.revocation !== undefined) await s.revocation.ready()
          const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] }, replay: s.replay, ...(s.revocation ? { revocation: s.revocation } : {}) })
          // A new group per run reads the same records from the start.
          const consumer = kafka.consumer({ groupId: `${topic}-${variant}-${store}-${r}`, maxBytesPerPartition: 4 * 1024 * 1024 })
          await consumer.connect()
          await consumer.subscribe({ topic, fromBeginning: true })
          let seen = 0
          let first = 0
          let resolve!: (s: number) => void
          const finished = new Promise<number>((res) => (resolve = res))
          const count = (k: number) => {
            if (seen === 0) first = performance.now()
            seen += k
            if (seen >= N) resolve((N - 1) / ((performance.now() - first) / 1000))
          }
          const idctx = wrapConsumer(consumer, { verifier, tenant: 'acme', deadLetter: { producer: dlq } })
          if (variant === 'eachMessage') await idctx.run({ eachMessage: async () => count(1) })
          else await idctx.run({ eachBatch: async ({ batch }) => count(batch.messages.length) })
          const rate = await finished
          await consumer.disconnect()
          await s.close()
          const k = `${variant}|${store}`
          if (rate > (best.rate[k] ?? 0)) {
            best.rate[k] = rate
            best.storeUs[k] = (time.ms * 1000) / Math.max(1, time.checks)
          }
        }
      }
    }
  } finally {
    await dlq.disconnect()
    await admin.deleteTopics({ topics: [topic] }).catch(() => {})
    await admin.disconnect()
  }
  return best
}

async function bullmqWorker(redis: Redis, log: (s: string) => void, rounds: number): Promise<Results> {
  const key = generateKey('EdDSA', { kid: 'bench-redis-bullmq' })
  const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
  const N = Number(process.env.IDCTX_BENCH_JOBS ?? 4000)
  const best: Results = { rate: {}, storeUs: {} }
  const data = (i: number) => ({ orderId: `o-${i}`, tenant: 'acme', amount: i, lines: [{ sku: 'a', qty: 1 }] })
  for (let r = 0; r < rounds; r++) {
    for (const shape of ['single', 'bulk'] as const) {
      for (const store of ['memory', 'redis'] as Store[]) {
        log(`redis: bullmq round ${r + 1}/${rounds} ${shape} ${store} (${N} jobs)`)
        const prefix = `idctx-bench-${randomUUID().slice(0, 8)}`
        const queue = new Queue('invoices', { connection: connection(), prefix })
        const signed = wrapQueue(queue, { signer })
        await runWithContext(CTX, async () => {
          if (shape === 'single') {
            let next = 0
            await Promise.all(
              Array.from({ length: 50 }, async () => {
                while (next < N) {
                  const i = next++
                  await signed.add('invoice', data(i))
                }
              }),
            )
          } else {
            for (let i = 0; i < N; i += 100) await signed.addBulk(Array.from({ length: 100 }, (_, k) => ({ name: 'invoice', data: data(i + k) })))
          }
        })
        const time: StoreTime = { ms: 0, checks: 0 }
        const s = stores(store, redis, time)
        const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] }, replay: s.replay })
        const processor = createProcessor(async () => undefined, { verifier, tenant: 'acme' })
        let done = 0
        let resolve!: () => void
        const finished = new Promise<void>((res) => (resolve = res))
        const t = performance.now()
        const worker = new Worker('invoices', processor, { connection: connection(), prefix, concurrency: 50, removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } })
        worker.on('completed', () => ++done === N && resolve())
        worker.on('failed', (_job, err) => {
          console.error('bench job failed', err.message)
          if (++done === N) resolve()
        })
        await finished
        const rate = N / ((performance.now() - t) / 1000)
        await worker.close()
        await queue.obliterate({ force: true })
        await queue.close()
        await s.close()
        const k = `${shape}|${store}`
        if (rate > (best.rate[k] ?? 0)) {
          best.rate[k] = rate
          best.storeUs[k] = (time.ms * 1000) / Math.max(1, time.checks)
        }
      }
    }
  }
  return best
}

export async function runRedisBench(log: (s: string) => void): Promise<string> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  const rounds = 3
  try {
    const kafka = await kafkaConsume(redis, log, rounds)
    const bull = await bullmqWorker(redis, log, rounds)
    const us = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(1))
    const row = (name: string, r: Results, k: string, waits: boolean) => {
      const memory = r.rate[`${k}|memory`] as number
      const shared = r.rate[`${k}|redis`] as number
      return [name, fmt(memory), fmt(shared), pct(shared, memory), waits ? us(r.storeUs[`${k}|memory`]) : '–', waits ? us(r.storeUs[`${k}|redis`]) : '–']
    }
    const rows = [
      row('Kafka consume, 100 per send, eachMessage', kafka, 'eachMessage', true),
      row('Kafka consume, 100 per send, eachBatch', kafka, 'eachBatch', true),
      row('BullMQ worker (concurrency 50), jobs from single adds', bull, 'single', false),
      row('BullMQ worker (concurrency 50), jobs from addBulk', bull, 'bulk', false),
    ]
    const headers = ['case', 'in-memory store /s', 'Redis store /s', 'Redis/in-memory', 'waiting for the in-memory store µs/check', 'waiting for Redis µs/check']
    return `${table(headers, rows)}\n\nBest of ${rounds} interleaved rounds; EdDSA; no-op handlers; the Redis of REDIS_URL on loopback, one ioredis client for the stores. Kafka: ${Number(process.env.IDCTX_BENCH_RECORDS ?? 20_000)} records of ${VALUE.length} bytes on one partition, the Redis replay store and the Redis deny-list vs the in-memory replay store. BullMQ: ${Number(process.env.IDCTX_BENCH_JOBS ?? 4000)} jobs, the Redis replay store vs the in-memory one. *Waiting* (Kafka only; the worker's 50 concurrent jobs wait at the same time): wall time the consumer spent awaiting the replay store, per check, a batch call's time spread over its checks.`
  } finally {
    redis.disconnect()
  }
}
