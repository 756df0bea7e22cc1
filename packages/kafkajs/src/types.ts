import type {
  AuditedRecord,
  ContextStore,
  ExpectedTenant,
  IdctxObserver,
  Requirements,
  VerifiedRecord,
  Verifier,
} from '@idctx/core'
import type {
  Batch,
  Consumer,
  ConsumerRunConfig,
  EachBatchPayload,
  EachMessagePayload,
  KafkaMessage,
} from 'kafkajs'
import type { KafkaSender } from './producer.js'

/**
 * What the consumer does with a record that fails verification:
 * - `dead-letter` (default): write it to the dead-letter topic, then let the offset move on.
 * - `skip`: report it to the observer and let the offset move on.
 * - `fail`: throw {@link RecordRejectedError}; the partition stops at the record (by design).
 * - `audit`: run the handler anyway, with `identity: undefined` and a `violation` (rollouts).
 *
 * @example
 * ```ts
 * const policy: RejectionPolicy = 'audit' // during a roll-out: handle everything, log violations
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), { verifier, tenant: 'acme', policy })
 * ```
 */
export type RejectionPolicy = 'dead-letter' | 'skip' | 'fail' | 'audit'

/**
 * A consumed record and where it came from.
 *
 * @example
 * ```ts
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), {
 *   verifier,
 *   tenant: ({ topic }: ConsumedRecord) => topic.split('.')[0]!, // 'acme.orders' → 'acme'
 *   payloadTenant: ({ message }: ConsumedRecord) => JSON.parse(String(message.value)).tenant,
 *   deadLetter: { producer: dlq },
 * })
 * ```
 */
export interface ConsumedRecord {
  /** The topic the record was consumed from. */
  readonly topic: string
  /** Its partition. */
  readonly partition: number
  /** The kafkajs message as fetched (headers still holding the idctx carriers). */
  readonly message: KafkaMessage
}

/**
 * The tenant records must belong to, derived independently of the token: one tenant, a list,
 * `{ any: true }` (accept every tenant: only for consumers that serve all tenants), or a function
 * of the record (e.g. from the topic name). A throwing or rejecting function is an infrastructure
 * failure: the error propagates and kafkajs retries the record.
 *
 * @example
 * ```ts
 * const fixed: TenantOption = 'acme'
 * const perTopic: TenantOption = ({ topic }) => topic.split('.')[0]! // 'acme.orders' → 'acme'
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), { verifier, tenant: perTopic, deadLetter })
 * ```
 */
export type TenantOption =
  | ExpectedTenant
  | ((record: ConsumedRecord) => ExpectedTenant | Promise<ExpectedTenant>)

/**
 * Where and how rejected records are dead-lettered.
 *
 * @example
 * ```ts
 * const dlq = kafka.producer() // a plain producer, not a wrapped one
 * await dlq.connect()
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), {
 *   verifier,
 *   tenant: 'acme',
 *   deadLetter: { producer: dlq, topic: (topic) => `dlq.${topic}` }, // default `${topic}.idctx-dlq`
 * })
 * ```
 */
export interface DeadLetterOptions {
  /**
   * A plain, connected kafkajs producer (not one from {@link wrapProducer}: dead-letter records
   * keep their original `idctx` header and must not be re-signed).
   */
  producer: KafkaSender
  /** The dead-letter topic of a source topic (default `${topic}.idctx-dlq`). */
  topic?: (topic: string) => string
}

/**
 * Options of {@link wrapConsumer}. Checked once, at construction: a missing or wrong option, and
 * any key not listed here (a misspelt one, or one of the verifier's such as `replay`), throws a
 * `ConfigError` (`ERR_IDCTX_CONFIG`) whose issues name the path and the fix.
 *
 * @example
 * ```ts
 * const options: WrapConsumerOptions = {
 *   verifier,
 *   tenant: { any: true },
 *   payloadTenant: ({ message }) => JSON.parse(String(message.value)).tenant,
 *   requirements: { orders: { scopes: ['orders:write'] } },
 *   policy: 'dead-letter',
 *   deadLetter: { producer: dlq },
 *   observer: createLogObserver(),
 * }
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), options)
 * ```
 */
