/**
 * Names of the Kafka record headers idctx reads and writes, shared by every Kafka adapter
 * (`@idctx/kafkajs` re-exports it as `IdctxHeader`). Kafka header keys are case-sensitive; only
 * these exact spellings are idctx's.
 *
 * @example
 * ```ts
 * KafkaHeader.Token // 'idctx'
 * KafkaHeader.RejectReason // 'idctx-reject-reason', on dead-letter records
 * ```
 */
export const KafkaHeader = {
  /** The compact JWS. Exactly one per record. */
  Token: 'idctx',
  /**
   * Leaf index and Merkle audit path: on records of a multi-record call, and on every record
   * signed with the batch profile.
   */
  Proof: 'idctx-proof',
  /**
   * The record's context record (design, "Batch profile"): the RFC 8785 JSON of its identity
   * `{sub, tid, txn, pty?, roles?, scope?, act?, trc?, n}`, on every record whose `idctx` token is
   * a batch-profile token (`idctx-batch+jwt`) shared with other calls of the same event-loop
   * turn. Exactly one per such record; never on a single-profile record.
   */
  Context: 'idctx-ctx',
  /** Dead-letter records: the reason code the record was rejected with. */
  RejectReason: 'idctx-reject-reason',
  /** Dead-letter records: where the rejected record was consumed from. */
  OriginalTopic: 'idctx-original-topic',
  OriginalPartition: 'idctx-original-partition',
  OriginalOffset: 'idctx-original-offset',
  /**
   * Dead-letter records, only when some original header value was not bytes or text: a JSON
   * array of `{ "name", "index", "type" }`, one per such occurrence.
   */
  ReplacedValues: 'idctx-replaced-values',
  /**
   * A record re-published from a dead-letter topic (`idctx dlq redrive`): the DLQ coordinates it
   * came from (`dlq/partition/offset`). Unsigned: it only asks a consumer with
   * `redriveGraceSeconds` for that bounded grace after `exp`.
   */
  RedrivenFrom: 'idctx-redriven-from',
} as const

/**
 * One of the header names of {@link KafkaHeader}.
 *
 * @example
 * ```ts
 * const name: KafkaHeader = 'idctx-reject-reason'
 * ```
 */
export type KafkaHeader = (typeof KafkaHeader)[keyof typeof KafkaHeader]

/**
 * The carrier headers a wrapped Kafka producer writes (token, proof, context record) and refuses
 * to find on a record it signs.
 *
 * @example
 * ```ts
 * KAFKA_CARRIER_HEADERS.includes(name) // true for 'idctx', 'idctx-proof', 'idctx-ctx'
 * ```
 */
export const KAFKA_CARRIER_HEADERS: readonly string[] = [KafkaHeader.Token, KafkaHeader.Proof, KafkaHeader.Context]

/**
 * Whether a header value is bytes or text (what a Kafka client can encode as a header value).
 *
 * @example
 * ```ts
 * isKafkaHeaderValue(Buffer.from('x')) // true
 * isKafkaHeaderValue(null) // false
 * ```
 */
export function isKafkaHeaderValue(v: unknown): v is Buffer | string | Uint8Array {
  return typeof v === 'string' || Buffer.isBuffer(v) || v instanceof Uint8Array
}

/**
 * A Buffer over the same bytes for a plain Uint8Array; Buffers and strings as they are.
 *
 * @example
 * ```ts
 * kafkaHeaderBytes(new Uint8Array([1, 2])) // <Buffer 01 02>
 * ```
 */
export function kafkaHeaderBytes(v: Buffer | string | Uint8Array): Buffer | string {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

const EMPTY = Buffer.alloc(0)

/**
 * The values to verify for every occurrence of one carrier header, whatever its value, so that
 * `[token, null]` is two (`duplicate`), never one. An occurrence that is not bytes or text (a
 * null value, or anything a client or an interceptor put there) becomes an empty value: alone, an
 * empty token is `missing` and an empty proof fails the binding. This is the rule every Kafka
 * adapter applies, so a record gets the same verdict whatever client consumed it.
 *
 * @example
 * ```ts
 * kafkaCarrierValues([Buffer.from(token), null]).length // 2 → duplicate
 * ```
 */
export function kafkaCarrierValues(occurrences: readonly unknown[]): (Buffer | string)[] {
  return occurrences.map((v) => (isKafkaHeaderValue(v) ? kafkaHeaderBytes(v) : EMPTY))
}
