import type { ReasonCode } from '@idctx/core'
import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { DeadLetterError } from './errors.js'
import { headerOccurrences, IdctxHeader } from './headers.js'
import type { KafkaSender } from './producer.js'

/**
 * One rejected record on its way to the dead-letter topic.
 *
 * @example
 * ```ts
 * const entry: DeadLetterEntry = { topic: 'orders', partition: 0, message, reason: 'expired' }
 * await dlq.send({ topic: defaultDeadLetterTopic(entry.topic), messages: [deadLetterRecord(entry)] })
 * ```
 */
export interface DeadLetterEntry {
  /** The topic the record was consumed from. */
  readonly topic: string
  /** Its partition. */
  readonly partition: number
  /** The record as consumed; its key, value and headers are copied unchanged. */
  readonly message: KafkaMessage
  /** The reason code it was rejected with (header `idctx-reject-reason`). */
  readonly reason: ReasonCode
}

/**
 * The default dead-letter topic of a source topic: `${topic}.idctx-dlq`.
 *
 * @example
 * ```ts
 * defaultDeadLetterTopic('orders') // 'orders.idctx-dlq'
 * ```
 */
export function defaultDeadLetterTopic(topic: string): string {
  return `${topic}.idctx-dlq`
}

/**
 * What {@link deadLetterRecord} notes for one header occurrence it could not copy as it was.
 *
 * @example
 * ```ts
 * const replaced: ReplacedHeaderValue[] = JSON.parse(headerString(dlqMessage.headers, IdctxHeader.ReplacedValues) ?? '[]')
 * // [{ name: 'idctx', index: 1, type: 'null' }]
 * ```
 */
export interface ReplacedHeaderValue {
  /** The header name. */
  readonly name: string
  /** The occurrence's position among that header's occurrences (0 for a header that is not repeated). */
  readonly index: number
  /**
   * What the value was: `null`, `undefined`, `number`, `boolean`, `bigint` (written as their text),
   * or `array` (an array inside the array), `object`, `symbol`, `function` (written empty).
   */
  readonly type: string
}

/** The headers a dead-letter copy adds; the original's headers of these names are replaced. */
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  IdctxHeader.RejectReason,
  IdctxHeader.OriginalTopic,
  IdctxHeader.OriginalPartition,
  IdctxHeader.OriginalOffset,
  IdctxHeader.ReplacedValues,
])

const EMPTY = Buffer.alloc(0)

/** An own, enumerable property, even for a name such as `__proto__`. */
function define(headers: IHeaders, name: string, value: IHeaders[string]): void {
  Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true })
}

/** One header occurrence as kafkajs can encode it (bytes or text), noting what it had to change. */
function encodable(name: string, index: number, v: unknown, replaced: ReplacedHeaderValue[]): Buffer | string {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v
  // kafkajs writes anything that is not a Buffer as String(value): a plain Uint8Array would become
  // "1,2,3". A Buffer over the same bytes keeps them.
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  const type = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
  replaced.push({ name, index, type })
  return type === 'number' || type === 'boolean' || type === 'bigint' ? String(v) : EMPTY
}

