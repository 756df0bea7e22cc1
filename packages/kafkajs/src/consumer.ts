import { ConfigError, kafkaConsumerOptionIssues, passThrough } from '@idctx/core'
import type { ConsumerRunConfig } from 'kafkajs'
import { createConsumerRuntime } from './consumer-runtime.js'
import { wrapEachBatch } from './each-batch.js'
import { wrapEachMessage, wrapEachMessageByBatch } from './each-message.js'
import type { ConsumerLike, IdctxConsumer, IdctxRunConfig, RejectionPolicy, WrapConsumerOptions } from './types.js'

function validate(options: WrapConsumerOptions): void {
  const issues = kafkaConsumerOptionIssues(options, { producer: 'a kafkajs Producer', extraKeys: ['eachMessageVerify'] })
  const mode = (options as Partial<WrapConsumerOptions>).eachMessageVerify
  if (mode !== undefined && mode !== 'batch' && mode !== 'record') issues.push({ path: 'eachMessageVerify', message: "'batch' or 'record'" })
  if (issues.length > 0) throw new ConfigError('consumer options', issues)
}

/**
 * Wraps a kafkajs consumer so every record is verified before a handler sees it. `run` takes the
 * usual configuration; `eachMessage` gets the kafkajs payload plus `identity` (the verified
 * context) and runs inside that context, so a producer from {@link wrapProducer} used in the
 * handler signs a new token with the same `sub`, `tid` and `txn` and itself on the actor chain.
 * `eachBatch` gets a batch view without rejected records, each message carrying its `identity`,
 * and `runInContext(message, fn)` to run per-record code in that record's context.
 *
 * A handler never inherits the identity around the consumer (e.g. a `run()` started inside
 * `runWithContext`): only `eachMessage` for a verified record and `runInContext` for a verified
 * message run inside a context — that record's. The `eachBatch` handler, the `audit` handler of a
 * rejected record and everything else the wrapper runs have no context (`contextStore.exit`), so
 * a wrapped producer used there throws `SigningError` instead of signing as someone else.
 *
 * For each record the wrapper reads every occurrence of the `idctx` header, whatever its value
 * (so `[token, null]` is `duplicate`, an absent header `missing`, a lone null value an empty token:
 * `missing`), of `idctx-proof` (two are `binding_mismatch`) and of `idctx-ctx` (the context
 * record of a batch-profile record: none with a batch token, or one with a single-profile token, is
 * `malformed`; two are `duplicate`), recomputes the leaf from the topic, key and value actually
 * delivered, and verifies — with the record's own identity under the batch profile — destination
 * `kafka:<topic>`, the expected
 * tenant, the payload tenant, per-topic requirements and (with a replay store) coordinates
 * `topic/partition/offset` — a redelivery at the same coordinates is not a replay.
 *
 * Rejected records follow `policy` (default `dead-letter`); see {@link RejectionPolicy} and
 * docs/kafkajs.md for the offset semantics. Every rejection emits `observer.onDisposition`.
 * Infrastructure failures (a revocation or replay store throwing, a tenant resolver throwing,
 * the dead-letter write failing) are thrown, so kafkajs retries the record instead of
 * dead-lettering a message that did nothing wrong.
 *
 * Options are checked here: a missing or wrong option, or an unknown key (misspelt, or one of the
 * verifier's such as `replay`), throws `ConfigError` (`ERR_IDCTX_CONFIG`) naming each path and its
 * fix, e.g. `unknown option 'replayStore'; it is an option of the verifier: …`.
 *
 * The returned object is a view of the consumer: `connect`, `subscribe`, `disconnect`, `on`,
 * `events`, `seek`, `pause` and the rest are the consumer's own.
 *
 * @example
 * ```ts
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), {
 *   verifier,
 *   tenant: 'acme',
 *   deadLetter: { producer: dlqProducer },
 * })
 * await consumer.connect()
 * await consumer.subscribe({ topics: ['orders'] })
 * await consumer.run({
 *   eachMessage: async ({ message, identity }) => {
 *     await bill(identity.tid, identity.sub, message.value)
 *     await producer.send({ topic: 'invoices', messages: [{ value: '…' }] }) // carries the context on
 *   },
 * })
 * ```
 */
export function wrapConsumer<C extends ConsumerLike, P extends RejectionPolicy = 'dead-letter'>(
  consumer: C,
  options: WrapConsumerOptions<P>,
): IdctxConsumer<P, C> {
  validate(options as WrapConsumerOptions)
  const runtime = createConsumerRuntime(options as WrapConsumerOptions)
  const byBatch = (options.eachMessageVerify ?? (isKafkajsConsumer(consumer) && !isInstrumented(consumer) ? 'batch' : 'record')) === 'batch'
  return passThrough(consumer, {
    run(config: IdctxRunConfig<P> = {}): Promise<void> {
      const { eachMessage, eachBatch, ...rest } = config
      const kafkaConfig: ConsumerRunConfig = { ...rest }
      if (eachMessage !== undefined && byBatch) {
        // kafkajs's own eachMessage loop, run as an eachBatch: a fetched batch is verified at once.
        // (kafkajs ignores eachBatch when eachMessage is given, so dropping it changes nothing.)
        kafkaConfig.eachBatch = wrapEachMessageByBatch(eachMessage, runtime, {
          autoCommit: rest.autoCommit ?? true,
          isPaused: (topic, partition) => isPaused(consumer, topic, partition),
        })
        kafkaConfig.eachBatchAutoResolve = false
        return consumer.run(kafkaConfig)
      }
      if (eachMessage !== undefined) kafkaConfig.eachMessage = wrapEachMessage(eachMessage, runtime)
      else if (eachBatch !== undefined) {
        kafkaConfig.eachBatch = wrapEachBatch(eachBatch, runtime, rest.eachBatchAutoResolve ?? true)
      }
      return consumer.run(kafkaConfig)
    },
  }) as unknown as IdctxConsumer<P, C>
}

/**
 * kafkajs's `kafka.consumer()` returns a plain object; other clients with a KafkaJS-compatible API
 * (the Confluent client) return class instances whose `eachBatch` has other batching rules.
 */
function isKafkajsConsumer(consumer: ConsumerLike): boolean {
  const c = consumer as Partial<Record<'describeGroup' | 'paused', unknown>>
  return Object.getPrototypeOf(consumer) === Object.prototype && typeof c.describeGroup === 'function' && typeof c.paused === 'function'
}

/**
 * An instrumentation wraps `consumer.run` (OpenTelemetry's instrumentation-kafkajs does, through
 * its shimmer, which marks the wrapper `__wrapped`) to open a span around each `eachMessage` call:
 * turning `eachMessage` into an `eachBatch` would lose those per-message spans and their context.
 */
function isInstrumented(consumer: ConsumerLike): boolean {
  return (consumer.run as { __wrapped?: unknown }).__wrapped === true
}

function isPaused(consumer: ConsumerLike, topic: string, partition: number): boolean {
  const paused = (consumer as { paused?: () => { topic: string; partitions: number[] }[] }).paused
  if (typeof paused !== 'function') return false
  for (const tp of paused.call(consumer)) if (tp.topic === topic && tp.partitions.includes(partition)) return true
  return false
}
