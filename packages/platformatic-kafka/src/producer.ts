import {
  checkKafkaSendOptions,
  ConfigError,
  createTurnSigner,
  defaultContextStore,
  kafkaDestination,
  kafkaLeaf,
  kafkaProducerOptionIssues,
  SigningError,
  type IdentityContext,
  type KafkaProducerOptions,
  type KafkaSendOptions,
  type MessageBinding,
  type SignedCall,
  type TurnSigner,
  passThrough,
} from '@idctx/core'
import type { MessageToProduce, ProduceResult, Producer, SendOptions as ClientSendOptions } from '@platformatic/kafka'
import { hasIdctxHeaders, headerEntries, IdctxHeader } from './headers.js'

/** Marks a signing producer, so it is never taken as a dead-letter producer (it would re-sign). */
export const SIGNING_PRODUCER: unique symbol = Symbol.for('@idctx/platformatic-kafka.signing-producer')

/**
 * Options of {@link wrapProducer}. Checked once, at construction: a wrong option, and any key not
 * listed here, throws a `ConfigError` (`ERR_IDCTX_CONFIG`) naming the path and the fix.
 *
 * @example
 * ```ts
 * const options: WrapProducerOptions = { signer, traceparent: () => traceparentOf(trace.getActiveSpan()) }
 * ```
 */
export interface WrapProducerOptions extends KafkaProducerOptions {
  /**
   * The type of the header keys and values the wrapper adds, matching the producer's header
   * serializers: `'buffer'` (default, for the default serializers) or `'string'` (for
   * `stringSerializers`). The bytes on the wire are the same.
   */
  headerType?: 'buffer' | 'string'
}

/**
 * Per-call options: the second argument of `send`.
 *
 * @example
 * ```ts
 * await producer.send({ messages }, { context: { sub: 'u-1', tid: 'acme', txn } })
 * await producer.send({ messages }, { unsigned: true }) // verified as `missing`
 * ```
 */
export interface SendOptions extends KafkaSendOptions {}

/**
 * What {@link wrapProducer} needs of a producer: `@platformatic/kafka`'s `Producer`.
 *
 * @example
 * ```ts
 * const raw: ProducerLike = new Producer({ clientId: 'orders', bootstrapBrokers })
 * ```
 */
export interface ProducerLike {
  send(options: ClientSendOptions<any, any, any, any>): Promise<ProduceResult>
}

/**
 * A producer whose `send` signs; every other member is the producer's own.
 *
 * @example
 * ```ts
 * const producer: IdctxProducer = wrapProducer(new Producer({ clientId: 'orders', bootstrapBrokers }), { signer })
 * ```
 */
export type IdctxProducer<P extends ProducerLike = Producer> = Omit<P, 'send'> & {
  /**
   * Signs the messages and sends copies of them (the caller's messages and header objects are
   * never modified). Promise form only. Rejects, before anything is signed or sent and without
   * affecting other calls, with a `ConfigError` for unknown per-call options, a `SigningError`
   * for a missing context or a message that already carries idctx headers, a TypeError for a
   * message whose key or value is not a Buffer, a string or undefined.
   */
  send(options: Parameters<P['send']>[0], call?: SendOptions): Promise<ProduceResult>
}


function validate(options: WrapProducerOptions): void {
  const issues = kafkaProducerOptionIssues(options, ['headerType'])
  if (options.headerType !== undefined && options.headerType !== 'buffer' && options.headerType !== 'string') {
    issues.push({ path: 'headerType', message: "'buffer' or 'string'" })
  }
  if (issues.length > 0) throw new ConfigError('producer options', issues)
}

const checkSendOptions = (call: SendOptions): void => checkKafkaSendOptions(call, '; the callback form of send is not wrapped')

function checkBytes(v: unknown, what: string): void {
  if (v === null || v === undefined || typeof v === 'string' || v instanceof Uint8Array) return
  throw new TypeError(`message ${what} must be a Buffer, a string or undefined (serialize it before send: the token binds the exact bytes)`)
}

