import {
  ConfigError,
  createTurnSigner,
  defaultContextStore,
  checkKafkaSendOptions,
  kafkaDestination,
  kafkaProducerOptionIssues,
  kafkaLeaf,
  SigningError,
  type IdentityContext,
  type KafkaProducerOptions,
  type KafkaSendOptions,
  type MessageBinding,
  type SignedCall,
  type TurnSigner,
  passThrough,
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

/** Marks a signing producer, so it is never taken as a dead-letter producer (it would re-sign). */
export const SIGNING_PRODUCER: unique symbol = Symbol.for('@idctx/kafkajs.signing-producer')

/**
 * Options of {@link wrapProducer}. Checked once, at construction: a wrong option, and any key not
 * listed here (a misspelt one, or one of the signer's such as `issuer`), throws a `ConfigError`
 * (`ERR_IDCTX_CONFIG`) whose issues name the path and the fix.
 *
 * @example
 * ```ts
 * const options: WrapProducerOptions = {
 *   signer,
 *   requireContext: true,
 *   traceparent: traceparentOf, // from @idctx/otel
 *   batchProfile: true,
 *   maxBatchRecords: 512,
 * }
 * const producer = wrapProducer(kafka.producer(), options)
 * ```
 */
export interface WrapProducerOptions extends KafkaProducerOptions {}

/**
 * Per-call options: the second argument of `send`/`sendBatch`. An unknown key, or a value of the
 * wrong type, rejects the call with a `ConfigError` (`ERR_IDCTX_CONFIG`) before anything is sent.
 *
 * @example
 * ```ts
 * await producer.send({ topic: 'orders', messages }, { context: { sub: 'u-7d2f', tid: 'acme', txn } })
 * await producer.send({ topic: 'heartbeats', messages: [{ value: 'ping' }] }, { unsigned: true })
 * ```
 */
export interface SendOptions extends KafkaSendOptions {}

/**
 * `send` and `sendBatch` that sign every record of the call.
 *
 * @example
 * ```ts
 * const producer: SigningSender = wrapProducer(kafka.producer(), { signer })
 * await runWithContext(context, () =>
 *   producer.sendBatch({ topicMessages: [{ topic: 'orders', messages }, { topic: 'audit', messages: auditMessages }] }),
 * )
 * ```
 */
export interface SigningSender {
  /**
   * Signs the records and sends copies of them; the caller's objects are not modified. A call
   * alone in its event-loop turn (or with `batchProfile: false`) gets its own token: header
   * `idctx` on each record, plus `idctx-proof` when there is more than one. Calls sharing a turn
   * share a batch-profile token: `idctx`, `idctx-proof` and `idctx-ctx` on every record. Rejects,
   * before anything is signed or sent and without affecting other calls, with a `ConfigError`
   * for unknown per-call options, a `SigningError` (`ERR_IDCTX_SIGNING`) for a missing or
   * unsignable context or a record that already carries idctx headers, a TypeError for a record
   * that is not `{ topic, messages }` with Buffer, string or null keys and values.
   */
  send(record: ProducerRecord, options?: SendOptions): Promise<RecordMetadata[]>
  /** Like `send`, with one token over every record of every topic of the batch. */
  sendBatch(batch: ProducerBatch, options?: SendOptions): Promise<RecordMetadata[]>
}

/**
 * What the wrappers need of a producer or transaction: kafkajs's `Producer` and `Transaction`, or
 * the KafkaJS-compatible API of `@confluentinc/kafka-javascript`.
 *
 * @example
 * ```ts
 * const sender: KafkaSender = kafka.producer() // or await producer.transaction()
 * await sender.send({ topic: 'orders.idctx-dlq', messages: [deadLetterRecord(entry)] })
 * ```
 */
export interface KafkaSender {
  /** kafkajs's `send`: one topic's records. */
  send(record: ProducerRecord): Promise<RecordMetadata[]>
  /** kafkajs's `sendBatch`: records of several topics. */
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]>
}

