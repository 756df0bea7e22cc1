import { randomUUID } from 'node:crypto'
import { createMemoryReplayStore, createSigner, createVerifier, generateKey, runWithContext } from '@idctx/core'
import { wrapConsumer as wrapKafkajsConsumer, wrapProducer as wrapKafkajsProducer } from '@idctx/kafkajs'
import { wrapConsumer, wrapProducer } from '@idctx/platformatic-kafka'
import { Consumer, Producer } from '@platformatic/kafka'
import { Kafka, logLevel } from 'kafkajs'
import { fmt, pct, table, type Ratios } from './harness.js'

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const CTX = { sub: 'u-4f1c9a', tid: 'acme', txn: randomUUID(), pty: 'user' as const }
const VALUE = Buffer.from(JSON.stringify({ orderId: 'o-1', tenant: 'acme', amount: 42, lines: [{ sku: 'a', qty: 1 }], note: 'x'.repeat(120) }))
const inFlight = (perSend: number) => (perSend === 1 ? 16 : 4)

type Client = 'kafkajs' | 'platformatic'
type Mode = 'plain' | 'idctx'

/** Produces `n` records, `perSend` per call, 16 (1 per send) or 4 calls in flight; returns records/s. */
async function produce(send: (keys: string[]) => Promise<unknown>, n: number, perSend: number): Promise<number> {
  let next = 0
  const t = performance.now()
  await Promise.all(
    Array.from({ length: inFlight(perSend) }, async () => {
      while (next < n) {
        const start = next
        next += perSend
        await send(Array.from({ length: Math.min(perSend, n - start) }, (_, k) => `o-${start + k}`))
      }
    }),
  )
  return n / ((performance.now() - t) / 1000)
}

/** Counts records until `n`; resolves with records/s from the first record to the last. */
function counter(n: number): { count: () => void; finished: Promise<number> } {
  let seen = 0
  let first = 0
  let resolve!: (s: number) => void
  const finished = new Promise<number>((res) => (resolve = res))
  return {
    count: () => {
      if (seen++ === 0) first = performance.now()
      if (seen === n) resolve((n - 1) / ((performance.now() - first) / 1000))
    },
    finished,
  }
}

/**
 * `@platformatic/kafka` beside kafkajs, plain and wrapped, on the same broker in the same run:
 * the four combinations interleaved round by round, best of the rounds.
 */
