import { KafkaHeader, kafkaDeadLetterBytes, kafkaDeadLetterHeaders, kafkaDeadLetterTopic, type ReasonCode } from '@idctx/core'
import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { headerOccurrences } from './headers.js'

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
 * The default dead-letter topic of a source topic: `${topic}.idctx-dlq` (core's
 * `kafkaDeadLetterTopic`).
 *
 * @example
 * ```ts
 * defaultDeadLetterTopic('orders') // 'orders.idctx-dlq'
 * ```
 */
export const defaultDeadLetterTopic: (topic: string) => string = kafkaDeadLetterTopic

export type { ReplacedHeaderValue } from '@idctx/core'

/** The headers a dead-letter copy adds (always single values). */
const ADDED: ReadonlySet<string> = new Set([
  KafkaHeader.RejectReason,
  KafkaHeader.OriginalTopic,
  KafkaHeader.OriginalPartition,
  KafkaHeader.OriginalOffset,
  KafkaHeader.ReplacedValues,
])

/** An own, enumerable property, even for a name such as `__proto__`. */
function define(headers: IHeaders, name: string, value: IHeaders[string]): void {
  Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true })
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
  const original = entry.message.headers as unknown
  // A name kafkajs delivered as a single value (or as [artifact, value]) stays single.
  const single = new Set<string>()
  const names: [string, readonly unknown[]][] = []
  if (typeof original === 'object' && original !== null) {
    for (const name of Object.keys(original)) {
      const v = (original as Record<string, unknown>)[name]
      if (v === undefined) continue
      const all = headerOccurrences(original as IHeaders, name)
      if (!Array.isArray(v) || (all.length < v.length && all.length === 1)) single.add(name)
      names.push([name, all])
    }
  }
  const headers: IHeaders = {}
  for (const [name, values] of kafkaDeadLetterHeaders({ topic: entry.topic, partition: entry.partition, offset: entry.message.offset, reason: entry.reason, headers: names })) {
    define(headers, name, single.has(name) || ADDED.has(name) ? (values[0] as Buffer | string) : [...values])
  }
  return { key: kafkaDeadLetterBytes(entry.message.key), value: kafkaDeadLetterBytes(entry.message.value), headers }
}
