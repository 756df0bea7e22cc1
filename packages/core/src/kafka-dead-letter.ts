import { KafkaHeader } from './kafka-headers.js'
import type { ReasonCode } from './reason-codes.js'

/**
 * The default dead-letter topic of a source topic: `${topic}.idctx-dlq`.
 *
 * @example
 * ```ts
 * kafkaDeadLetterTopic('orders') // 'orders.idctx-dlq'
 * ```
 */
export function kafkaDeadLetterTopic(topic: string): string {
  return `${topic}.idctx-dlq`
}

/**
 * What a dead-letter copy notes (header `idctx-replaced-values`) for one header occurrence it
 * could not copy as it was.
 *
 * @example
 * ```ts
 * const replaced: ReplacedHeaderValue[] = JSON.parse(headerString(dlqMessage.headers, KafkaHeader.ReplacedValues) ?? '[]')
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

/**
 * A rejected record's headers, client-independent: every occurrence of each name, in order.
 *
 * @example
 * ```ts
 * const source: KafkaDeadLetterSource = { topic: 'orders', partition: 0, offset: '7', reason: 'expired', headers: [['idctx', [token]]] }
 * const headers = kafkaDeadLetterHeaders(source)
 * ```
 */
export interface KafkaDeadLetterSource {
  readonly topic: string
  readonly partition: number
  /** The offset as a decimal string. */
  readonly offset: string
  readonly reason: ReasonCode
  /** The original headers: one entry per name, with every occurrence of it in order. */
  readonly headers: Iterable<readonly [name: string, occurrences: readonly unknown[]]>
}

/**
 * One header of a dead-letter copy: its name and every value it is written with, in order.
 *
 * @example
 * ```ts
 * const copy: KafkaDeadLetterHeader[] = kafkaDeadLetterHeaders(source)
 * for (const [name, values] of copy) {
 *   for (const v of values) out.set(Buffer.from(name), Buffer.from(v)) // one entry per occurrence
 * }
 * ```
 */
export type KafkaDeadLetterHeader = readonly [name: string, values: readonly (Buffer | string)[]]

/** The headers a dead-letter copy adds; the original's headers of these names are replaced. */
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  KafkaHeader.RejectReason,
  KafkaHeader.OriginalTopic,
  KafkaHeader.OriginalPartition,
  KafkaHeader.OriginalOffset,
  KafkaHeader.ReplacedValues,
])

const EMPTY = Buffer.alloc(0)

/** One header occurrence as every Kafka client can encode it (bytes or text), noting what changed. */
function encodable(name: string, index: number, v: unknown, replaced: ReplacedHeaderValue[]): Buffer | string {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v
  // A client may write anything that is not a Buffer as String(value): a plain Uint8Array would
  // become "1,2,3". A Buffer over the same bytes keeps them.
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  const type = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
  replaced.push({ name, index, type })
  return type === 'number' || type === 'boolean' || type === 'bigint' ? String(v) : EMPTY
}

/**
 * The headers of the dead-letter copy of a rejected Kafka record, the rule every Kafka adapter
 * shares: every original header (the `idctx` carriers included, for forensics) with every
 * occurrence in order, then `idctx-reject-reason` and the original topic, partition and offset.
 *
 * - a Buffer or string is copied unchanged; a plain Uint8Array becomes a Buffer over its bytes;
 * - any other occurrence (`null`, `undefined` inside an array, a number, a boolean, a bigint, a
 *   nested array, an object) is written as an empty value, except numbers, booleans and bigints,
 *   written as their decimal text; each such occurrence is listed in the added header
 *   `idctx-replaced-values` as JSON `[{"name","index","type"}]`;
 * - original headers named like the ones the copy adds are replaced by the copy's own;
 * - a name without any occurrence is left out.
 *
 * @example
 * ```ts
 * kafkaDeadLetterHeaders({ topic: 'orders', partition: 0, offset: '7', reason: 'duplicate',
 *   headers: [['idctx', [token, null]]] })
 * // [['idctx', [token, <empty>]], ['idctx-reject-reason', ['duplicate']], …,
 * //  ['idctx-replaced-values', ['[{"name":"idctx","index":1,"type":"null"}]']]]
 * ```
 */
export function kafkaDeadLetterHeaders(source: KafkaDeadLetterSource): KafkaDeadLetterHeader[] {
  const out: KafkaDeadLetterHeader[] = []
  const replaced: ReplacedHeaderValue[] = []
  for (const [name, occurrences] of source.headers) {
    if (DEAD_LETTER_HEADERS.has(name) || occurrences.length === 0) continue
    out.push([name, occurrences.map((v, i) => encodable(name, i, v, replaced))])
  }
  out.push([KafkaHeader.RejectReason, [source.reason]])
  out.push([KafkaHeader.OriginalTopic, [source.topic]])
  out.push([KafkaHeader.OriginalPartition, [String(source.partition)]])
  out.push([KafkaHeader.OriginalOffset, [source.offset]])
  if (replaced.length > 0) out.push([KafkaHeader.ReplacedValues, [JSON.stringify(replaced)]])
  return out
}

/**
 * A key or value as every Kafka client encodes it: a plain Uint8Array as a Buffer over its
 * bytes, `undefined` as `null`.
 *
 * @example
 * ```ts
 * kafkaDeadLetterBytes(new Uint8Array([1])) // <Buffer 01>
 * ```
 */
export function kafkaDeadLetterBytes(v: Buffer | Uint8Array | string | null | undefined): Buffer | string | null {
  if (v === undefined || v === null) return null
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}
