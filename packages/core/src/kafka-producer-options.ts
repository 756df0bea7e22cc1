import type { ContextStore, IdentityContext } from './context.js'
import { ConfigError } from './errors.js'
import { isContextStore, unknownOptions, type OptionIssue } from './option-checks.js'
import type { Signer } from './signer.js'

/**
 * The options every Kafka adapter's `wrapProducer` takes (an adapter may add its own, such as
 * `@idctx/platformatic-kafka`'s `headerType`). Checked once, at construction, by
 * {@link kafkaProducerOptionIssues}.
 *
 * @example
 * ```ts
 * const options: KafkaProducerOptions = {
 *   signer,
 *   requireContext: true,
 *   traceparent: traceparentOf, // from @idctx/otel
 *   batchProfile: true,
 *   maxBatchRecords: 512,
 * }
 * const producer = wrapProducer(kafka.producer(), options) // @idctx/kafkajs
 * ```
 */
export interface KafkaProducerOptions {
  /**
   * Signs the records (`createSigner`): one token per event-loop turn, or one per `send` call
   * with `batchProfile: false`. Its observer receives one `onSigned` per token.
   */
  signer: Signer
  /**
   * Where the current identity context is read from (default: `defaultContextStore`); a
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
  /**
   * One signature per event-loop turn (default true; design, "Batch profile"): the send calls
   * made in the same turn — on this producer and its transactions, whatever their identity
   * contexts — are signed together when the turn ends (`setImmediate`) or when `maxBatchRecords`
   * is reached. A call alone in its turn keeps the single profile (one self-contained token, as
   * with `false`); calls that share a turn share one batch-profile token (`idctx-batch+jwt`) and
   * each record also carries its context record (`idctx-ctx`) and proof (`idctx-proof`). Each call
   * is still its own client call, made in call order, with its own result or error. `false`:
   * every call signs its own token at once (no wait for the end of the turn).
   */
  batchProfile?: boolean
  /**
   * Most records one batch-profile token covers (default 1024, 2..1048576): a call that would
   * bring the turn's records above it signs what is pending first. A call is never split: a call
   * of more records is signed alone.
   */
  maxBatchRecords?: number
}

/**
 * Per-call options of a Kafka adapter's signing `send` (its second argument).
 *
 * @example
 * ```ts
 * const call: KafkaSendOptions = { context: { sub: 'u-7d2f', tid: 'acme', txn } }
 * await producer.send({ topic: 'orders', messages }, call)
 * await producer.send({ topic: 'heartbeats', messages: [{ value: 'ping' }] }, { unsigned: true })
 * ```
 */
export interface KafkaSendOptions {
  /** Sign with this context instead of the current one. */
  context?: IdentityContext
  /** Send these records as they are, without a token (they fail verification as `missing`). */
  unsigned?: true
}

/** Every option of {@link KafkaProducerOptions}. */
const PRODUCER_OPTIONS: readonly (keyof KafkaProducerOptions)[] = ['signer', 'contextStore', 'requireContext', 'traceparent', 'batchProfile', 'maxBatchRecords']
const SEND_OPTIONS: readonly (keyof KafkaSendOptions)[] = ['context', 'unsigned']
const SIGNER_HINT = 'it is an option of the signer: pass it to createSigner (@idctx/core), then the signer here'
/** Names that belong to createSigner, so a misplaced one gets a precise hint. */
const SIGNER_OPTIONS: Readonly<Record<string, string>> = Object.fromEntries(
  ['issuer', 'audience', 'key', 'lifetimeSeconds', 'maxLifetimeSeconds', 'maxActorDepth', 'allowHS256', 'clock', 'traceId', 'observer'].map((k) => [k, SIGNER_HINT]),
)

/**
 * The problems of a Kafka `wrapProducer`'s options ({@link KafkaProducerOptions}), never their
 * values: a key that is not an option (with a hint when it belongs to `createSigner`), and each
 * option of the wrong type or range. `extraKeys` are the adapter's own options, which it checks
 * itself. Throws a {@link ConfigError} at once when `options` is not an object.
 *
 * @example
 * ```ts
 * const issues = kafkaProducerOptionIssues(options, ['headerType'])
 * if (options.headerType !== undefined && options.headerType !== 'buffer') issues.push({ path: 'headerType', message: "'buffer' or 'string'" })
 * if (issues.length > 0) throw new ConfigError('producer options', issues)
 * ```
 */
export function kafkaProducerOptionIssues(options: KafkaProducerOptions, extraKeys: readonly string[] = []): OptionIssue[] {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('producer options', [{ path: '', message: 'an options object ({ signer, … })' }])
  }
  const issues = unknownOptions(options, [...PRODUCER_OPTIONS, ...extraKeys], { hints: SIGNER_OPTIONS })
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
  if (options.batchProfile !== undefined && typeof options.batchProfile !== 'boolean') {
    issues.push({ path: 'batchProfile', message: 'a boolean (false: one token per call, signed at once)' })
  }
  const max = options.maxBatchRecords
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 2 || max > 2 ** 20)) {
    issues.push({ path: 'maxBatchRecords', message: 'a whole number of records in 2..1048576' })
  }
  if (options.batchProfile === false && max !== undefined) {
    issues.push({ path: 'maxBatchRecords', message: 'only applies with batchProfile: true (the default)' })
  }
  return issues
}

/**
 * Refuses per-call options a Kafka adapter's `send` does not know (`{ contxt }` would otherwise
 * sign with the current context instead of the one meant) or of the wrong type, before anything
 * is sent: a {@link ConfigError} naming the paths, never the values. `shapeHint` completes the
 * message when the options are not an object.
 *
 * @example
 * ```ts
 * checkKafkaSendOptions({ contxt: ctx } as KafkaSendOptions) // throws ConfigError: unknown option 'contxt'; did you mean 'context'?
 * ```
 */
export function checkKafkaSendOptions(call: KafkaSendOptions, shapeHint = ''): void {
  if (typeof call !== 'object' || call === null) {
    throw new ConfigError('send options', [{ path: '', message: `an object ({ context } or { unsigned: true })${shapeHint}` }])
  }
  const issues = unknownOptions(call, SEND_OPTIONS)
  if (call.unsigned !== undefined && typeof call.unsigned !== 'boolean') issues.push({ path: 'unsigned', message: 'true, or leave it out' })
  if (call.context !== undefined && (typeof call.context !== 'object' || call.context === null)) {
    issues.push({ path: 'context', message: 'an IdentityContext ({ sub, tid, txn, … })' })
  }
  if (issues.length > 0) throw new ConfigError('send options', issues)
}