export interface WrapConsumerOptions<P extends RejectionPolicy = RejectionPolicy> {
  /** Verifies tokens (`createVerifier` of `@idctx/core`): keys, audience, ACL, stores. */
  verifier: Verifier
  /** The expected tenant (required: use `{ any: true }` to accept every tenant explicitly). */
  tenant: TenantOption
  /**
   * Reads a tenant id from the record itself (e.g. a field of the JSON value); when it returns a
   * string, it must equal the token's `tid`. Return undefined when the record has none. If it
   * throws, the record is rejected as `tenant_mismatch` (its tenant cannot be established).
   */
  payloadTenant?: (record: ConsumedRecord) => string | undefined
  /** Scopes/roles required per topic, on top of the verifier's own requirements. */
  requirements?: Readonly<Record<string, Requirements>> | ((topic: string) => Requirements | undefined)
  /** What happens to rejected records (default `dead-letter`). */
  policy?: P
  /** Required for the `dead-letter` policy (keys `producer`, `topic`; any other is refused). */
  deadLetter?: DeadLetterOptions
  /**
   * The store the handler's context is set in (default: core's `defaultContextStore`); it needs
   * `run`, `current` and `exit`. Only the handler of a verified record (and `runInContext` for one)
   * runs inside a context; everything else the wrapper runs is under `exit` (no context).
   */
  contextStore?: ContextStore
  /** Receives `onDisposition` for every rejected record (the verifier reports `onRejected`). */
  observer?: IdctxObserver
  /**
   * How `eachMessage` verifies (`eachBatch` always verifies the fetched batch at once):
   * - `'batch'` (default with kafkajs's own consumer, unless an instrumentation wraps its `run`):
   *   the wrapper runs kafkajs's `eachMessage`
   *   loop itself as an `eachBatch`, verifying a fetched batch's records together before the
   *   first is handled — one replay-store round trip per batch (`Verifier.verifyMany`), which is
   *   what a shared replay store on Redis needs. Handlers, order, offsets, commits, `pause` and
   *   `heartbeat` are as with kafkajs's `eachMessage`; a record is verified when its batch
   *   arrives.
   * - `'record'` (default with other clients, such as the Confluent client's KafkaJS API, and
   *   when an instrumentation wraps `consumer.run` — OpenTelemetry's instrumentation-kafkajs,
   *   whose per-message `process` spans need kafkajs's own `eachMessage`): each record is
   *   verified just before its handler, in kafkajs's `eachMessage`.
   */
  eachMessageVerify?: 'batch' | 'record'
  /**
   * Grace after `exp`, in seconds, for records re-published from a dead-letter topic (those with
   * an `idctx-redriven-from` header, see `idctx dlq redrive`), so that records that expired while
   * the consumer was down or could not fetch the producer's key can be handled once they verify.
   * Default 0 (none). Capped by the verifier's `maxExpiryGraceSeconds` (set that too), which
   * also makes its replay store remember every message until `exp` + that grace, so a copy is
   * still `replayed`. The header is not signed: anyone who can write to the topic can ask for the
   * grace, which is why it is bounded and why it needs a replay store.
   */
  redriveGraceSeconds?: number
}

export type { Violation, VerifiedRecord, AuditedRecord } from '@idctx/core'

/**
 * What the handler learns about a record: verified, or (audit policy only) a violation.
 *
 * @example
 * ```ts
 * function tenantOf(verdict: RecordVerdict<'audit'>): string | undefined {
 *   return verdict.identity?.tid // undefined for an audited violation
 * }
 * ```
 */
export type RecordVerdict<P extends RejectionPolicy> =
  | VerifiedRecord
  | ('audit' extends P ? AuditedRecord : never)

/**
 * The kafkajs `eachMessage` payload plus the record's verdict.
 *
 * @example
 * ```ts
 * const eachMessage = async ({ topic, partition, message, identity }: IdctxEachMessagePayload<'dead-letter'>) => {
 *   await bill(identity.tid, identity.sub, message.value)
 * }
 * await consumer.run({ eachMessage })
 * ```
 */
export type IdctxEachMessagePayload<P extends RejectionPolicy = RejectionPolicy> = EachMessagePayload &
  RecordVerdict<P>

/**
 * A message of the batch view: the kafkajs message plus its verdict.
 *
 * @example
 * ```ts
 * await consumer.run({
 *   eachBatch: async ({ batch, runInContext, resolveOffset }) => {
 *     for (const m of batch.messages) { // IdctxBatchMessage: a KafkaMessage with its verdict
 *       await runInContext(m, () => forward(m.identity.tid, m.value))
 *       resolveOffset(m.offset)
 *     }
 *   },
 * })
 * ```
 */
