import { randomUUID } from 'node:crypto'
import { kafkaCarrierValues, KafkaHeader } from './kafka-headers.js'
import { kafkaDestination, kafkaLeaf, type KafkaBytes } from './leaf.js'
import type { Requirements } from './policies.js'
import type { ExpectedTenant, Verifier, VerifyInput, VerifyResult } from './verifier.js'

/**
 * A consumed Kafka record as the shared record check reads it, whatever client delivered it:
 * the coordinates, the exact key and value bytes, and every occurrence of a header in order
 * (none when absent; a repeated header gives several).
 *
 * @example
 * ```ts
 * const view = (r: MyRecord): KafkaRecordView => ({
 *   topic: r.topic, partition: r.partition, offset: String(r.offset), key: r.key, value: r.value,
 *   occurrences: (name) => r.headers.filter(([k]) => k === name).map(([, v]) => v),
 * })
 * ```
 */
export interface KafkaRecordView {
  readonly topic: string
  readonly partition: number
  /** The offset as a decimal string. */
  readonly offset: string
  /** The key bytes as delivered (a string is taken as its UTF-8 bytes). */
  readonly key: KafkaBytes
  /** The value bytes as delivered. */
  readonly value: KafkaBytes
  /** Every occurrence of the header `name`, whatever its value (null included). */
  occurrences(name: string): readonly unknown[]
}

/**
 * What {@link createKafkaRecordCheck} needs of a consumer's options; `R` is the adapter's record.
 *
 * @example
 * ```ts
 * const options: KafkaRecordCheckOptions<MyRecord> = { verifier, tenant: (r) => r.topic.split('.')[0] ?? '', requirements: { orders: { scopes: ['orders:write'] } } }
 * ```
 */
export interface KafkaRecordCheckOptions<R> {
  readonly verifier: Verifier
  /** The expected tenant, or a function of the record (a throw propagates: infrastructure). */
  readonly tenant: ExpectedTenant | ((record: R) => ExpectedTenant | Promise<ExpectedTenant>)
  /** A tenant read from the record; a throw rejects the record as `tenant_mismatch`. */
  readonly payloadTenant?: ((record: R) => string | undefined) | undefined
  /**
   * Grace after `exp`, in seconds, for records re-published from a dead-letter topic (with an
   * `idctx-redriven-from` header); default 0. Capped by the verifier's `maxExpiryGraceSeconds`.
   */
  readonly redriveGraceSeconds?: number | undefined
  /** Per-topic requirements. */
  readonly requirements?: Readonly<Record<string, Requirements>> | ((topic: string) => Requirements | undefined) | undefined
}

/**
 * The per-record and per-batch checks of {@link createKafkaRecordCheck}.
 *
 * @example
 * ```ts
 * const records: KafkaRecordCheck<MyRecord> = createKafkaRecordCheck(options, view)
 * const results = await records.checkBatch(fetched) // one replay-store round trip
 * ```
 */
export interface KafkaRecordCheck<R> {
  /** Verifies one record; throws only for infrastructure failures (stores, resolvers). */
  check(record: R): Promise<VerifyResult>
  /**
   * Verifies records of one fetched batch with one replay-store round trip
   * (`Verifier.verifyMany`); results in record order.
   */
  checkBatch(records: readonly R[]): Promise<VerifyResult[]>
}

/**
 * `topic/partition/offset`: a Kafka record's delivery coordinates (a redelivery at the same
 * coordinates is not a replay).
 *
 * @example
 * ```ts
 * kafkaCoordinates('orders', 0, '42') // 'orders/0/42'
 * ```
 */
export function kafkaCoordinates(topic: string, partition: number, offset: string): string {
  return `${topic}/${partition}/${offset}`
}

