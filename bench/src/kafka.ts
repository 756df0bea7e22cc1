import { randomUUID } from 'node:crypto'
import { createMemoryReplayStore, createSigner, createVerifier, generateKey, runWithContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { fmt, pct, table } from './harness.js'

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const CTX = { sub: 'u-4f1c9a', tid: 'acme', txn: randomUUID(), pty: 'user' as const }
const VALUE = Buffer.from(JSON.stringify({ orderId: 'o-1', tenant: 'acme', amount: 42, lines: [{ sku: 'a', qty: 1 }], note: 'x'.repeat(120) }))

type Mode = 'plain' | 'headers' | 'idctx'

/** Produces `n` records, `perSend` per call, 16 calls in flight; returns records/s. */
async function produce(producer: Producer, send: (messages: { key: string; value: Buffer }[]) => Promise<unknown>, n: number, perSend: number): Promise<number> {
  let next = 0
  const t = performance.now()
  await Promise.all(
    Array.from({ length: perSend === 1 ? 16 : 4 }, async () => {
      while (next < n) {
        const start = next
        next += perSend
        const messages = Array.from({ length: Math.min(perSend, n - start) }, (_, k) => ({ key: `o-${start + k}`, value: VALUE }))
        await send(messages)
      }
    }),
  )
  void producer
  return n / ((performance.now() - t) / 1000)
}

export async function runKafkaBench(log: (s: string) => void): Promise<string> {
  const kafka = new Kafka({ clientId: 'idctx-bench', brokers: BROKERS, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const key = generateKey('EdDSA', { kid: 'bench-kafka' })
  const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
  const N = Number(process.env.IDCTX_BENCH_RECORDS ?? 20_000)
  const best: Record<string, number> = {}
  const rounds = 3
  const dlq = kafka.producer()
  await dlq.connect()
  for (let r = 0; r < rounds; r++) {
    for (const perSend of [1, 100]) {
      for (const mode of ['plain', 'headers', 'idctx'] as Mode[]) {
        const n = perSend === 1 ? Math.min(N, 5000) : N
        const topic = `idctx-bench-${mode}-${perSend}-${randomUUID().slice(0, 8)}`
        await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
        log(`kafka: round ${r + 1}/${rounds} ${mode} ${perSend}/send (${n} records)`)
        const producer = kafka.producer()
        await producer.connect()
        const wrapped = wrapProducer(producer, { signer })
        // 'headers': plain kafkajs carrying unsigned headers the size of idctx's, to tell the cost
        // of the bytes on the wire from the cost of signing and verifying.
        const sample = signer.sign(CTX, Array.from({ length: perSend }, () => ({ destination: `kafka:${topic}`, leaf: Buffer.alloc(32) })))
        const fakeHeaders = (k: number) => ({ 'x-token': sample.token, ...(sample.proofs[k] ? { 'x-proof': sample.proofs[k] } : {}) })
        const produced =
          mode === 'plain'
            ? await produce(producer, (messages) => producer.send({ topic, messages }), n, perSend)
            : mode === 'headers'
              ? await produce(producer, (messages) => producer.send({ topic, messages: messages.map((m, k) => ({ ...m, headers: fakeHeaders(k) })) }), n, perSend)
              : await runWithContext(CTX, () => produce(producer, (messages) => wrapped.send({ topic, messages }), n, perSend))
        await producer.disconnect()

        const consumer = kafka.consumer({ groupId: `${topic}-g`, maxBytesPerPartition: 4 * 1024 * 1024 })
        await consumer.connect()
        await consumer.subscribe({ topic, fromBeginning: true })
        let seen = 0
        let first = 0
        let resolve!: (s: number) => void
        const finished = new Promise<number>((res) => (resolve = res))
        const count = () => {
          if (seen++ === 0) first = performance.now()
          if (seen === n) resolve((n - 1) / ((performance.now() - first) / 1000))
        }
        if (mode !== 'idctx') {
          await consumer.run({ eachMessage: async () => count() })
        } else {
          const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] }, replay: createMemoryReplayStore() })
          await wrapConsumer(consumer, { verifier, tenant: 'acme', deadLetter: { producer: dlq } }).run({ eachMessage: async () => count() })
        }
        const consumed = await finished
        await consumer.disconnect()
        await admin.deleteTopics({ topics: [topic] }).catch(() => {})
        const k = (what: string) => `${mode}|${perSend}|${what}`
        best[k('produce')] = Math.max(best[k('produce')] ?? 0, produced)
        best[k('consume')] = Math.max(best[k('consume')] ?? 0, consumed)
      }
    }
  }
  await dlq.disconnect()
  await admin.disconnect()
  const rows: string[][] = []
  for (const perSend of [1, 100]) {
    for (const what of ['produce', 'consume'] as const) {
      const plain = best[`plain|${perSend}|${what}`] as number
      const headers = best[`headers|${perSend}|${what}`] as number
      const idctx = best[`idctx|${perSend}|${what}`] as number
      rows.push([
        `${what}, ${perSend} record${perSend === 1 ? '' : 's'} per send`,
        fmt(plain),
        fmt(headers),
        fmt(idctx),
        pct(idctx, plain),
        pct(idctx, headers),
      ])
    }
  }
  return `${table(['case', 'plain kafkajs records/s', 'plain + same-size headers', 'idctx records/s', 'idctx/plain', 'idctx/(plain + headers)'], rows)}\n\nBest of ${rounds} interleaved rounds; records of ${VALUE.length} bytes; EdDSA; eachMessage with a no-op handler, a replay store on; 1 per send: 16 sends in flight, 100 per send: 4 in flight.`
}