/**
 * A producer {@link wrapProducer} can wrap.
 *
 * @example
 * ```ts
 * const raw: ProducerLike = kafka.producer({ transactionalId: 'orders-tx', idempotent: true, maxInFlightRequests: 1 })
 * const producer = wrapProducer(raw, { signer })
 * ```
 */
export interface ProducerLike extends KafkaSender {
  /** kafkajs's `transaction`: a sender whose sends commit or abort together. */
  transaction(): Promise<KafkaSender>
}

/**
 * A transaction whose `send`/`sendBatch` sign; `isActive` is the client's, and `commit`, `abort`
 * and `sendOffsets` are the client's once every send of the transaction made before them has been
 * signed and has settled (so no record of the transaction waits for the end of the turn while it
 * commits).
 *
 * @example
 * ```ts
 * const tx: IdctxTransaction = await producer.transaction() // producer from wrapProducer
 * await runWithContext(context, () => tx.send({ topic: 'orders', messages }))
 * await tx.commit() // after the send above is signed and settled
 * ```
 */
export type IdctxTransaction<T extends KafkaSender = Transaction> = Omit<T, 'send' | 'sendBatch'> & SigningSender

/**
 * A producer whose sends sign; every other member is the producer's own.
 *
 * @example
 * ```ts
 * const producer: IdctxProducer = wrapProducer(kafka.producer(), { signer })
 * await producer.connect() // the producer's own
 * await runWithContext(context, () => producer.send({ topic: 'orders', messages: [{ key: 'o-1', value: '{}' }] }))
 * ```
 */
export type IdctxProducer<P extends ProducerLike = Producer> = Omit<P, 'send' | 'sendBatch' | 'transaction'> &
  SigningSender & {
    /** Starts a transaction whose sends sign too. */
    transaction(): Promise<IdctxTransaction<Awaited<ReturnType<P['transaction']>>>>
  }

function checkBytes(v: unknown, what: string): void {
  if (v === null || v === undefined || typeof v === 'string' || v instanceof Uint8Array) return
  throw new TypeError(`message ${what} must be a Buffer, a string or null`)
}

/**
 * A value kafkajs accepts (a key may be left out, a value may not: null is a tombstone). kafkajs
 * refuses a record without a value with an error that quotes the record as JSON — once signed,
 * with its `idctx` token — so such a record is refused here, before anything is signed.
 */
function checkValue(v: unknown): void {
  if (v === undefined) throw new TypeError('message value must be a Buffer, a string or null (kafkajs refuses a message without one)')
  checkBytes(v, 'value')
}


function validate(options: WrapProducerOptions): void {
  const issues = kafkaProducerOptionIssues(options)
  if (issues.length > 0) throw new ConfigError('producer options', issues)
}

const checkSendOptions = (call: SendOptions): void => checkKafkaSendOptions(call)

/** One call, checked and ready to sign: its groups of records, their leaves and its context. */
interface PreparedCall {
  readonly groups: readonly TopicMessages[]
  readonly bindings: readonly MessageBinding[]
  /** Undefined: the call is sent as it is (unsigned, or no context allowed, or no records). */
  readonly context: IdentityContext | undefined
  readonly traceparent: string | undefined
}

/** The carriers to put on a call's records: the token, each record's proof and the context record. */
type Carriers = Pick<SignedCall, 'token' | 'proofs'> & { readonly contextRecord?: string | undefined }

/** Runs a promise-returning function, turning a synchronous throw into a rejection. */
function attempt<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn()
  } catch (e) {
    return Promise.reject(e)
  }
}

/** Remembers a call until it settles (without ever creating an unhandled rejection). */
function track(set: Set<Promise<unknown>>, p: Promise<unknown>): void {
  set.add(p)
  const done = () => void set.delete(p)
  p.then(done, done)
}

