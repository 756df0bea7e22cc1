import { randomBytes } from 'node:crypto'
import {
  createMemoryReplayStore,
  createSigner,
  createVerifier,
  generateKey,
  type DispositionEvent,
  type IdctxKey,
  type IdctxObserver,
  type KeySet,
  type RejectedEvent,
  type ReplayEntry,
  type ReplayStore,
  type ReplayVerdict,
  type Signer,
  type SignerOptions,
  type Verifier,
  type VerifiedEvent,
  type VerifierOptions,
} from '@idctx/core'
import { headerOccurrences, headerString, IdctxHeader, type ConsumerLike } from '@idctx/kafkajs'
import {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type ConsumerConfig,
  type ConsumerRunConfig,
  type IHeaders,
  type KafkaMessage,
  type Producer,
  type ProducerConfig,
} from 'kafkajs'

export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
export const AUDIENCE = 'shop'

/** A unique, Kafka-legal name: tests never share topics or groups across runs. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
}

/**
 * Polls `probe` until it returns something other than undefined/false. The timeout only turns a
 * hang into a readable failure; nothing asserts on time.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A record as read back from a topic, with plain-text key/value and header values. */
export interface ReadRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: string | null
  readonly value: string | null
  readonly headers: IHeaders
}

/** The text of a header value the way kafkajs returns it (Buffer or array of Buffers). */
export function headerTexts(headers: IHeaders | undefined, name: string): string[] {
  const v = headers?.[name]
  if (v === undefined) return []
  return (Array.isArray(v) ? v : [v]).map((x) => (typeof x === 'string' ? x : x.toString('utf8')))
}

/** Owns the clients and topics of one test file, and closes them all. */
export class KafkaHarness {
  readonly kafka: Kafka
  private readonly closers: (() => Promise<void>)[] = []
  private readonly topics: string[] = []
  private adminClient: Admin | undefined

  constructor(readonly name: string) {
    this.kafka = new Kafka({ clientId: uniqueName(name), brokers: BROKERS, logLevel: logLevel.NOTHING })
  }

  async admin(): Promise<Admin> {
    if (this.adminClient === undefined) {
      const admin = this.kafka.admin()
      await admin.connect()
      this.adminClient = admin
    }
    return this.adminClient
  }

  /** Creates topics with unique names (one partition unless told) and waits for their leaders. */
  async createTopics(prefix: string, count: number, partitions = 1): Promise<string[]> {
    const names = Array.from({ length: count }, (_, i) => uniqueName(`${prefix}${count > 1 ? i : ''}`))
    const admin = await this.admin()
    await admin.createTopics({ waitForLeaders: true, topics: names.map((topic) => ({ topic, numPartitions: partitions })) })
    this.topics.push(...names)
    return names
  }

  async createTopic(prefix: string, partitions = 1): Promise<string> {
    return (await this.createTopics(prefix, 1, partitions))[0] as string
  }

  /** Also creates the default dead-letter topic `${topic}.idctx-dlq`. */
  async createTopicWithDlq(prefix: string, partitions = 1): Promise<{ topic: string; dlq: string }> {
    const topic = await this.createTopic(prefix, partitions)
    const dlq = `${topic}.idctx-dlq`
    const admin = await this.admin()
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: dlq, numPartitions: 1 }] })
    this.topics.push(dlq)
    return { topic, dlq }
  }

  async producer(config: ProducerConfig = {}): Promise<Producer> {
    const producer = this.kafka.producer(config)
    await producer.connect()
    this.closers.push(() => producer.disconnect())
    return producer
  }

  /** A consumer of a unique group, reading from the beginning; disconnected by `close`. */
  consumer(config: Partial<ConsumerConfig> = {}): Consumer {
    const consumer = this.kafka.consumer({
      groupId: uniqueName(`${this.name}-g`),
      maxWaitTimeInMs: 200,
      retry: { initialRetryTime: 100, retries: 2 },
      ...config,
    })
    this.closers.push(() => consumer.disconnect())
    return consumer
  }

  /** Number of records in a topic (sum of high watermarks; our topics start at offset 0). */
  async recordCount(topic: string): Promise<number> {
    const offsets = await (await this.admin()).fetchTopicOffsets(topic)
    return offsets.reduce((n, p) => n + Number(p.high), 0)
  }

  /** Committed offset of a group on partition 0 of a topic (-1 when none). */
  async committedOffset(groupId: string, topic: string, partition = 0): Promise<number> {
    const [t] = await (await this.admin()).fetchOffsets({ groupId, topics: [topic] })
    const p = t?.partitions.find((x) => x.partition === partition)
    return p === undefined ? -1 : Number(p.offset)
  }

  /** Reads every record currently in the topic, with a plain consumer of its own group. */
  async readAll(topic: string): Promise<ReadRecord[]> {
    const expected = await this.recordCount(topic)
    if (expected === 0) return []
    const out: ReadRecord[] = []
    const consumer = this.kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 200 })
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ topic: t, partition, message }) => {
          out.push({
            topic: t,
            partition,
            offset: message.offset,
            key: message.key?.toString('utf8') ?? null,
            value: message.value?.toString('utf8') ?? null,
            headers: message.headers ?? {},
          })
        },
      })
      await waitFor(`${expected} records of ${topic}`, () => out.length >= expected)
    } finally {
      await consumer.disconnect()
    }
    return out.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset))
  }

  async close(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => undefined)
    if (this.adminClient !== undefined) {
      await this.adminClient.deleteTopics({ topics: this.topics }).catch(() => undefined)
      await this.adminClient.disconnect()
    }
  }
}

