import type {
  ContextStore,
  ExpectedTenant,
  IdctxObserver,
  ReasonCode,
  Requirements,
  VerificationError,
  VerifiedContext,
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
 */
export type RejectionPolicy = 'dead-letter' | 'skip' | 'fail' | 'audit'

/** A consumed record and where it came from. */
export interface ConsumedRecord {
  readonly topic: string
  readonly partition: number
  readonly message: KafkaMessage
}

/**
 * The tenant records must belong to, derived independently of the token: one tenant, a list,
 * `{ any: true }` (accept every tenant: only for consumers that serve all tenants), or a function
 * of the record (e.g. from the topic name). A throwing or rejecting function is an infrastructure
 * failure: the error propagates and kafkajs retries the record.
 */
export type TenantOption =
  | ExpectedTenant
  | ((record: ConsumedRecord) => ExpectedTenant | Promise<ExpectedTenant>)

/** Where and how rejected records are dead-lettered. */
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

/** Why a record failed verification, as the `audit` policy hands it to the handler. */
export interface Violation {
  readonly reason: ReasonCode
  readonly error: VerificationError
  /** SHA-256 of the token, hex, when the record had one. */
  readonly tokenSha256: string | undefined
}

/** A verified record: its context. */
export interface VerifiedRecord {
  /** The verified context; the handler runs inside it. */
  readonly identity: VerifiedContext
  readonly violation?: undefined
}

/** An unverified record delivered under the `audit` policy. */
export interface AuditedRecord {
  readonly identity: undefined
  readonly violation: Violation
}

/** What the handler learns about a record: verified, or (audit policy only) a violation. */
export type RecordVerdict<P extends RejectionPolicy> =
  | VerifiedRecord
  | ('audit' extends P ? AuditedRecord : never)

/** The kafkajs `eachMessage` payload plus the record's verdict. */
export type IdctxEachMessagePayload<P extends RejectionPolicy = RejectionPolicy> = EachMessagePayload &
  RecordVerdict<P>

/** A message of the batch view: the kafkajs message plus its verdict. */
export type IdctxBatchMessage<P extends RejectionPolicy = RejectionPolicy> = KafkaMessage & RecordVerdict<P>

/**
 * The batch the wrapped `eachBatch` sees: `messages` leaves out the records that were rejected
 * (already dead-lettered or skipped); `topic`, `partition`, `highWatermark`, `firstOffset()`,
 * `lastOffset()`, `offsetLag()` and `offsetLagLow()` describe the whole fetched batch, so
 * `resolveOffset(batch.lastOffset())` still covers rejected records at its end.
 */
export type IdctxBatch<P extends RejectionPolicy = RejectionPolicy> = Omit<Batch, 'messages'> & {
  readonly messages: IdctxBatchMessage<P>[]
}

/** The kafkajs `eachBatch` payload over the batch view, plus a per-record context helper. */
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

/** `consumer.run` configuration with handlers that receive the verdicts. */
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
 */
export interface ConsumerLike {
  run(config?: ConsumerRunConfig): Promise<void>
}

/** A consumer whose `run` verifies every record first; every other member is the consumer's own. */
export type IdctxConsumer<P extends RejectionPolicy = RejectionPolicy, C extends ConsumerLike = Consumer> = Omit<C, 'run'> & {
  run(config?: IdctxRunConfig<P>): Promise<void>
}