type AnyMessage = MessageToProduce<unknown, unknown, unknown, unknown>

/** A shallow copy of a message and of its header Map or object (the bytes themselves are not copied). */
function snapshot(m: AnyMessage): AnyMessage {
  if (typeof m !== 'object' || m === null) return m
  const h = m.headers as unknown
  if (h instanceof Map) return { ...m, headers: new Map(h) as never }
  if (typeof h === 'object' && h !== null) return { ...m, headers: { ...(h as Record<string, unknown>) } as never }
  return { ...m }
}

interface PreparedCall {
  readonly bindings: readonly MessageBinding[]
  readonly context: IdentityContext | undefined
  readonly traceparent: string | undefined
}

/**
 * Wraps a `@platformatic/kafka` producer so every `send` carries a signed identity context, with
 * the same headers and values as `@idctx/kafkajs`'s `wrapProducer`: `idctx` (the token) on every
 * message, `idctx-proof` when one token signs several messages, `idctx-ctx` under the batch
 * profile, and `traceparent` beside them when the `traceparent` option gives one. A token's
 * `mh` binds each message's topic, key and exact value bytes, so key and value must be Buffers or
 * strings (taken as UTF-8) and the producer's key and value serializers must write them as they
 * are (the default serializers and `stringSerializers` do).
 *
 * The context is `{ context }` of the call, else the current one of the context store — inside a
 * consumer wrapped with `wrapConsumer` that is the verified context of the message being handled.
 * The caller's messages and header objects are copied, never modified; a message that already
 * has an idctx carrier header is refused (strip forwarded headers with `withoutIdctxHeaders`).
 * Only the promise form of `send` is wrapped; `asStream()` and `beginTransaction()` are the
 * client's own and do not sign (see docs/platformatic-kafka.md).
 *
 * @example
 * ```ts
 * const producer = wrapProducer(new Producer({ clientId: 'orders', bootstrapBrokers: ['127.0.0.1:9092'] }), {
 *   signer: createSigner({ issuer: 'orders', audience: 'shop', key }),
 * })
 * await runWithContext({ sub: 'u-42', tid: 'acme', txn: randomUUID() }, () =>
 *   producer.send({ messages: [{ topic: 'orders', key: Buffer.from('o-1'), value: Buffer.from('{}') }] }),
 * )
 * ```
 */