export type IdctxBatchMessage<P extends RejectionPolicy = RejectionPolicy> = KafkaMessage & RecordVerdict<P>

/**
 * The batch the wrapped `eachBatch` sees: `messages` leaves out the records that were rejected
 * (already dead-lettered or skipped); `topic`, `partition`, `highWatermark`, `firstOffset()`,
 * `lastOffset()`, `offsetLag()` and `offsetLagLow()` describe the whole fetched batch, so
 * `resolveOffset(batch.lastOffset())` still covers rejected records at its end.
 *
 * @example
 * ```ts
 * await consumer.run({
 *   eachBatch: async ({ batch, resolveOffset }) => {
 *     await store.insertMany(batch.messages.map((m) => ({ tenant: m.identity.tid, value: m.value })))
 *     resolveOffset(batch.lastOffset()) // covers rejected records at the end of the batch too
 *   },
 * })
 * ```
 */
export type IdctxBatch<P extends RejectionPolicy = RejectionPolicy> = Omit<Batch, 'messages'> & {
  readonly messages: IdctxBatchMessage<P>[]
}

/**
 * The kafkajs `eachBatch` payload over the batch view, plus a per-record context helper.
 *
 * @example
 * ```ts
 * const eachBatch = async ({ batch, runInContext, heartbeat }: IdctxEachBatchPayload<'dead-letter'>) => {
 *   for (const message of batch.messages) {
 *     await runInContext(message, () => producer.send({ topic: 'invoices', messages: [{ value: message.value }] }))
 *     await heartbeat()
 *   }
 * }
 * await consumer.run({ eachBatch })
 * ```
 */
export type IdctxEachBatchPayload<P extends RejectionPolicy = RejectionPolicy> = Omit<EachBatchPayload, 'batch'> & {
  readonly batch: IdctxBatch<P>
  /**
   * Runs `fn` inside the verified context of one message of this batch (for produces that must
   * carry it forward) and returns what `fn` returns. For an audited violation `fn` runs with no
   * context at all (`contextStore.exit`). The handler itself runs with no context, whatever
   * surrounds the consumer. Throws a TypeError for an object that is not a message of this batch
   * view (a copy of one included): the identity entered is the one the wrapper verified.
   */
  runInContext<T>(message: IdctxBatchMessage<P>, fn: () => T): T
}

/**
 * `consumer.run` configuration with handlers that receive the verdicts.
 *
 * @example
 * ```ts
 * const config: IdctxRunConfig<'dead-letter'> = {
 *   partitionsConsumedConcurrently: 4,
 *   eachMessage: async ({ message, identity }) => handle(identity.tid, message),
 * }
 * await consumer.run(config)
 * ```
 */
export type IdctxRunConfig<P extends RejectionPolicy = RejectionPolicy> = Omit<
  ConsumerRunConfig,
  'eachMessage' | 'eachBatch'
> & {
  eachMessage?: (payload: IdctxEachMessagePayload<P>) => Promise<void>
  eachBatch?: (payload: IdctxEachBatchPayload<P>) => Promise<void>
}

/**
 * What {@link wrapConsumer} needs of a consumer: kafkajs's `Consumer`, or the KafkaJS-compatible
 * consumer of `@confluentinc/kafka-javascript`.
 *
 * @example
 * ```ts
 * import { KafkaJS } from '@confluentinc/kafka-javascript'
 * const consumer = wrapConsumer(new KafkaJS.Kafka({ kafkaJS: { brokers: ['127.0.0.1:39092'] } }).consumer({ kafkaJS: { groupId: 'billing' } }), {
 *   verifier, tenant: 'acme', deadLetter: { producer: dlq },
 * })
 * ```
 */
export interface ConsumerLike {
  run(config?: ConsumerRunConfig): Promise<void>
}

/**
 * A consumer whose `run` verifies every record first; every other member is the consumer's own.
 *
 * @example
 * ```ts
 * const consumer: IdctxConsumer<'dead-letter'> = wrapConsumer(kafka.consumer({ groupId: 'billing' }), {
 *   verifier, tenant: 'acme', deadLetter: { producer: dlq },
 * })
 * await consumer.connect() // the consumer's own
 * await consumer.run({ eachMessage: async ({ identity }) => console.log(identity.tid) })
 * ```
 */
export type IdctxConsumer<P extends RejectionPolicy = RejectionPolicy, C extends ConsumerLike = Consumer> = Omit<C, 'run'> & {
  run(config?: IdctxRunConfig<P>): Promise<void>
}
