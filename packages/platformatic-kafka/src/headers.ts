import { isKafkaHeaderValue, KAFKA_CARRIER_HEADERS, KafkaHeader } from '@idctx/core'

/**
 * Names of the record headers idctx reads and writes: core's `KafkaHeader`, the same names and
 * values as `@idctx/kafkajs` writes (records signed by either wrapper verify on either consumer).
 *
 * @example
 * ```ts
 * headerString(message.headers, IdctxHeader.RejectReason) // in a dead-letter consumer
 * ```
 */
export const IdctxHeader = KafkaHeader

/**
 * One of the header names of {@link IdctxHeader}.
 *
 * @example
 * ```ts
 * const name: IdctxHeader = 'idctx-reject-reason'
 * ```
 */
export type IdctxHeader = KafkaHeader

/**
 * Headers as `@platformatic/kafka` hands them over or takes them: a `Map` (keys and values are
 * Buffers with the default deserializers, strings with `stringDeserializers`) or, when producing,
 * a plain object.
 *
 * @example
 * ```ts
 * const headers: RecordHeaders = message.headers // a Map of Buffers with the default deserializers
 * ```
 */
export type RecordHeaders = ReadonlyMap<unknown, unknown> | Readonly<Record<string, unknown>> | undefined | null

/** A header name as text, whatever the serde made of it (Buffer, Uint8Array or string). */
export function headerName(key: unknown): string | undefined {
  if (typeof key === 'string') return key
  if (key instanceof Uint8Array) return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8')
  return undefined
}

/** Every `[name, value]` entry of the headers, in order (a Map may hold one name several times under distinct Buffer keys). */
export function headerEntries(headers: RecordHeaders): [string, unknown][] {
  const out: [string, unknown][] = []
  if (headers === undefined || headers === null || typeof headers !== 'object') return out
  if (headers instanceof Map) {
    for (const [k, v] of headers) {
      const name = headerName(k)
      if (name !== undefined) out.push([name, v])
    }
    return out
  }
  for (const name of Object.keys(headers)) out.push([name, (headers as Record<string, unknown>)[name]])
  return out
}

/**
 * Every occurrence of one header, in order, whatever its value: with the default (Buffer)
 * deserializers a repeated header arrives as several Map entries under distinct Buffer keys, and
 * each counts (two `idctx` are `duplicate`).
 *
 * @example
 * ```ts
 * headerOccurrences(message.headers, 'idctx').length // 0 → missing, 2 → duplicate
 * ```
 */
export function headerOccurrences(headers: RecordHeaders, name: string): unknown[] {
  return headerEntries(headers)
    .filter(([n]) => n === name)
    .map(([, v]) => v)
}

/**
 * The first value of a header that is bytes or text, as UTF-8 text; undefined when absent.
 *
 * @example
 * ```ts
 * headerString(dlqMessage.headers, IdctxHeader.RejectReason) // 'bad_signature'
 * ```
 */
export function headerString(headers: RecordHeaders, name: string): string | undefined {
  for (const v of headerOccurrences(headers, name)) {
    if (typeof v === 'string') return v
    if (isKafkaHeaderValue(v)) return Buffer.from(v).toString('utf8')
  }
  return undefined
}

/**
 * Whether the headers carry an idctx token, proof or context record (under its exact name).
 *
 * @example
 * ```ts
 * hasIdctxHeaders(new Map([[Buffer.from('idctx'), Buffer.from(token)]])) // true
 * ```
 */
export function hasIdctxHeaders(headers: RecordHeaders): boolean {
  return headerEntries(headers).some(([n]) => KAFKA_CARRIER_HEADERS.includes(n))
}

/**
 * A copy of the headers without `idctx`, `idctx-proof` and `idctx-ctx` (same Map or object
 * shape, same keys), to forward a consumed record's other headers to a record the wrapped
 * producer signs afresh.
 *
 * @example
 * ```ts
 * await producer.send({ messages: [{ topic: 'shipments', value, headers: withoutIdctxHeaders(message.headers) }] })
 * ```
 */
export function withoutIdctxHeaders<H extends RecordHeaders>(headers: H): H {
  if (headers === undefined || headers === null || typeof headers !== 'object') return headers
  if (headers instanceof Map) {
    const out = new Map<unknown, unknown>()
    for (const [k, v] of headers) if (!KAFKA_CARRIER_HEADERS.includes(headerName(k) ?? '')) out.set(k, v)
    return out as unknown as H
  }
  const out: Record<string, unknown> = {}
  for (const name of Object.keys(headers)) {
    if (KAFKA_CARRIER_HEADERS.includes(name)) continue
    Object.defineProperty(out, name, { value: (headers as Record<string, unknown>)[name], enumerable: true, writable: true, configurable: true })
  }
  return out as H
}