/**
 * Wraps a kafkajs producer so every `send` and `sendBatch` (also inside `transaction()`) carries a
 * signed identity context. A token's `mh` is the Merkle root of the leaves (topic, key, exact
 * value bytes) of the records it signs, every record gets header `idctx` with the token and, when
 * the token signs several records, `idctx-proof` with its audit path. Lifting the header onto
 * another record, changing the key or value, or re-sending a record to another topic breaks the
 * binding.
 *
 * One signature per event-loop turn (design, "Batch profile"; `batchProfile`, default true): the
 * calls made in one turn are collected and signed when the turn ends (`setImmediate`) or at
 * `maxBatchRecords`. A call alone in its turn is signed with the single profile — exactly the
 * token one call always had. Calls sharing a turn share one batch-profile token whatever their
 * contexts; each record then also carries `idctx-ctx`, its call's context record (its `sub`,
 * `tid`, `txn`, …), and its proof. Each call remains its own client `send`/`sendBatch`, made in
 * call order per producer, from the caller's async context, resolving or rejecting on its own; a
 * call's bad input rejects that call alone, when it is made. `commit`, `abort` and `sendOffsets`
 * of a transaction, and `disconnect`, first sign what is pending and wait for the calls made
 * before them.
 *
 * The context is `options.context` of the call, else the current context of the context store —
 * inside a consumer wrapped with {@link wrapConsumer} that is the verified context of the record
 * being handled, so the new token keeps its `sub`, `tid` and `txn` and extends the actor chain.
 * It is read, and checked, when the call is made.
 *
 * The caller's records and header objects are copied, never modified. A record that already has
 * an `idctx`, `idctx-proof` or `idctx-ctx` header is refused with a `SigningError` (strip
 * forwarded headers with `withoutIdctxHeaders`); all other headers, `traceparent` included, are
 * kept.
 *
 * Throws a `ConfigError` (`ERR_IDCTX_CONFIG`) for invalid or unknown options. The returned object
 * is a view of the producer: `connect`, `on`, `events`, `logger` and the rest are the producer's
 * own.
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
  const turn: TurnSigner | undefined =
    options.batchProfile === false ? undefined : createTurnSigner(signer, options.maxBatchRecords === undefined ? {} : { maxMessages: options.maxBatchRecords })
  /** Calls of the producer itself and of its transactions not settled yet (for disconnect). */
  const inflight = new Set<Promise<unknown>>()

  /** Checks one call when it is made: options, context, records (nothing signed yet). */
  const prepare = (groups: readonly TopicMessages[], call: SendOptions | undefined): PreparedCall => {
    if (call !== undefined) checkSendOptions(call)
    const unsigned: PreparedCall = { groups, bindings: [], context: undefined, traceparent: undefined }
    if (call?.unsigned === true) return unsigned
    const context = call?.context ?? store.current()
    if (context === undefined) {
      if (!requireContext) return unsigned
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
        checkValue(m.value)
        if (hasIdctxHeaders(m.headers)) {
          throw new SigningError(
            `a message for ${group.topic} already has an ${IdctxHeader.Token}, ${IdctxHeader.Proof} or ${IdctxHeader.Context} header; remove it (withoutIdctxHeaders) or send { unsigned: true }`,
          )
        }
        bindings.push({ destination, leaf: kafkaLeaf(group.topic, m.key, m.value) })
      }
    }
    if (bindings.length === 0) return unsigned
    // The records as they are now, signed now: with the batch profile they are sent a turn later,
    // and a caller that reuses its message objects or array after `send` returned must not send
    // records other than those signed (a changed value would be binding_mismatch, an added
    // message would travel under a token that does not cover it). Buffer contents are not copied.
    const snapshot = groups.map((group) => ({
      ...group,
      messages: group.messages.map((m): Message => (m.headers === undefined ? { ...m } : { ...m, headers: { ...m.headers } })),
    }))
    // The traceparent of the call's own span, read now: the records may be sent a turn later.
    return { groups: snapshot, bindings, context, traceparent: traceparentOf?.() }
  }

  /** Copies of the call's records with the carriers in their headers. */
  const carry = (prep: PreparedCall, signed: Carriers): TopicMessages[] => {
    let i = 0
    return prep.groups.map((group) => ({
      ...group,
      messages: group.messages.map((m): Message => {
        const proof = signed.proofs[i++]
        const headers: NonNullable<Message['headers']> = { ...m.headers, [IdctxHeader.Token]: signed.token }
        if (proof !== undefined) headers[IdctxHeader.Proof] = proof
        if (signed.contextRecord !== undefined) headers[IdctxHeader.Context] = signed.contextRecord
        if (prep.traceparent !== undefined && headers.traceparent === undefined) headers.traceparent = prep.traceparent
        return { ...m, headers }
      }),
    }))
  }

  /**
   * One call: checked now (a bad call rejects alone, before anything is signed); signed at once
   * (batchProfile false) or with the rest of its turn; then handed to the client in call order,
   * from the caller's own async context (a Kafka instrumentation sees the caller's span).
   */
  const run = <T>(groups: readonly TopicMessages[], call: SendOptions | undefined, deliver: (signed: TopicMessages[] | undefined) => Promise<T>, calls: Set<Promise<unknown>>): Promise<T> =>
    attempt(() => {
      const prep = prepare(groups, call)
      if (turn === undefined) {
        return deliver(prep.context === undefined ? undefined : carry(prep, signer.sign(prep.context, prep.bindings)))
      }
      // An unsigned call waits for the calls before it, so the client sees calls in their order.
      // (No extra `then` on either promise: each resolves in call order, and one more hop would let
      // a later call reach the client first.)
      const order: Promise<SignedCall | void> = prep.context === undefined ? turn.barrier() : turn.sign({ context: prep.context, messages: prep.bindings })
      const p = order.then((signed) => deliver(signed === undefined ? undefined : carry(prep, signed)))
      track(calls, p)
      if (calls !== inflight) track(inflight, p)
      return p
    })

  const signingSender = (sender: KafkaSender, calls: Set<Promise<unknown>>): SigningSender => ({
    send: (record, call) =>
      run([record], call, (signed) => sender.send(signed === undefined ? record : { ...record, messages: (signed[0] as TopicMessages).messages }), calls),
    sendBatch: (batch, call) =>
      run(batch.topicMessages ?? [], call, (signed) => sender.sendBatch(signed === undefined ? batch : { ...batch, topicMessages: signed }), calls),
  })

  /** Signs what is pending now and waits until `calls` have settled (sent or failed). */
  const settle = async (calls: Set<Promise<unknown>>): Promise<void> => {
    turn?.flush()
    while (calls.size > 0) await Promise.allSettled([...calls])
  }

  /** `name` of `target`, run once `calls` have settled; undefined when the target has no such method. */
  const afterSettled = (target: object, name: string, calls: Set<Promise<unknown>>): ((...args: unknown[]) => Promise<unknown>) | undefined => {
    const original = (target as Record<string, unknown>)[name]
    if (typeof original !== 'function') return undefined
    return async (...args: unknown[]) => {
      await settle(calls)
      return (original as (...a: unknown[]) => unknown).apply(target, args)
    }
  }

  const own = signingSender(producer, inflight)
  const overrides: Record<PropertyKey, unknown> = {
    send: own.send,
    sendBatch: own.sendBatch,
    async transaction(): Promise<KafkaSender> {
      const tx = await producer.transaction()
      const calls = new Set<Promise<unknown>>()
      const s = signingSender(tx, calls)
      const txOverrides: Record<PropertyKey, unknown> = { send: s.send, sendBatch: s.sendBatch }
      // A transaction flushes before it commits: its records are signed and sent first.
      for (const name of ['commit', 'abort', 'sendOffsets']) {
        const wrapped = afterSettled(tx, name, calls)
        if (wrapped !== undefined) txOverrides[name] = wrapped
      }
      return passThrough(tx, txOverrides) as unknown as KafkaSender
    },
    [SIGNING_PRODUCER]: true,
  }
  const disconnect = afterSettled(producer, 'disconnect', inflight)
  if (disconnect !== undefined) overrides.disconnect = disconnect
  return passThrough(producer, overrides) as unknown as IdctxProducer<P>
}