export function wrapProducer<P extends ProducerLike = Producer>(producer: P, options: WrapProducerOptions): IdctxProducer<P> {
  validate(options)
  const { signer } = options
  const store = options.contextStore ?? defaultContextStore
  const requireContext = options.requireContext ?? true
  const traceparentOf = options.traceparent
  const asHeader: (s: string) => unknown = options.headerType === 'string' ? (s) => s : (s) => Buffer.from(s, 'utf8')
  const turn: TurnSigner | undefined =
    options.batchProfile === false ? undefined : createTurnSigner(signer, options.maxBatchRecords === undefined ? {} : { maxMessages: options.maxBatchRecords })

  const prepare = (messages: readonly AnyMessage[], call: SendOptions | undefined): PreparedCall => {
    if (call !== undefined) checkSendOptions(call)
    const none: PreparedCall = { bindings: [], context: undefined, traceparent: undefined }
    if (call?.unsigned === true) return none
    const context = call?.context ?? store.current()
    if (context === undefined) {
      if (!requireContext) return none
      throw new SigningError('no identity context: run the send inside a context, pass { context }, or { unsigned: true }')
    }
    const bindings: MessageBinding[] = []
    for (const m of messages) {
      if (typeof m?.topic !== 'string') throw new TypeError('each message needs a topic')
      checkBytes(m.key, 'key')
      checkBytes(m.value, 'value')
      if (hasIdctxHeaders(m.headers as never)) {
        throw new SigningError(`a message for ${m.topic} already has an idctx, idctx-proof or idctx-ctx header; remove it (withoutIdctxHeaders) or send { unsigned: true }`)
      }
      bindings.push({ destination: kafkaDestination(m.topic), leaf: kafkaLeaf(m.topic, m.key as Buffer | string | undefined, m.value as Buffer | string | undefined) })
    }
    if (bindings.length === 0) return none
    return { bindings, context, traceparent: traceparentOf?.() }
  }

  /** A copy of a message with the carriers added to a copy of its headers (Map or object, as given). */
  const carry = (m: AnyMessage, token: string, proof: string | undefined, contextRecord: string | undefined, traceparent: string | undefined): AnyMessage => {
    const add: [string, string][] = [[IdctxHeader.Token, token]]
    if (proof !== undefined) add.push([IdctxHeader.Proof, proof])
    if (contextRecord !== undefined) add.push([IdctxHeader.Context, contextRecord])
    if (traceparent !== undefined && !headerEntries(m.headers as never).some(([n]) => n === 'traceparent')) add.push(['traceparent', traceparent])
    if (m.headers !== undefined && !(m.headers instanceof Map)) {
      const headers: Record<string, unknown> = { ...(m.headers as Record<string, unknown>) }
      for (const [k, v] of add) headers[k] = asHeader(v)
      return { ...m, headers: headers as never }
    }
    const headers = new Map<unknown, unknown>(m.headers ?? [])
    for (const [k, v] of add) headers.set(asHeader(k), asHeader(v))
    return { ...m, headers: headers as never }
  }

  const signed = (messages: readonly AnyMessage[], prep: PreparedCall, s: Pick<SignedCall, 'token' | 'proofs'> & { contextRecord?: string | undefined }): AnyMessage[] =>
    messages.map((m, i) => carry(m, s.token, s.proofs[i], s.contextRecord, prep.traceparent))

  /** Calls not settled yet: `close` waits for them. */
  const inflight = new Set<Promise<unknown>>()

  const send = (request: ClientSendOptions<unknown, unknown, unknown, unknown>, call?: SendOptions): Promise<ProduceResult> => {
    try {
      if (typeof call === 'function') throw new TypeError('the callback form of send is not wrapped: use the promise it returns')
      if (typeof request !== 'object' || request === null || !Array.isArray(request.messages)) throw new TypeError('send needs { messages: [...] }')
      // A snapshot of the messages and their headers as they are now: the call is signed and
      // handed to the client on a later turn, and what is sent must be what was checked and bound
      // (a caller reusing its array or message objects after `send` returned changes nothing).
      const messages = request.messages.map(snapshot)
      const prep = prepare(messages, call)
      const deliver = (out: AnyMessage[] | undefined) => producer.send({ ...request, messages: out ?? messages })
      if (turn === undefined) {
        return deliver(prep.context === undefined ? undefined : signed(messages, prep, signer.sign(prep.context, prep.bindings)))
      }
      const order: Promise<SignedCall | void> = prep.context === undefined ? turn.barrier() : turn.sign({ context: prep.context, messages: prep.bindings })
      const p = order.then((s) => deliver(s === undefined ? undefined : signed(messages, prep, s)))
      inflight.add(p)
      const done = () => void inflight.delete(p)
      p.then(done, done)
      return p
    } catch (e) {
      return Promise.reject(e)
    }
  }

  const overrides: Record<PropertyKey, unknown> = { send, [SIGNING_PRODUCER]: true }
  const close = (producer as { close?: unknown }).close
  if (typeof close === 'function') {
    overrides.close = async (...args: unknown[]) => {
      // What is pending in this turn is signed and handed to the client before it closes.
      turn?.flush()
      while (inflight.size > 0) await Promise.allSettled([...inflight])
      return (close as (...a: unknown[]) => unknown).apply(producer, args)
    }
  }
  return passThrough(producer, overrides) as unknown as IdctxProducer<P>
}
