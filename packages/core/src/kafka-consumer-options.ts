import { ConfigError } from './errors.js'
import { isContextStore, unknownOptions, type OptionIssue } from './option-checks.js'

/** The rejection policies of a Kafka adapter's consumer. */
const POLICIES: readonly string[] = ['dead-letter', 'skip', 'fail', 'audit']
/** The options every Kafka adapter's `wrapConsumer` takes; an adapter may add its own. */
const CONSUMER_OPTIONS: readonly string[] = ['verifier', 'tenant', 'payloadTenant', 'requirements', 'policy', 'deadLetter', 'contextStore', 'observer', 'redriveGraceSeconds']
const DEAD_LETTER_OPTIONS: readonly string[] = ['producer', 'topic']
const VERIFIER_HINT = 'it is an option of the verifier: pass it to createVerifier (@idctx/core), then the verifier here'
/** Names that belong to createVerifier, so a misplaced one gets a precise hint. */
const VERIFIER_OPTIONS: Readonly<Record<string, string>> = Object.fromEntries(
  ['replay', 'replayStore', 'revocation', 'revocationStore', 'audience', 'issuers', 'producerAcl', 'algorithms', 'clockToleranceSeconds', 'maxTokenBytes', 'maxLifetimeSeconds'].map((k) => [k, VERIFIER_HINT]),
)
/** The marks of the adapters' signing producers: such a producer would re-sign dead-letter copies. */
const SIGNING_PRODUCERS: readonly symbol[] = [Symbol.for('@idctx/kafkajs.signing-producer'), Symbol.for('@idctx/platformatic-kafka.signing-producer')]

/**
 * What a Kafka adapter says about its client in {@link kafkaConsumerOptionIssues}: the name of
 * its producer, for the `deadLetter.producer` message, and its own option names.
 *
 * @example
 * ```ts
 * const client: KafkaConsumerClient = { producer: 'a kafkajs Producer', extraKeys: ['eachMessageVerify'] }
 * ```
 */
export interface KafkaConsumerClient {
  /** How the expected dead-letter producer is named in an issue, e.g. `'a kafkajs Producer'`. */
  readonly producer: string
  /** The adapter's own option names, which it checks itself. */
  readonly extraKeys?: readonly string[]
}

/**
 * The problems of a Kafka `wrapConsumer`'s options, never their values: a key that is not an
 * option (with a hint when it belongs to `createVerifier`), `verifier`, `tenant` (an id, a list
 * of ids, `{ any: true }` or a function), `payloadTenant`, `requirements`, `policy` (one of
 * `dead-letter`, `skip`, `fail`, `audit`), `deadLetter` (required by the `dead-letter` policy: a
 * plain producer — never a signing one from either Kafka adapter — and an optional topic
 * function), `contextStore`, `redriveGraceSeconds` (0..86400 s) and `observer`. Throws a
 * {@link ConfigError} at once when `options` is not an object.
 *
 * @example
 * ```ts
 * const issues = kafkaConsumerOptionIssues(options, { producer: 'a kafkajs Producer', extraKeys: ['eachMessageVerify'] })
 * if (issues.length > 0) throw new ConfigError('consumer options', issues)
 * ```
 */
export function kafkaConsumerOptionIssues(options: object, client: KafkaConsumerClient): OptionIssue[] {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('consumer options', [{ path: '', message: 'an options object ({ verifier, tenant, … })' }])
  }
  const o = options as Record<string, unknown>
  const issues = unknownOptions(o, [...CONSUMER_OPTIONS, ...(client.extraKeys ?? [])], { hints: VERIFIER_OPTIONS })
  if (typeof (o.verifier as { verify?: unknown } | undefined)?.verify !== 'function') issues.push({ path: 'verifier', message: 'a Verifier (createVerifier)' })
  const t = o.tenant
  const tenantOk =
    (typeof t === 'string' && t.length > 0) ||
    (Array.isArray(t) && t.every((x) => typeof x === 'string' && x.length > 0)) ||
    typeof t === 'function' ||
    (typeof t === 'object' && t !== null && (t as { any?: unknown }).any === true)
  if (!tenantOk) issues.push({ path: 'tenant', message: 'a tenant id, a list of them, { any: true } or a function' })
  if (o.payloadTenant !== undefined && typeof o.payloadTenant !== 'function') issues.push({ path: 'payloadTenant', message: 'a function' })
  if (o.requirements !== undefined && (typeof o.requirements !== 'object' || o.requirements === null) && typeof o.requirements !== 'function') {
    issues.push({ path: 'requirements', message: 'a map of topic to requirements, or a function' })
  }
  const policy = o.policy ?? 'dead-letter'
  if (typeof policy !== 'string' || !POLICIES.includes(policy)) issues.push({ path: 'policy', message: `one of ${POLICIES.join(', ')}` })
  const deadLetter = o.deadLetter
  if (deadLetter !== undefined && (typeof deadLetter !== 'object' || deadLetter === null)) {
    issues.push({ path: 'deadLetter', message: 'an object ({ producer, topic? })' })
  } else if (deadLetter !== undefined) {
    const d = deadLetter as { producer?: unknown; topic?: unknown }
    issues.push(...unknownOptions(d, DEAD_LETTER_OPTIONS, { prefix: 'deadLetter' }))
    const producer = d.producer as Record<PropertyKey, unknown> | undefined
    if (typeof producer?.send !== 'function') issues.push({ path: 'deadLetter.producer', message: client.producer })
    else if (SIGNING_PRODUCERS.some((mark) => producer[mark] === true)) {
      issues.push({ path: 'deadLetter.producer', message: 'a plain producer, not one from wrapProducer (it would re-sign)' })
    }
    if (d.topic !== undefined && typeof d.topic !== 'function') issues.push({ path: 'deadLetter.topic', message: 'a function of the source topic' })
  } else if (policy === 'dead-letter') {
    issues.push({ path: 'deadLetter', message: 'required by the dead-letter policy ({ producer })' })
  }
  if (o.contextStore !== undefined && !isContextStore(o.contextStore)) issues.push({ path: 'contextStore', message: 'a ContextStore (run, current and exit)' })
  const grace = o.redriveGraceSeconds
  if (grace !== undefined && (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0 || grace > 86_400)) {
    issues.push({ path: 'redriveGraceSeconds', message: 'an integer number of seconds from 0 to 86400' })
  }
  if (o.observer !== undefined && (typeof o.observer !== 'object' || o.observer === null)) issues.push({ path: 'observer', message: 'an IdctxObserver object' })
  return issues
}
