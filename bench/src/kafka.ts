import { randomUUID } from 'node:crypto'
import { createMemoryReplayStore, createSigner, createVerifier, generateKey, runWithContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import { Kafka, logLevel, type IHeaders, type Producer, type ProducerRecord, type RecordMetadata } from 'kafkajs'
import { fmt, pct, table, type Ratios } from './harness.js'

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const CTX = { sub: 'u-4f1c9a', tid: 'acme', txn: randomUUID(), pty: 'user' as const }
const VALUE = Buffer.from(JSON.stringify({ orderId: 'o-1', tenant: 'acme', amount: 42, lines: [{ sku: 'a', qty: 1 }], note: 'x'.repeat(120) }))

/**
 * `plain`: kafkajs alone. `headers`: kafkajs carrying unsigned headers of the sizes idctx's are
 * (the wire cost without signing and verifying). `idctx`: the wrappers, every send from one user.
 * `users`: the wrappers, each send in flight from a different user (16 or 4 in flight).
 */
type Mode = 'plain' | 'headers' | 'idctx' | 'users'
const userOf = (i: number) => ({ ...CTX, sub: `u-${i.toString(16).padStart(6, '0')}` })
const inFlight = (perSend: number) => (perSend === 1 ? 16 : 4)

/** Produces `n` records, `perSend` per call, 16 calls in flight; returns records/s. */
async function produce(send: (messages: { key: string; value: Buffer }[], sender: number) => Promise<unknown>, n: number, perSend: number): Promise<number> {
  let next = 0
  const t = performance.now()
  await Promise.all(
    Array.from({ length: inFlight(perSend) }, async (_, sender) => {
      while (next < n) {
        const start = next
        next += perSend
        const messages = Array.from({ length: Math.min(perSend, n - start) }, (_, k) => ({ key: `o-${start + k}`, value: VALUE }))
        await send(messages, sender)
      }
    }),
  )
  return n / ((performance.now() - t) / 1000)
}

/**
 * The headers idctx puts on records, captured from the wrapped producer over a sender that sends
 * nothing: the sends in flight issued in one turn (one batch-profile token), renamed so that no
 * verifier reads them. Returned per record, cycled over by the `headers` mode.
 */
async function sampleHeaders(signer: ReturnType<typeof createSigner>, topic: string, perSend: number): Promise<IHeaders[]> {
  const captured: IHeaders[] = []
  const capture = async (r: ProducerRecord): Promise<RecordMetadata[]> => {
    for (const m of r.messages) captured.push(Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [`x-${k}`, v])) as IHeaders)
    return []
  }
  const sink = { send: capture, sendBatch: async () => [], transaction: async () => ({ send: capture, sendBatch: async () => [] }) }
  const wrapped = wrapProducer(sink as unknown as Producer, { signer })
  await Promise.all(
    Array.from({ length: inFlight(perSend) }, (_, sender) =>
      runWithContext(userOf(sender), () => wrapped.send({ topic, messages: Array.from({ length: perSend }, (_, k) => ({ key: `o-${k}`, value: VALUE })) })),
    ),
  )
  return captured
}

export async function runKafkaBench(log: (s: string) => void, ratios: Ratios = {}): Promise<string> {
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
      for (const mode of ['plain', 'headers', 'idctx', 'users'] as Mode[]) {
        const n = perSend === 1 ? Math.min(N, 5000) : N
        const topic = `idctx-bench-${mode}-${perSend}-${randomUUID().slice(0, 8)}`
        await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
        log(`kafka: round ${r + 1}/${rounds} ${mode} ${perSend}/send (${n} records)`)
        const producer = kafka.producer()
        await producer.connect()
        const wrapped = wrapProducer(producer, { signer })
        const sample = mode === 'headers' ? await sampleHeaders(signer, topic, perSend) : []
        let h = 0
        const produced =
          mode === 'plain'
            ? await produce((messages) => producer.send({ topic, messages }), n, perSend)
            : mode === 'headers'
              ? await produce((messages) => producer.send({ topic, messages: messages.map((m) => ({ ...m, headers: sample[h++ % sample.length] as IHeaders })) }), n, perSend)
              : mode === 'idctx'
                ? await runWithContext(CTX, () => produce((messages) => wrapped.send({ topic, messages }), n, perSend))
                : await produce((messages, sender) => runWithContext(userOf(sender), () => wrapped.send({ topic, messages })), n, perSend)
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
        if (mode === 'plain' || mode === 'headers') {
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
      for (const mode of ['idctx', 'users'] as const) {
        const idctx = best[`${mode}|${perSend}|${what}`] as number
        const label = `${what}, ${perSend} record${perSend === 1 ? '' : 's'} per send, ${inFlight(perSend)} in flight from ${mode === 'idctx' ? 'one user' : `${inFlight(perSend)} users`}`
        rows.push([label, fmt(plain), fmt(headers), fmt(idctx), pct(idctx, plain), pct(idctx, headers)])
        const key = `kafka.${what}.${perSend}.${mode === 'idctx' ? 'one-user' : 'users'}`
        ratios[`${key}.vs-plain`] = idctx / plain
        ratios[`${key}.vs-headers`] = idctx / headers
      }
    }
  }
  return `${table(['case', 'plain kafkajs records/s', 'plain + same-size headers', 'idctx records/s', 'idctx/plain', 'idctx/(plain + headers)'], rows)}\n\nBest of ${rounds} interleaved rounds; records of ${VALUE.length} bytes; EdDSA; batch profile on (the default: one token per event-loop turn); eachMessage with a no-op handler (verified per fetched batch, the default), the in-memory replay store on; *plain + same-size headers* carries the headers idctx writes (captured from the wrapped producer), renamed and unsigned. 1 per send: 16 sends in flight, 100 per send: 4 in flight; *from N users*: each send in flight in the context of another user.`
}
