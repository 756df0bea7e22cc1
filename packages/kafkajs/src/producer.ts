import {
  ConfigError,
  defaultContextStore,
  isContextStore,
  unknownOptions,
  type OptionIssue,
  kafkaDestination,
  kafkaLeaf,
  SigningError,
  type ContextStore,
  type IdentityContext,
  type MessageBinding,
  type Signer,
} from '@idctx/core'
import type {
  Message,
  Producer,
  ProducerBatch,
  ProducerRecord,
  RecordMetadata,
  TopicMessages,
  Transaction,
} from 'kafkajs'
import { hasIdctxHeaders, IdctxHeader } from './headers.js'
import { passthrough } from './lib/passthrough.js'

/** Marks a signing producer, so it is never taken as a dead-letter producer (it would re-sign). */
export const SIGNING_PRODUCER: unique symbol = Symbol.for('@idctx/kafkajs.signing-producer')

/**
 * Options of {@link wrapProducer}. Checked once, at construction: a wrong option, and any key not
 * listed here (a misspelt one, or one of the signer's such as `issuer`), throws a `ConfigError`
 * (`ERR_IDCTX_CONFIG`) whose issues name the path and the fix.
 */
export interface WrapProducerOptions {
  /** Signs one token per `send`/`sendBatch` call (`createSigner` of `@idctx/core`). */
  signer: Signer
  /**
   * Where the current identity context is read from (default: core's `defaultContextStore`); a
   * ContextStore has `run`, `current` and `exit`.
   */
  contextStore?: ContextStore
  /**
   * When true (the default) a call with no context (neither `options.context` nor a current
   * one) throws a `SigningError`, unless the call says `unsigned: true`. When false such calls
   * are sent unsigned.
   */
  requireContext?: boolean
  /**
   * The W3C traceparent of the current span (e.g. `traceparentOf` from `@idctx/otel`), added as a
   * `traceparent` header to records that have none — for tracing without a Kafka instrumentation.
   */
  traceparent?: () => string | undefined
}

/**
 * Per-call options: the second argument of `send`/`sendBatch`. An unknown key, or a value of the
 * wrong type, rejects the call with a `ConfigError` (`ERR_IDCTX_CONFIG`) before anything is sent.
 */
export interface SendOptions {
  /** Sign with this context instead of the current one. */
  context?: IdentityContext
  /** Send these records as they are, without a token (they fail verification as `missing`). */
  unsigned?: true
}

/** `send` and `sendBatch` that sign every record of the call with one token. */
export interface SigningSender {
  /**
   * Signs the records with one token (header `idctx` on each, plus `idctx-proof` when there is
   * more than one) and sends copies of them; the caller's objects are not modified.
   */
  send(record: ProducerRecord, options?: SendOptions): Promise<RecordMetadata[]>
  /** Like `send`, with one token over every record of every topic of the batch. */
  sendBatch(batch: ProducerBatch, options?: SendOptions): Promise<RecordMetadata[]>
}

/**
 * What the wrappers need of a producer or transaction: kafkajs's `Producer` and `Transaction`, or
 * the KafkaJS-compatible API of `@confluentinc/kafka-javascript`.
 */
export interface KafkaSender {
  send(record: ProducerRecord): Promise<RecordMetadata[]>
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]>
}

/** A producer {@link wrapProducer} can wrap. */
export interface ProducerLike extends KafkaSender {
  transaction(): Promise<KafkaSender>
}

/** A transaction whose `send`/`sendBatch` sign; `commit`, `abort`, `sendOffsets`, `isActive` are the client's. */
export type IdctxTransaction<T extends KafkaSender = Transaction> = Omit<T, 'send' | 'sendBatch'> & SigningSender

/** A producer whose sends sign; every other member is the producer's own. */
export type IdctxProducer<P extends ProducerLike = Producer> = Omit<P, 'send' | 'sendBatch' | 'transaction'> &
  SigningSender & {
    /** Starts a transaction whose sends sign too. */
    transaction(): Promise<IdctxTransaction<Awaited<ReturnType<P['transaction']>>>>
  }

