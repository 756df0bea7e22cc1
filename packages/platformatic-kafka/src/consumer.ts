import {
  ConfigError,
  createKafkaDispositions,
  createKafkaRecordCheck,
  defaultContextStore,
  kafkaConsumerOptionIssues,
  passThrough,
} from '@idctx/core'
import type { ConsumeOptions, Consumer } from '@platformatic/kafka'
import { deadLetterMessage } from './dead-letter.js'
import { headerEntries } from './headers.js'
import { createRawRecords, rawHeaderGroups } from './raw-records.js'
import type { AnyMessage, ConsumedRecord, ConsumerLike, IdctxMessagesStream, RejectionPolicy, WrapConsumerOptions } from './types.js'
import { createVerifiedStream } from './verified-stream.js'

function validate(o: Partial<WrapConsumerOptions>): void {
  const issues = kafkaConsumerOptionIssues(o, { producer: 'a @platformatic/kafka Producer' })
  if (issues.length > 0) throw new ConfigError('consumer options', issues)
}

/**
 * A consumer whose `consume` returns the verified stream; every other member is the consumer's own.
 *
 * @example
 * ```ts
 * const consumer: IdctxConsumer = wrapConsumer(new Consumer({ clientId: 'b', groupId: 'b', bootstrapBrokers }), { verifier, tenant: 'acme', policy: 'skip' })
 * ```
 */
export type IdctxConsumer<P extends RejectionPolicy = RejectionPolicy, C extends ConsumerLike = Consumer<Buffer, Buffer, Buffer, Buffer>> = Omit<C, 'consume'> & {
  /**
   * The client's `consume` (promise form), returning the verified stream. `autocommit` keeps its
   * meaning for the application — commit what was consumed — but the wrapper commits a message
   * only once it was handled (or dead-lettered, or skipped); `autocommit: false` leaves commits
   * to the application (`message.commit()`). `registry` is refused.
   */
  consume(options: Parameters<C['consume']>[0]): Promise<IdctxMessagesStream<P, any>>
}

/**
 * Wraps a `@platformatic/kafka` consumer so every message of `consume()` is verified before the
 * application sees it, with the checks, reason codes and policies of `@idctx/kafkajs`: every
 * occurrence of `idctx` (a repeated header — several Map entries under distinct Buffer keys — is
 * `duplicate`, an absent one `missing`, over the size cap `oversize`), of `idctx-proof` and of
 * `idctx-ctx` is read from the raw record, the leaf is recomputed from the topic and the exact
 * key and value bytes (whatever deserializers the application uses), and the destination, the
 * tenants, the per-topic requirements and the replay coordinates `topic/partition/offset` are
 * checked (core's `createKafkaRecordCheck`, shared with `@idctx/kafkajs`).
 *
 * The verified stream yields only verified messages (under `audit`, also violations), in order,
 * each with `identity`; `process(handler)` runs the handler inside that identity (and with no
 * identity for an audited violation), and `runInContext(message, fn)` does the same for a
 * `for await` loop. Rejected messages are dead-lettered (written and acknowledged before the next
 * message is read and before their offset can be committed), skipped, thrown on (`fail`) or
 * delivered with their violation (`audit`). Infrastructure failures (a store, a tenant resolver,
 * the dead-letter write) are thrown from the stream, and nothing past the message is committed.
 *
 * @example
 * ```ts
 * const consumer = wrapConsumer(new Consumer({ groupId: 'billing', clientId: 'billing', bootstrapBrokers }), {
 *   verifier,
 *   tenant: 'acme',
 *   deadLetter: { producer: dlqProducer },
 * })
 * const stream = await consumer.consume({ topics: ['orders'], mode: 'earliest' })
 * await stream.process(async (message) => {
 *   await bill(message.identity.tid, message.identity.sub, message.value) // inside the verified context
 * })
 * ```
 */
export function wrapConsumer<C extends ConsumerLike, P extends RejectionPolicy = 'dead-letter'>(consumer: C, options: WrapConsumerOptions<P>): IdctxConsumer<P, C> {
  validate(options as Partial<WrapConsumerOptions>)
  const policy = options.policy ?? 'dead-letter'
  // The record check and the dead-letter copy read the raw bytes the stream captured.
  const raw = createRawRecords()
  const records = createKafkaRecordCheck<ConsumedRecord>(options as WrapConsumerOptions, ({ topic, partition, message }) => {
    const record = raw.of(message.headers)
    const offset = String(message.offset)
    if (record === undefined) {
      // Not captured (cannot happen through consume() below): the delivered message, as it is.
      return { topic, partition, offset, key: message.key, value: message.value, occurrences: (name) => headerEntries(message.headers).filter(([n]) => n === name).map(([, v]) => v) }
    }
    let groups: Map<string, (Buffer | null)[]> | undefined
    return { topic, partition, offset, key: record.key, value: record.value, occurrences: (name) => (groups ??= rawHeaderGroups(record)).get(name) ?? [] }
  })
  const producer = options.deadLetter?.producer
  const dispositions = createKafkaDispositions<AnyMessage>({
    observer: options.observer,
    deadLetterTopic: options.deadLetter?.topic,
    write:
      producer === undefined
        ? undefined
        : (target, rejections) =>
            producer.send({
              // Acknowledged by every in-sync replica (ProduceAcks.ALL), as kafkajs's default: the
              // offset is committed once this resolves, and a leader-only ack (this client's
              // default) can be lost with the leader.
              acks: -1,
              messages: rejections.map((r) => {
                const record = raw.of(r.message.headers)
                if (record === undefined) throw new TypeError('no raw record for a rejected message')
                return deadLetterMessage(target, { topic: r.topic, partition: r.partition, offset: String(r.message.offset), record, reason: r.result.error.reason })
              }),
            }),
  })
  const store = options.contextStore ?? defaultContextStore

  return passThrough(consumer, {
    async consume(consumeOptions: ConsumeOptions<unknown, unknown, unknown, unknown>) {
      if (typeof consumeOptions !== 'object' || consumeOptions === null) throw new TypeError('consume needs an options object')
      if (typeof (arguments as unknown as unknown[])[1] === 'function') throw new TypeError('the callback form of consume is not wrapped: use the promise it returns')
      if (consumeOptions.registry !== undefined) {
        throw new ConfigError('consume options', [{ path: 'registry', message: 'not supported: idctx verifies the raw bytes; deserialize with deserializers instead' }])
      }
      if (consumeOptions.onCorruptedMessage !== undefined) {
        throw new ConfigError('consume options', [
          {
            path: 'onCorruptedMessage',
            message: 'not supported: a record a deserializer cannot read is verified first (a rejected one follows the policy, a verified one is thrown from the stream); dropping it would lose it unverified',
          },
        ])
      }
      const commitHandled = consumeOptions.autocommit !== false
      const stream = await consumer.consume({ ...consumeOptions, autocommit: false, deserializers: raw.capture(consumeOptions.deserializers as never) as never })
      return createVerifiedStream<P>(stream, { policy, store, records, dispositions }, raw, commitHandled)
    },
  }) as unknown as IdctxConsumer<P, C>
}
