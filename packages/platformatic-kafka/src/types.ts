import type {
  AuditedRecord,
  ContextStore,
  ExpectedTenant,
  IdctxObserver,
  KafkaRejectionPolicy,
  Requirements,
  VerifiedRecord,
} from '@idctx/core'
import type { ConsumeOptions, Message, MessagesStream, ProduceResult, SendOptions } from '@platformatic/kafka'

/**
 * What the consumer does with a message that fails verification (the same policies as
 * `@idctx/kafkajs`):
 * - `dead-letter` (default): write it to the dead-letter topic; its offset is committed only after
 *   the write is acknowledged.
 * - `skip`: report it to the observer and let the offset move on.
 * - `fail`: the stream throws `RecordRejectedError` at the message; nothing past it is committed.
 * - `audit`: deliver it anyway, with `identity: undefined` and a `violation` (rollouts).
 *
 * @example
 * ```ts
 * wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip' satisfies RejectionPolicy })
 * ```
 */
export type RejectionPolicy = KafkaRejectionPolicy

/**
 * A message as `@platformatic/kafka` delivers it (any serde).
 *
 * @example
 * ```ts
 * const key = (m: AnyMessage): string => String(m.key)
 * ```
 */
export type AnyMessage = Message<any, any, any, any>

/**
 * A consumed message and where it came from (what tenant resolvers receive).
 *
 * @example
 * ```ts
 * wrapConsumer(consumer, { verifier, tenant: (r: ConsumedRecord) => r.topic.split('.')[0] ?? '', policy: 'skip' })
 * ```
 */
export interface ConsumedRecord {
  readonly topic: string
  readonly partition: number
  readonly message: AnyMessage
}

/**
 * The tenant messages must belong to, derived independently of the token (see `@idctx/kafkajs`).
 *
 * @example
 * ```ts
 * const tenant: TenantOption = ['acme', 'globex'] // or 'acme', { any: true }, or (record) => …
 * ```
 */
export type TenantOption = ExpectedTenant | ((record: ConsumedRecord) => ExpectedTenant | Promise<ExpectedTenant>)

/**
 * What a dead-letter producer must offer: a plain `@platformatic/kafka` `Producer`.
 *
 * @example
 * ```ts
 * const producer: DeadLetterSender = new Producer({ clientId: 'dlq', bootstrapBrokers })
 * ```
 */
export interface DeadLetterSender {
  send(options: SendOptions<Buffer, Buffer, Buffer, Buffer>): Promise<ProduceResult>
}

/**
 * Where and how rejected messages are dead-lettered.
 *
 * @example
 * ```ts
 * const deadLetter: DeadLetterOptions = { producer: dlq, topic: (t) => `${t}.rejected` }
 * ```
 */
export interface DeadLetterOptions {
  /**
   * A plain producer with the default (Buffer) serializers, not one from `wrapProducer`:
   * dead-letter records keep their original `idctx` header and must not be re-signed.
   */
  producer: DeadLetterSender
  /** The dead-letter topic of a source topic (default `${topic}.idctx-dlq`). */
  topic?: (topic: string) => string
}

/**
 * Options of `wrapConsumer`. Checked once, at construction: a missing or wrong option, or an
 * unknown key, throws a `ConfigError` (`ERR_IDCTX_CONFIG`).
 *
 * @example
 * ```ts
 * const options: WrapConsumerOptions = { verifier, tenant: 'acme', deadLetter: { producer: dlq } }
 * const consumer = wrapConsumer(new Consumer({ clientId: 'billing', groupId: 'billing', bootstrapBrokers }), options)
 * ```
 */
