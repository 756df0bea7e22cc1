import { isKafkaHeaderValue, KAFKA_CARRIER_HEADERS, KafkaHeader, kafkaHeaderBytes } from '@idctx/core'
import type { IHeaders } from 'kafkajs'

/**
 * Names of the record headers idctx reads and writes (core's `KafkaHeader`, shared with every
 * Kafka adapter). Kafka header keys are case-sensitive; only these exact spellings are idctx's.
 *
 * @example
 * ```ts
 * const reason = headerString(message.headers, IdctxHeader.RejectReason) // in a DLQ consumer
 * ```
 */
export const IdctxHeader = KafkaHeader

/**
 * One of the header names of {@link IdctxHeader}.
 *
 * @example
 * ```ts
 * const name: IdctxHeader = 'idctx-reject-reason'
 * const reason = headerString(message.headers, name) // e.g. 'expired', on a dead-letter record
 * ```
 */
export type IdctxHeader = KafkaHeader

/**
 * Record headers as kafkajs and the KafkaJS API of `@confluentinc/kafka-javascript` hand them
 * over: values are Buffers (or strings), a repeated key is an array, and a record without headers
 * may have `{}` or `undefined`.
 *
 * @example
 * ```ts
 * const headers: RecordHeaders = { idctx: Buffer.from(token), traceparent: '00-…-01', tags: ['a', 'b'] }
 * headerValues(headers, 'tags') // ['a', 'b']
 * hasIdctxHeaders(undefined)     // false
 * ```
 */
export type RecordHeaders = IHeaders | undefined | null

function own(headers: object, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(headers, name) ? (headers as Record<string, unknown>)[name] : undefined
}

/** Whether a header value is bytes or text (what kafkajs can encode as a header value). */
export const isHeaderValue: (v: unknown) => v is Buffer | string | Uint8Array = isKafkaHeaderValue

/**
 * Every occurrence of one header, in order, whatever its value: none when the header is absent
 * (or its own property is `undefined`), one per element when the key was repeated (kafkajs
 * delivers a repeated key as an array, and a value sent as null as `null`: `[token, null]` is two
 * occurrences). This is what idctx counts for `missing` / `duplicate`; use {@link headerValues}
 * for the values that are bytes or text.
 *
 * @example
 * ```ts
 * headerOccurrences({ idctx: [Buffer.from('t'), null] }, 'idctx').length // 2 → duplicate
 * ```
 */
export function headerOccurrences(headers: RecordHeaders, name: string): readonly unknown[] {
  if (headers === undefined || headers === null || typeof headers !== 'object') return []
  const v = own(headers, name)
  if (v === undefined) return []
  if (!Array.isArray(v)) return [v]
  return v.length > 0 && isDecodingArtifact(name, v[0]) ? v.slice(1) : v
}

/**
 * kafkajs 2.2.4 builds consumed headers with `obj[key] === undefined ? value : [obj[key], value]`
 * on a plain object, so a header named like an `Object.prototype` member (`toString`,
 * `constructor`, `__proto__`, …) arrives as an array whose first element is that member (a
 * function, or `Object.prototype`). No decoder yields such a value: it is not an occurrence.
 */
function isDecodingArtifact(name: string, first: unknown): boolean {
  if (first === null || (typeof first !== 'object' && typeof first !== 'function')) return false
  return first === ({} as Record<string, unknown>)[name]
}

/**
 * Every value of one header that is bytes or text, in order: none when absent, several when the
 * key was repeated. Occurrences that are neither bytes nor text (null, undefined, numbers…) are
 * left out, so this is not the count of occurrences: see {@link headerOccurrences} for that.
 *
 * @example
 * ```ts
 * headerValues(message.headers, 'idctx').length // 0 → missing, 2 → duplicate
 * ```
 */
export function headerValues(headers: RecordHeaders, name: string): (Buffer | string)[] {
  if (headers === undefined || headers === null || typeof headers !== 'object') return []
  const v = own(headers, name)
  if (Array.isArray(v)) return v.filter(isHeaderValue).map(asBufferOrString)
  return isHeaderValue(v) ? [asBufferOrString(v)] : []
}

/** A Buffer over the same bytes for a plain Uint8Array; Buffers and strings as they are. */
export const asBufferOrString: (v: Buffer | string | Uint8Array) => Buffer | string = kafkaHeaderBytes

/**
 * The first value of a header as UTF-8 text, or undefined when absent.
 *
 * @example
 * ```ts
 * headerString(dlqMessage.headers, IdctxHeader.RejectReason) // 'bad_signature'
 * ```
 */
export function headerString(headers: RecordHeaders, name: string): string | undefined {
  const first = headerValues(headers, name)[0]
  if (first === undefined) return undefined
  return typeof first === 'string' ? first : first.toString('utf8')
}

const CARRIERS = KAFKA_CARRIER_HEADERS

/**
 * Whether the headers carry an idctx token, proof or context record (under its exact name, any
 * value).
 *
 * @example
 * ```ts
 * hasIdctxHeaders({ idctx: token }) // true
 * hasIdctxHeaders({ 'idctx-ctx': record }) // true
 * ```
 */
export function hasIdctxHeaders(headers: RecordHeaders): boolean {
  if (headers === undefined || headers === null) return false
  return CARRIERS.some((name) => Object.prototype.hasOwnProperty.call(headers, name))
}

/**
 * A copy of the headers without `idctx`, `idctx-proof` and `idctx-ctx`, for forwarding a consumed record's
 * headers (`traceparent` and the rest) to a new record that the wrapped producer signs afresh.
 * The copy is sendable by kafkajs: every value that is bytes or text is kept, in order (a plain
 * Uint8Array as a Buffer over its bytes); values kafkajs cannot send (`null`, `undefined`,
 * numbers, nested arrays…) are left out, and so is a header left without any value. The extra
 * first element kafkajs puts before the value of a header named like an `Object.prototype` member
 * (`toString`, `constructor`, …) is not a value: `{ toString: [fn, v] }` is forwarded as `v`.
 *
 * @example
 * ```ts
 * await producer.send({ topic: 'shipments', messages: [{ value, headers: withoutIdctxHeaders(message.headers) }] })
 * ```
 */
export function withoutIdctxHeaders(headers: RecordHeaders): IHeaders {
  const out: IHeaders = {}
  if (headers === undefined || headers === null || typeof headers !== 'object') return out
  for (const name of Object.keys(headers)) {
    if (CARRIERS.includes(name)) continue
    const v: unknown = headers[name]
    const all = headerOccurrences(headers, name)
    const values = all.filter(isHeaderValue).map(asBufferOrString)
    if (values.length === 0) continue
    const single = !Array.isArray(v) || (all.length < v.length && values.length === 1)
    Object.defineProperty(out, name, { value: single ? values[0] : values, enumerable: true, writable: true, configurable: true })
  }
  return out
}