function checkBytes(v: unknown, what: string): void {
  if (v === null || v === undefined || typeof v === 'string' || v instanceof Uint8Array) return
  throw new TypeError(`message ${what} must be a Buffer, a string or null`)
}

/** Every option of {@link WrapProducerOptions}: any other key is refused at construction. */
const PRODUCER_OPTIONS: readonly (keyof WrapProducerOptions)[] = ['signer', 'contextStore', 'requireContext', 'traceparent']
/** Every per-call option of {@link SendOptions}. */
const SEND_OPTIONS: readonly (keyof SendOptions)[] = ['context', 'unsigned']
const SIGNER_HINT = 'it is an option of the signer: pass it to createSigner (@idctx/core), then the signer here'
/** Names that belong to createSigner, so a misplaced one gets a precise hint. */
const SIGNER_OPTIONS: Readonly<Record<string, string>> = Object.fromEntries(
  ['issuer', 'audience', 'key', 'lifetimeSeconds', 'maxLifetimeSeconds', 'maxActorDepth', 'allowHS256', 'clock', 'traceId', 'observer'].map((k) => [
    k,
    SIGNER_HINT,
  ]),
)

function validate(options: WrapProducerOptions): void {
  const issues: OptionIssue[] = []
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('producer options', [{ path: '', message: 'an options object ({ signer, … })' }])
  }
  issues.push(...unknownOptions(options, PRODUCER_OPTIONS, { hints: SIGNER_OPTIONS }))
  if (typeof options.signer?.sign !== 'function') issues.push({ path: 'signer', message: 'a Signer (createSigner)' })
  if (options.contextStore !== undefined && !isContextStore(options.contextStore)) {
    issues.push({ path: 'contextStore', message: 'a ContextStore (run, current and exit)' })
  }
  if (options.traceparent !== undefined && typeof options.traceparent !== 'function') {
    issues.push({ path: 'traceparent', message: 'a function returning the current traceparent' })
  }
  if (options.requireContext !== undefined && typeof options.requireContext !== 'boolean') {
    issues.push({ path: 'requireContext', message: 'a boolean' })
  }
  if (issues.length > 0) throw new ConfigError('producer options', issues)
}

/**
 * Refuses per-call options the wrapper does not know (`{ contxt }` would otherwise sign with the
 * current context instead of the one meant) or of the wrong type, before anything is sent.
 */
function checkSendOptions(call: SendOptions): void {
  if (typeof call !== 'object' || call === null) {
    throw new ConfigError('send options', [{ path: '', message: 'an object ({ context } or { unsigned: true })' }])
  }
  const issues = unknownOptions(call, SEND_OPTIONS)
  if (call.unsigned !== undefined && typeof call.unsigned !== 'boolean') issues.push({ path: 'unsigned', message: 'true, or leave it out' })
  if (call.context !== undefined && (typeof call.context !== 'object' || call.context === null)) {
    issues.push({ path: 'context', message: 'an IdentityContext ({ sub, tid, txn, … })' })
  }
  if (issues.length > 0) throw new ConfigError('send options', issues)
}