/**
 * The verification of consumed Kafka records that every Kafka adapter shares: every occurrence of
 * `idctx` (none → `missing`, two → `duplicate`, `[token, null]` is two), of `idctx-proof` (two
 * fail the binding) and of `idctx-ctx`, the leaf recomputed from the topic, key and value
 * actually delivered, destination `kafka:<topic>`, the expected and payload tenants, per-topic
 * requirements and the coordinates for the replay store. `view` reads a client's record.
 *
 * @example
 * ```ts
 * const { check } = createKafkaRecordCheck({ verifier, tenant: 'acme' }, (r: MyRecord) => ({
 *   topic: r.topic, partition: r.partition, offset: String(r.offset), key: r.key, value: r.value,
 *   occurrences: (name) => r.headers.filter(([k]) => k === name).map(([, v]) => v),
 * }))
 * const result = await check(record) // { ok: true, context } or { ok: false, error }
 * ```
 */
export function createKafkaRecordCheck<R>(options: KafkaRecordCheckOptions<R>, view: (record: R) => KafkaRecordView): KafkaRecordCheck<R> {
  const { verifier, tenant, payloadTenant } = options
  const requirementsOf = requirementsLookup(options.requirements)
  const redriveGrace = options.redriveGraceSeconds ?? 0
  // A tenant that no token can carry: a record whose payload tenant cannot be read fails at the
  // tenant step (after the signature and binding checks), never passes it.
  const unreadableTenant = `\u0000unreadable-payload-tenant:${randomUUID()}`
  const expected: (record: R) => ExpectedTenant | Promise<ExpectedTenant> = typeof tenant === 'function' ? tenant : () => tenant

  const inputOf = (record: R): VerifyInput | Promise<VerifyInput> => {
    const v = view(record)
    const proofs = kafkaCarrierValues(v.occurrences(KafkaHeader.Proof))
    let payload: string | undefined
    if (payloadTenant !== undefined) {
      try {
        payload = payloadTenant(record)
      } catch {
        payload = unreadableTenant
      }
    }
    const build = (expectedTenant: ExpectedTenant): VerifyInput => ({
      tokens: kafkaCarrierValues(v.occurrences(KafkaHeader.Token)),
      // Two proofs (whatever their values) cannot both be the record's: an empty proof never
      // decodes, so the binding fails.
      proof: proofs.length > 1 ? '' : proofs[0],
      contextRecord: kafkaCarrierValues(v.occurrences(KafkaHeader.Context)),
      destination: kafkaDestination(v.topic),
      leaf: () => kafkaLeaf(v.topic, v.key, v.value),
      expectedTenant,
      payloadTenant: payload,
      coordinates: kafkaCoordinates(v.topic, v.partition, v.offset),
      requirements: requirementsOf(v.topic),
      traceparent: firstText(v.occurrences('traceparent')),
      ...(redriveGrace > 0 && v.occurrences(KafkaHeader.RedrivenFrom).length > 0 ? { expiryGraceSeconds: redriveGrace } : {}),
    })
    // Wait only for a tenant resolver that is asynchronous: an extra await per record is measurable.
    const tenantOfRecord = expected(record)
    return isThenable(tenantOfRecord) ? Promise.resolve(tenantOfRecord).then(build) : build(tenantOfRecord)
  }

  const check = (record: R): Promise<VerifyResult> => {
    const input = inputOf(record)
    return isThenable(input) ? Promise.resolve(input).then((i) => verifier.verify(i)) : verifier.verify(input)
  }
  const checkBatch = async (records: readonly R[]): Promise<VerifyResult[]> => {
    const inputs = await Promise.all(records.map(inputOf))
    // A verifier of another make may lack verifyMany: the same checks, one message at a time.
    if (typeof verifier.verifyMany !== 'function') {
      const out: VerifyResult[] = []
      for (const input of inputs) out.push(await verifier.verify(input))
      return out
    }
    return verifier.verifyMany(inputs)
  }
  return { check, checkBatch }
}

function firstText(occurrences: readonly unknown[]): string | undefined {
  for (const v of occurrences) {
    if (typeof v === 'string') return v
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8')
  }
  return undefined
}

function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function'
}

function requirementsLookup(r: KafkaRecordCheckOptions<unknown>['requirements']): (topic: string) => Requirements | undefined {
  if (r === undefined) return () => undefined
  if (typeof r === 'function') return r
  return (topic) => (Object.prototype.hasOwnProperty.call(r, topic) ? r[topic] : undefined)
}