/**
 * The dead-letter copy of a rejected record: the same key, value and headers (the original
 * `idctx` header included, for forensics) plus `idctx-reject-reason` and the original topic,
 * partition and offset. The producer stamps a new timestamp, so the topic's time retention counts
 * from the rejection.
 *
 * The copy is always encodable by kafkajs (whose producer throws on any header value that is not
 * a Buffer or a string), whatever the consumed record carried, so a dead-letter write never fails
 * for the record's own sake. Exact rule, per header name (own enumerable keys; `__proto__` too):
 * - every occurrence (see `headerOccurrences`) is kept, in order: a repeated header stays repeated
 *   with the same count, a single value stays single (an own property whose value is `undefined`
 *   is an absent header; the extra first element kafkajs puts before the value of a header named
 *   like an `Object.prototype` member, e.g. `toString`, is not an occurrence and is dropped);
 * - a Buffer or string is copied unchanged; a plain Uint8Array becomes a Buffer over its bytes;
 * - any other occurrence — `null` (kafkajs delivers a header sent with a null value as `null`,
 *   alone or inside the array of a repeated key), `undefined` inside an array, a number, a
 *   boolean, a bigint, a nested array, an object — is written as an empty value, except numbers,
 *   booleans and bigints, written as their decimal text; each such occurrence is listed in the
 *   added header `idctx-replaced-values` as JSON `[{"name","index","type"}]` (type `null`,
 *   `undefined`, `number`, `boolean`, `bigint`, `array`, `object`, …). So null-ness, count,
 *   order and scalar values are all kept; only the content of nested arrays and objects (which no
 *   Kafka client delivers: only code that edited `message.headers` can put them there) is lost.
 * - original headers named like the ones this copy adds (`idctx-reject-reason`,
 *   `idctx-original-*`, `idctx-replaced-values`) are replaced by the copy's own.
 *
 * A key or value that is a plain Uint8Array is copied as a Buffer over the same bytes.
 *
 * @example
 * ```ts
 * const record = deadLetterRecord({ topic, partition, message, reason: 'expired' })
 * deadLetterRecord({ topic, partition, message: { ...message, headers: { idctx: [token, null] } }, reason: 'duplicate' })
 *   .headers // { idctx: [token, <empty>], 'idctx-replaced-values': '[{"name":"idctx","index":1,"type":"null"}]', … }
 * ```
 */
export function deadLetterRecord(entry: DeadLetterEntry): Message {
  const headers: IHeaders = {}
  const replaced: ReplacedHeaderValue[] = []
  const original = entry.message.headers as unknown
  if (typeof original === 'object' && original !== null) {
    for (const name of Object.keys(original)) {
      if (DEAD_LETTER_HEADERS.has(name)) continue
      const v = (original as Record<string, unknown>)[name]
      if (v === undefined) continue
      const all = headerOccurrences(original as IHeaders, name)
      const copies = all.map((x, i) => encodable(name, i, x, replaced))
      // A header kafkajs delivered as [artifact, value] was one value: it stays one.
      const single = !Array.isArray(v) || (all.length < v.length && copies.length === 1)
      define(headers, name, single ? (copies[0] as Buffer | string) : copies)
    }
  }
  headers[IdctxHeader.RejectReason] = entry.reason
  headers[IdctxHeader.OriginalTopic] = entry.topic
  headers[IdctxHeader.OriginalPartition] = String(entry.partition)
  headers[IdctxHeader.OriginalOffset] = entry.message.offset
  if (replaced.length > 0) headers[IdctxHeader.ReplacedValues] = JSON.stringify(replaced)
  return { key: bytes(entry.message.key), value: bytes(entry.message.value), headers }
}

/** A key or value as kafkajs encodes it: a plain Uint8Array as a Buffer over its bytes. */
function bytes(v: Buffer | string | null | undefined): Buffer | string | null {
  if (v === undefined || v === null) return null
  if (!Buffer.isBuffer(v) && (v as unknown) instanceof Uint8Array) {
    const u = v as unknown as Uint8Array
    return Buffer.from(u.buffer, u.byteOffset, u.byteLength)
  }
  return v
}

/**
 * Writes the rejected records of one source topic to its dead-letter topic in one `send` and
 * waits for the broker's acknowledgement (the producer's acks setting, kafkajs default: all
 * in-sync replicas). A failure becomes a {@link DeadLetterError}.
 */
export async function writeDeadLetters(producer: KafkaSender, deadLetterTopic: string, entries: readonly DeadLetterEntry[]): Promise<void> {
  if (entries.length === 0) return
  try {
    await producer.send({ topic: deadLetterTopic, messages: entries.map(deadLetterRecord) })
  } catch (e) {
    throw new DeadLetterError(
      deadLetterTopic,
      entries.map((x) => `${x.topic}/${x.partition}/${x.message.offset}`),
      e,
    )
  }
}