export interface WrapConsumerOptions<P extends RejectionPolicy = RejectionPolicy> {
  /** Verifies tokens (`createVerifier` of `@idctx/core`). */
  verifier: import('@idctx/core').Verifier
  /** The expected tenant (required: `{ any: true }` accepts every tenant explicitly). */
  tenant: TenantOption
  /** Reads a tenant id from the message itself; when a string, it must equal `tid`. */
  payloadTenant?: (record: ConsumedRecord) => string | undefined
  /** Scopes/roles required per topic. */
  requirements?: Readonly<Record<string, Requirements>> | ((topic: string) => Requirements | undefined)
  /** What happens to rejected messages (default `dead-letter`). */
  policy?: P
  /** Required for the `dead-letter` policy. */
  deadLetter?: DeadLetterOptions
  /** The store the handler's context is set in (default: core's `defaultContextStore`). */
  contextStore?: ContextStore
  /** Receives `onDisposition` for every rejected message. */
  observer?: IdctxObserver
  /**
   * Grace after `exp`, in seconds, for records re-published from a dead-letter topic (with an
   * `idctx-redriven-from` header, `idctx dlq redrive`), as `@idctx/kafkajs`'s option of the same
   * name. Default 0. Capped by the verifier's `maxExpiryGraceSeconds`; the header is unsigned, so
   * the grace is bounded and needs a replay store.
   */
  redriveGraceSeconds?: number
}

export type { Violation, VerifiedRecord, AuditedRecord } from '@idctx/core'

/**
 * What the application learns about a message: verified, or (audit policy only) a violation.
 *
 * @example
 * ```ts
 * const verdict: RecordVerdict<'audit'> = message // { identity } or { identity: undefined, violation }
 * ```
 */
export type RecordVerdict<P extends RejectionPolicy> = VerifiedRecord | ('audit' extends P ? AuditedRecord : never)

/**
 * A message of the verified stream: the client's message plus its verdict.
 *
 * @example
 * ```ts
 * for await (const message of stream) console.log(message.offset, message.identity.sub)
 * ```
 */
export type IdctxMessage<P extends RejectionPolicy = RejectionPolicy, M extends AnyMessage = Message<Buffer, Buffer, Buffer, Buffer>> = M & RecordVerdict<P>

/**
 * The verified stream `consume()` returns. Iterate it (`for await`) or hand it a handler
 * (`process`); only verified messages (and, under `audit`, violations) come out, in order.
 *
 * @example
 * ```ts
 * const stream: IdctxMessagesStream = await consumer.consume({ topics: ['orders'], mode: 'committed', fallbackMode: 'earliest' })
 * await stream.process(async (message) => handle(message)) // inside message.identity
 * ```
 */
export interface IdctxMessagesStream<P extends RejectionPolicy = RejectionPolicy, M extends AnyMessage = Message<Buffer, Buffer, Buffer, Buffer>> extends AsyncIterable<IdctxMessage<P, M>> {
  /**
   * Runs `handler` for every message, one at a time, in order, inside the message's verified
   * context (an audited violation: with no context), until the stream ends or is closed.
   * Resolves when it ends; rejects with what the handler, the verifier or the dead-letter write
   * threw (under `fail`: a `RecordRejectedError`).
   */
  process(handler: (message: IdctxMessage<P, M>) => Promise<void> | void): Promise<void>
  /**
   * Runs `fn` inside the verified context of a message this stream handed out (with no context
   * for an audited one). Throws a TypeError for any other object (a copy included).
   */
  runInContext<T>(message: IdctxMessage<P, M>, fn: () => T): T
  /**
   * Commits what the wrapper marked as handled (see docs/platformatic-kafka.md), then closes
   * the client's stream.
   */
  close(): Promise<void>
}

/**
 * What `wrapConsumer` needs of a consumer: `@platformatic/kafka`'s `Consumer`.
 *
 * @example
 * ```ts
 * const consumer: ConsumerLike = new Consumer({ clientId: 'billing', groupId: 'billing', bootstrapBrokers })
 * ```
 */
export interface ConsumerLike {
  consume(options: ConsumeOptions<any, any, any, any>): Promise<MessagesStream<any, any, any, any>>
}
