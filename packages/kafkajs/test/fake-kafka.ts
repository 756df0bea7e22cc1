import { createSigner, createVerifier, generateKey, kafkaDestination, kafkaLeaf, type IdentityContext } from '@idctx/core'
import type { ConsumerRunConfig, EachBatchPayload, EachMessagePayload, IHeaders, KafkaMessage, ProducerBatch, ProducerRecord } from 'kafkajs'
import type { ConsumerLike, ProducerLike } from '../src/index.js'

// Stand-ins for kafkajs clients: the tests call the handlers the wrapper hands to `run` directly,
// with records shaped as kafkajs delivers them. No broker (test/kafka has the broker tests).

export const AUDIENCE = 'aud'
export const key = generateKey('EdDSA', { kid: 'unit-k1' })
export const signer = createSigner({ issuer: 'svc', audience: AUDIENCE, key })
export const verifier = (options: Partial<Parameters<typeof createVerifier>[0]> = {}) =>
  createVerifier({ audience: AUDIENCE, issuers: { svc: [key] }, ...options })

/** A consumer whose `run` only keeps the configuration the wrapper built. */
export class FakeConsumer implements ConsumerLike {
  config: ConsumerRunConfig | undefined
  async run(config?: ConsumerRunConfig): Promise<void> {
    this.config = config
  }

  eachMessage(payload: EachMessagePayload): Promise<void> {
    const fn = this.config?.eachMessage
    if (fn === undefined) throw new Error('run({ eachMessage }) was not called')
    return fn(payload)
  }

  eachBatch(payload: EachBatchPayload): Promise<void> {
    const fn = this.config?.eachBatch
    if (fn === undefined) throw new Error('run({ eachBatch }) was not called')
    return fn(payload)
  }
}

/** A producer that records what it was asked to send. */
export class FakeProducer implements ProducerLike {
  readonly sent: ProducerRecord[] = []
  /** Calls to fail (with `failure`) before sends succeed. */
  failures = 0
  async send(record: ProducerRecord) {
    if (this.failures > 0) {
      this.failures--
      throw new Error('broker unavailable')
    }
    this.sent.push(record)
    return []
  }
  async sendBatch(batch: ProducerBatch) {
    for (const t of batch.topicMessages ?? []) await this.send(t)
    return []
  }
  async transaction() {
    return this
  }
}

/** A consumed record as kafkajs delivers it (Buffers, string offset). */
export function record(offset: number, k: string, v: string, headers: IHeaders): KafkaMessage {
  return { key: Buffer.from(k), value: Buffer.from(v), timestamp: '0', attributes: 0, offset: String(offset), headers }
}

/** Signs records of one call (one token; proofs when several), as wrapProducer would. */
export function signRecords(topic: string, context: IdentityContext, records: readonly (readonly [string, string])[]) {
  return signer.sign(
    context,
    records.map(([k, v]) => ({ destination: kafkaDestination(topic), leaf: kafkaLeaf(topic, k, v) })),
  )
}

export function messagePayload(topic: string, message: KafkaMessage): EachMessagePayload {
  return { topic, partition: 0, message, heartbeat: async () => undefined, pause: () => () => undefined }
}

/** An eachBatch payload over `messages`, recording what gets resolved. */
export function batchPayload(topic: string, messages: KafkaMessage[]): EachBatchPayload & { resolved: string[] } {
  const resolved: string[] = []
  const last = messages[messages.length - 1]
  return {
    resolved,
    batch: {
      topic,
      partition: 0,
      highWatermark: String(Number(last?.offset ?? -1) + 1),
      messages,
      isEmpty: () => messages.length === 0,
      firstOffset: () => messages[0]?.offset ?? null,
      lastOffset: () => last?.offset ?? '-1',
      offsetLag: () => '0',
      offsetLagLow: () => '0',
    },
    resolveOffset: (offset: string) => void resolved.push(offset),
    heartbeat: async () => undefined,
    pause: () => () => undefined,
    commitOffsetsIfNecessary: async () => undefined,
    uncommittedOffsets: () => ({ topics: [] }),
    isRunning: () => true,
    isStale: () => false,
  }
}

/** The `sub` claim of a compact JWS (payload read without verifying: test inspection only). */
export function subOf(token: unknown): string | undefined {
  const text = Buffer.isBuffer(token) ? token.toString('utf8') : String(token)
  const payload = text.split('.')[1] ?? ''
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: string }).sub
}