/** Records every event an observer receives, for assertions. */
export class RecordingObserver implements IdctxObserver {
  readonly rejected: RejectedEvent[] = []
  readonly dispositions: DispositionEvent[] = []
  readonly kids = new Set<string>()
  verified = 0
  onVerified(e: VerifiedEvent): void {
    this.verified++
    this.kids.add(e.kid)
  }
  onRejected(e: RejectedEvent): void {
    this.rejected.push(e)
  }
  onDisposition(e: DispositionEvent): void {
    this.dispositions.push(e)
  }
}

/** One producing service: its issuer id, key and signer. */
export interface Service {
  readonly issuer: string
  readonly key: IdctxKey | KeySet
  readonly signer: Signer
}

export function service(issuer: string, options: Partial<SignerOptions> = {}): Service {
  const key = options.key ?? generateKey('EdDSA', { kid: uniqueName(issuer) })
  return { issuer, key, signer: createSigner({ issuer, audience: AUDIENCE, key, ...options }) }
}

/** A verifier trusting the given services' keys. */
export function verifierFor(services: readonly Service[], options: Partial<VerifierOptions> = {}): Verifier {
  const issuers: VerifierOptions['issuers'] = {}
  for (const s of services) {
    ;(issuers as Record<string, unknown>)[s.issuer] = 'active' in s.key ? s.key : [s.key]
  }
  return createVerifier({ audience: AUDIENCE, issuers, ...options })
}

/** The reject reason a dead-letter record carries. */
export function rejectReason(r: ReadRecord): string | undefined {
  return headerString(r.headers, IdctxHeader.RejectReason)
}

/**
 * Runs `send` while kafkajs's producer can write header values that are `null` (Kafka's null
 * header value, which Java and librdkafka clients can send): kafkajs's encoder writes a null
 * value as length -1, but its size estimate calls `Buffer.byteLength(null)` first and throws.
 * For the duration of `send` only, that one call answers 0 for null (the estimate then takes the
 * null branch it already has); every other input is passed through unchanged.
 */
export async function withNullHeaderValues<T>(send: () => Promise<T>): Promise<T> {
  const original = Buffer.byteLength
  Buffer.byteLength = ((v: unknown, encoding?: BufferEncoding) =>
    v === null ? 0 : original(v as string, encoding)) as typeof Buffer.byteLength
  try {
    return await send()
  } finally {
    Buffer.byteLength = original
  }
}

/**
 * A view of a consumer whose `run` edits each delivered message's headers in place before the
 * handlers see them — as consumer-side code (an instrumentation, an interceptor) can, putting
 * values there that no broker delivers (undefined, numbers, nested arrays…).
 */
export function editingHeaders<C extends Consumer>(consumer: C, edit: (headers: Record<string, unknown>, message: KafkaMessage) => void): C {
  const run = (config: ConsumerRunConfig = {}) => {
    const { eachMessage, eachBatch } = config
    return consumer.run({
      ...config,
      ...(eachMessage === undefined
        ? {}
        : {
            eachMessage: (payload) => {
              edit(payload.message.headers as Record<string, unknown>, payload.message)
              return eachMessage(payload)
            },
          }),
      ...(eachBatch === undefined
        ? {}
        : {
            eachBatch: (payload) => {
              for (const m of payload.batch.messages) edit(m.headers as Record<string, unknown>, m)
              return eachBatch(payload)
            },
          }),
    })
  }
  return new Proxy(consumer, {
    get: (t, prop) => (prop === 'run' ? run : (Reflect.get(t, prop, t) as unknown)),
  }) satisfies ConsumerLike
}

/** Every occurrence of a header as text (null and other non-bytes occurrences as `null`). */
export function occurrenceTexts(headers: IHeaders | undefined, name: string): (string | null)[] {
  return headerOccurrences(headers, name).map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : null))
}

/** The `sub` claim of a compact JWS, read without verifying it (test inspection only). */
export function unverifiedSub(token: string | undefined): string | undefined {
  if (token === undefined) return undefined
  const payload = token.split('.')[1] ?? ''
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: string }).sub
}

/** The in-memory store, counting how it is asked: per record (`check`) or per batch (`checkMany`). */
export function countingStore(): ReplayStore & { calls: { check: number; checkMany: number; entries: number } } {
  const inner = createMemoryReplayStore()
  const calls = { check: 0, checkMany: 0, entries: 0 }
  return {
    calls,
    check(e: ReplayEntry) {
      calls.check++
      calls.entries++
      return inner.check(e)
    },
    checkMany(es: readonly ReplayEntry[]): ReplayVerdict[] | Promise<ReplayVerdict[]> {
      calls.checkMany++
      calls.entries += es.length
      return (inner.checkMany as (es: readonly ReplayEntry[]) => ReplayVerdict[] | Promise<ReplayVerdict[]>)(es)
    },
  }
}
