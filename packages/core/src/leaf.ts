import canonicalize from 'canonicalize'
import { hashLeafParts } from './merkle.js'

const DOMAIN = Buffer.from('idctx-leaf-v1\0', 'latin1')
const NULL_LENGTH = 0xffffffff

/** A Kafka key or value as the client hands it over: bytes, text, or null (a tombstone). */
export type KafkaBytes = Buffer | Uint8Array | string | null | undefined

/**
 * The destination string of a Kafka topic, as it appears in `dst` and in the leaf.
 *
 * @example
 * ```ts
 * kafkaDestination('orders') // 'kafka:orders'
 * ```
 */
export function kafkaDestination(topic: string): string {
  return `kafka:${topic}`
}

/**
 * The destination string of a BullMQ job, as it appears in `dst` and in the leaf.
 *
 * @example
 * ```ts
 * bullmqDestination('invoices', 'invoice') // 'bullmq:invoices/invoice'
 * ```
 */
export function bullmqDestination(queue: string, jobName: string): string {
  return `bullmq:${queue}/${jobName}`
}

function toBytes(v: KafkaBytes): Buffer | null {
  if (v === null || v === undefined) return null
  if (typeof v === 'string') return Buffer.from(v, 'utf8')
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

function lengthPrefix(b: Buffer | null): Buffer {
  const len = Buffer.allocUnsafe(4)
  len.writeUInt32BE(b === null ? NULL_LENGTH : b.length, 0)
  return len
}

/**
 * The leaf hash of one message: a length-prefixed encoding of destination, key and value under a
 * fixed domain tag, hashed as an RFC 6962 leaf. Null and empty are different.
 *
 * @example
 * ```ts
 * const leaf = messageLeaf('kafka:orders', 'order-1', Buffer.from('{"total":3}'))
 * ```
 */
export function messageLeaf(destination: string, key: KafkaBytes, value: KafkaBytes): Buffer {
  const dst = Buffer.from(destination, 'utf8')
  const k = toBytes(key)
  const v = toBytes(value)
  const parts: Buffer[] = [DOMAIN, lengthPrefix(dst), dst, lengthPrefix(k)]
  if (k !== null) parts.push(k)
  parts.push(lengthPrefix(v))
  if (v !== null) parts.push(v)
  return hashLeafParts(parts)
}

/**
 * The leaf of a Kafka record: destination `kafka:<topic>`, the record key and the exact value
 * bytes (a string value is taken as its UTF-8 bytes, as kafkajs sends it).
 *
 * @example
 * ```ts
 * const leaf = kafkaLeaf('orders', message.key, message.value)
 * ```
 */
export function kafkaLeaf(topic: string, key: KafkaBytes, value: KafkaBytes): Buffer {
  return messageLeaf(kafkaDestination(topic), key, value)
}

/**
 * RFC 8785 (JCS) canonical JSON of BullMQ job data without the reserved token field, as the
 * consumer will read it back (BullMQ stores `JSON.stringify(data)`). Throws a TypeError when the
 * data cannot be serialized (BigInt, cycles).
 *
 * @example
 * ```ts
 * canonicalJobData({ b: 1, a: 2, __idctx: 't' }) // '{"a":2,"b":1}'
 * ```
 */
export function canonicalJobData(data: Record<string, unknown>, reservedKey = '__idctx'): string {
  let source = data
  if (Object.prototype.hasOwnProperty.call(data, reservedKey)) {
    const { [reservedKey]: _omit, ...rest } = data
    source = rest
  }
  // Canonicalize what the consumer will see: a function or NaN value survives `canonicalize` as
  // `undefined`/an Error, while BullMQ's JSON.stringify drops or nulls it; leaves must agree.
  const stored = JSON.stringify(source) as string | undefined
  if (stored === undefined) throw new TypeError('job data is not representable as JSON')
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)(JSON.parse(stored))
  if (text === undefined) throw new TypeError('job data is not representable as JSON')
  return text
}

/**
 * The leaf of a BullMQ job: destination `bullmq:<queue>/<jobName>`, no key, and the canonical
 * JSON of the data without the token field, so Redis round trips and key order do not matter.
 *
 * @example
 * ```ts
 * const leaf = bullmqLeaf('invoices', 'invoice', job.data)
 * ```
 */
export function bullmqLeaf(queue: string, jobName: string, data: Record<string, unknown>): Buffer {
  return messageLeaf(bullmqDestination(queue, jobName), null, canonicalJobData(data))
}
