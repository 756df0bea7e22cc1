import type { IHeaders } from 'kafkajs'

/**
 * Names of the record headers idctx reads and writes. Kafka header keys are case-sensitive; only
 * these exact spellings are idctx's.
 *
 * @example
 * ```ts
 * const reason = headerString(message.headers, IdctxHeader.RejectReason) // in a DLQ consumer
 * ```
 */
export const IdctxHeader = {
  /** The compact JWS. Exactly one per record. */
  Token: 'idctx',
  /** Leaf index and Merkle audit path, on records of a multi-record call. */
  Proof: 'idctx-proof',
  /** Dead-letter records: the reason code the record was rejected with. */
  RejectReason: 'idctx-reject-reason',
  /** Dead-letter records: where the rejected record was consumed from. */
  OriginalTopic: 'idctx-original-topic',
  OriginalPartition: 'idctx-original-partition',
  OriginalOffset: 'idctx-original-offset',
} as const

/** One of the header names of {@link IdctxHeader}. */
export type IdctxHeader = (typeof IdctxHeader)[keyof typeof IdctxHeader]

/**
 * Record headers as kafkajs and the KafkaJS API of `@confluentinc/kafka-javascript` hand them
 * over: values are Buffers (or strings), a repeated key is an array, and a record without headers
 * may have `{}` or `undefined`.
 */
export type RecordHeaders = IHeaders | undefined | null

function own(headers: object, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(headers, name) ? (headers as Record<string, unknown>)[name] : undefined
}

function isValue(v: unknown): v is Buffer | string {
  return typeof v === 'string' || Buffer.isBuffer(v) || v instanceof Uint8Array
}

/**
 * Every value of one header, in order: none when absent, several when the key was repeated.
 * Values that are neither bytes nor text (undefined, null) are not values.
 *
 * @example
 * ```ts
 * headerValues(message.headers, 'idctx').length // 0 → missing, 2 → duplicate
 * ```
 */
export function headerValues(headers: RecordHeaders, name: string): (Buffer | string)[] {
  if (headers === undefined || headers === null) return []
  const v = own(headers, name)
  if (Array.isArray(v)) return v.filter(isValue).map(asBufferOrString)
  return isValue(v) ? [asBufferOrString(v)] : []
}

function asBufferOrString(v: Buffer | string | Uint8Array): Buffer | string {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

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

/**
 * Whether the headers carry an idctx token or proof (under its exact name, any value).
 *
 * @example
 * ```ts
 * hasIdctxHeaders({ idctx: token }) // true
 * ```
 */
export function hasIdctxHeaders(headers: RecordHeaders): boolean {
  if (headers === undefined || headers === null) return false
  return (
    Object.prototype.hasOwnProperty.call(headers, IdctxHeader.Token) ||
    Object.prototype.hasOwnProperty.call(headers, IdctxHeader.Proof)
  )
}

/**
 * A copy of the headers without `idctx` and `idctx-proof`, for forwarding a consumed record's
 * headers (`traceparent` and the rest) to a new record that the wrapped producer signs afresh.
 *
 * @example
 * ```ts
 * await producer.send({ topic: 'shipments', messages: [{ value, headers: withoutIdctxHeaders(message.headers) }] })
 * ```
 */
export function withoutIdctxHeaders(headers: RecordHeaders): IHeaders {
  const out: IHeaders = {}
  if (headers === undefined || headers === null) return out
  for (const name of Object.keys(headers)) {
    if (name === IdctxHeader.Token || name === IdctxHeader.Proof) continue
    const v = headers[name]
    if (v !== undefined) out[name] = v
  }
  return out
}