export async function runPlatformaticKafkaBench(log: (s: string) => void, ratios: Ratios = {}): Promise<string> {
  const kafka = new Kafka({ clientId: 'idctx-bench-pk', brokers: BROKERS, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const key = generateKey('EdDSA', { kid: 'bench-pk' })
  const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
  const N = Number(process.env.IDCTX_BENCH_RECORDS ?? 20_000)
  const rounds = Number(process.env.IDCTX_BENCH_ROUNDS ?? 3)
  const best: Record<string, number> = {}
  const kjsDlq = kafka.producer()
  await kjsDlq.connect()
  const pkDlq = new Producer({ clientId: 'idctx-bench-pk-dlq', bootstrapBrokers: BROKERS })
  for (let r = 0; r < rounds; r++) {
    for (const perSend of [1, 100]) {
      for (const client of ['kafkajs', 'platformatic'] as Client[]) {
        for (const mode of ['plain', 'idctx'] as Mode[]) {
          const n = perSend === 1 ? Math.min(N, 5000) : N
          const topic = `idctx-bench-pk-${client}-${mode}-${perSend}-${randomUUID().slice(0, 8)}`
          await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
          log(`platformatic: round ${r + 1}/${rounds} ${client} ${mode} ${perSend}/send (${n} records)`)
          const verifier = () => createVerifier({ audience: 'shop', issuers: { orders: [key] }, replay: createMemoryReplayStore() })
          const c = counter(n)
          let produced: number
          let consumed: number
          if (client === 'kafkajs') {
            const producer = kafka.producer()
            await producer.connect()
            const wrapped = wrapKafkajsProducer(producer, { signer })
            const send = (keys: string[]) => (mode === 'plain' ? producer : wrapped).send({ topic, messages: keys.map((k) => ({ key: k, value: VALUE })) })
            produced = mode === 'plain' ? await produce(send, n, perSend) : await runWithContext(CTX, () => produce(send, n, perSend))
            await producer.disconnect()
            const consumer = kafka.consumer({ groupId: `${topic}-g`, maxBytesPerPartition: 4 * 1024 * 1024 })
            await consumer.connect()
            await consumer.subscribe({ topic, fromBeginning: true })
            if (mode === 'plain') await consumer.run({ eachMessage: async () => c.count() })
            else await wrapKafkajsConsumer(consumer, { verifier: verifier(), tenant: 'acme', deadLetter: { producer: kjsDlq } }).run({ eachMessage: async () => c.count() })
            consumed = await c.finished
            await consumer.disconnect()
          } else {
            const producer = new Producer({ clientId: `${topic}-p`, bootstrapBrokers: BROKERS })
            const wrapped = wrapProducer(producer, { signer })
            const send = (keys: string[]) => (mode === 'plain' ? producer : wrapped).send({ messages: keys.map((k) => ({ topic, key: Buffer.from(k), value: VALUE })) })
            produced = mode === 'plain' ? await produce(send, n, perSend) : await runWithContext(CTX, () => produce(send, n, perSend))
            await producer.close()
            const consumer = new Consumer({ clientId: `${topic}-c`, groupId: `${topic}-g`, bootstrapBrokers: BROKERS, maxBytesPerPartition: 4 * 1024 * 1024 })
            if (mode === 'plain') {
              const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
              const loop = (async () => {
                for await (const _ of stream) c.count()
              })()
              consumed = await c.finished
              await stream.close()
              await loop.catch(() => undefined)
            } else {
              const stream = await wrapConsumer(consumer, { verifier: verifier(), tenant: 'acme', deadLetter: { producer: pkDlq } }).consume({ topics: [topic], mode: 'earliest' })
              const loop = stream.process(() => c.count())
              consumed = await c.finished
              await stream.close()
              await loop.catch(() => undefined)
            }
            await consumer.close(true)
          }
          await admin.deleteTopics({ topics: [topic] }).catch(() => {})
          const k = (what: string) => `${client}|${mode}|${perSend}|${what}`
          best[k('produce')] = Math.max(best[k('produce')] ?? 0, produced)
          best[k('consume')] = Math.max(best[k('consume')] ?? 0, consumed)
        }
      }
    }
  }
  await pkDlq.close()
  await kjsDlq.disconnect()
  await admin.disconnect()
  const rows: string[][] = []
  for (const perSend of [1, 100]) {
    for (const what of ['produce', 'consume'] as const) {
      const v = (client: Client, mode: Mode) => best[`${client}|${mode}|${perSend}|${what}`] as number
      const label = `${what}, ${perSend} record${perSend === 1 ? '' : 's'} per send, ${inFlight(perSend)} in flight`
      rows.push([label, fmt(v('kafkajs', 'plain')), fmt(v('kafkajs', 'idctx')), pct(v('kafkajs', 'idctx'), v('kafkajs', 'plain')), fmt(v('platformatic', 'plain')), fmt(v('platformatic', 'idctx')), pct(v('platformatic', 'idctx'), v('platformatic', 'plain'))])
      ratios[`platformatic.${what}.${perSend}.vs-plain`] = v('platformatic', 'idctx') / v('platformatic', 'plain')
    }
  }
  return `${table(['case', 'plain kafkajs', 'idctx kafkajs', 'idctx/plain', 'plain @platformatic/kafka', 'idctx @platformatic/kafka', 'idctx/plain'], rows)}\n\nRecords/s, best of ${rounds} interleaved rounds; records of ${VALUE.length} bytes; EdDSA; batch profile on; one user; the in-memory replay store on. kafkajs: \`eachMessage\` with a no-op handler; @platformatic/kafka: a \`for await\` over \`consume()\` (its autocommit, at fetch time) vs the wrapped stream's \`process\` (the messages the client holds verified together, handed out one at a time, committed after handling, coalesced).`
}