/**
 * Wraps a kafkajs producer so every `send` and `sendBatch` (also inside `transaction()`) carries a
 * signed identity context. One token signs all records of one call, across all topics of a
 * `sendBatch`: its `mh` is the Merkle root of the records' leaves (topic, key, exact value bytes),
 * every record gets header `idctx` with the token and, when the call has several records,
 * `idctx-proof` with its audit path. Lifting the header onto another record, changing the key or
 * value, or re-sending a record to another topic breaks the binding.
 *
 * The context is `options.context` of the call, else the current context of the context store —
 * inside a consumer wrapped with {@link wrapConsumer} that is the verified context of the record
 * being handled, so the new token keeps its `sub`, `tid` and `txn` and extends the actor chain.
 *
 * The caller's records and header objects are copied, never modified. A record that already has
 * an `idctx` or `idctx-proof` header is refused with a `SigningError` (strip forwarded headers
 * with `withoutIdctxHeaders`); all other headers, `traceparent` included, are kept.
 *
 * The returned object is a view of the producer: `connect`, `disconnect`, `on`, `events`,
 * `logger` and the rest are the producer's own.
 *
 * @example
 * ```ts
 * const producer = wrapProducer(kafka.producer(), {
 *   signer: createSigner({ issuer: 'orders', audience: 'shop', key }),
 * })
 * await producer.connect()
 * await runWithContext({ sub: 'u-42', tid: 'acme', txn: randomUUID() }, () =>
 *   producer.send({ topic: 'orders', messages: [{ key: 'o-1', value: JSON.stringify(order) }] }),
 * )
 * ```
 */
export function wrapProducer<P extends ProducerLike = Producer>(producer: P, options: WrapProducerOptions): IdctxProducer<P> {
  validate(options)
  const signer = options.signer
  const store = options.contextStore ?? defaultContextStore
  const requireContext = options.requireContext ?? true
  const traceparentOf = options.traceparent

  const sign = (groups: readonly TopicMessages[], call: SendOptions | undefined): TopicMessages[] | undefined => {
    if (call !== undefined) checkSendOptions(call)
    if (call?.unsigned === true) return undefined
    const context = call?.context ?? store.current()
    if (context === undefined) {
      if (!requireContext) return undefined
      throw new SigningError('no identity context: run the send inside a context, pass { context }, or { unsigned: true }')
    }
    const bindings: MessageBinding[] = []
    for (const group of groups) {
      if (typeof group?.topic !== 'string' || !Array.isArray(group.messages)) {
        throw new TypeError('each record needs a topic and a messages array')
      }
      const destination = kafkaDestination(group.topic)
      for (const m of group.messages) {
        checkBytes(m.key, 'key')
        checkBytes(m.value, 'value')
        if (hasIdctxHeaders(m.headers)) {
          throw new SigningError(
            `a message for ${group.topic} already has an ${IdctxHeader.Token} or ${IdctxHeader.Proof} header; remove it (withoutIdctxHeaders) or send { unsigned: true }`,
          )
        }
        bindings.push({ destination, leaf: kafkaLeaf(group.topic, m.key, m.value) })
      }
    }
    if (bindings.length === 0) return undefined
    const signed = signer.sign(context, bindings)
    const traceparent = traceparentOf?.()
    let i = 0
    return groups.map((group) => ({
      ...group,
      messages: group.messages.map((m): Message => {
        const proof = signed.proofs[i++]
        const headers: NonNullable<Message['headers']> = { ...m.headers, [IdctxHeader.Token]: signed.token }
        if (proof !== undefined) headers[IdctxHeader.Proof] = proof
        if (traceparent !== undefined && headers.traceparent === undefined) headers.traceparent = traceparent
        return { ...m, headers }
      }),
    }))
  }

  const signingSender = (sender: KafkaSender): SigningSender => ({
    async send(record, call) {
      const signed = sign([record], call)
      return sender.send(signed === undefined ? record : { ...record, messages: (signed[0] as TopicMessages).messages })
    },
    async sendBatch(batch, call) {
      const signed = batch.topicMessages === undefined ? undefined : sign(batch.topicMessages, call)
      return sender.sendBatch(signed === undefined ? batch : { ...batch, topicMessages: signed })
    },
  })

  const own = signingSender(producer)
  return passthrough(producer, {
    send: own.send,
    sendBatch: own.sendBatch,
    async transaction(): Promise<KafkaSender> {
      const tx = await producer.transaction()
      const s = signingSender(tx)
      return passthrough(tx, { send: s.send, sendBatch: s.sendBatch })
    },
    [SIGNING_PRODUCER]: true,
  }) as unknown as IdctxProducer<P>
}
