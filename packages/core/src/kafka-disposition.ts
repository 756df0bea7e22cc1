import { DeadLetterError } from './kafka-errors.js'
import { kafkaDeadLetterTopic } from './kafka-dead-letter.js'
import { kafkaDestination } from './leaf.js'
import { notify, type IdctxObserver } from './observer.js'
import type { Rejected } from './verifier.js'

/**
 * The policies of a Kafka consumer wrapper for a record that fails verification.
 *
 * @example
 * ```ts
 * const policy: KafkaRejectionPolicy = 'dead-letter' // or 'skip', 'fail', 'audit'
 * ```
 */
export type KafkaRejectionPolicy = 'dead-letter' | 'skip' | 'fail' | 'audit'

/**
 * A Kafka record that failed verification; `M` is the adapter's message.
 *
 * @example
 * ```ts
 * const rejection: KafkaRejection<MyMessage> = {
 *   topic, partition, message, result, coordinates: kafkaCoordinates(topic, partition, offset), traceparent: undefined,
 * }
 * ```
 */
export interface KafkaRejection<M> {
  readonly topic: string
  readonly partition: number
  readonly message: M
  readonly result: Rejected
  /** `topic/partition/offset`. */
  readonly coordinates: string
  /** The record's `traceparent` header (unverified), for the observer. */
  readonly traceparent: string | undefined
}

/**
 * Options of {@link createKafkaDispositions}.
 *
 * @example
 * ```ts
 * const options: KafkaDispositionsOptions<MyMessage> = {
 *   observer,
 *   deadLetterTopic: (topic) => `${topic}.rejected`,
 *   write: (target, rejections) => producer.send({ messages: rejections.map((r) => copyOf(target, r)) }),
 * }
 * ```
 */
export interface KafkaDispositionsOptions<M> {
  readonly observer?: IdctxObserver | undefined
  /** The dead-letter topic of a source topic (default `${topic}.idctx-dlq`). */
  readonly deadLetterTopic?: ((topic: string) => string) | undefined
  /**
   * Writes the rejected records of one source topic to `target` and resolves once the broker
   * acknowledged them; undefined when the consumer has no dead-letter producer.
   */
  readonly write?: ((target: string, rejections: readonly KafkaRejection<M>[]) => Promise<unknown>) | undefined
}

/**
 * What a Kafka consumer wrapper does with rejected records, whatever its client.
 *
 * @example
 * ```ts
 * const dispositions: KafkaDispositions<MyMessage> = createKafkaDispositions({ observer, write })
 * await dispositions.deadLetter([rejection]) // acknowledged, then onDisposition
 * dispositions.report(rejection, 'skip')
 * ```
 */
export interface KafkaDispositions<M> {
  /**
   * Writes rejected records of one topic to the dead-letter topic and waits for the
   * acknowledgement, then reports each (`onDisposition`); a failed write throws
   * {@link DeadLetterError} and reports nothing.
   */
  deadLetter(rejections: readonly KafkaRejection<M>[]): Promise<void>
  /** Reports a disposition other than dead-letter (skip, fail, audit). */
  report(rejection: KafkaRejection<M>, policy: Exclude<KafkaRejectionPolicy, 'dead-letter'>): void
}

/**
 * The dead-letter write and the observer events every Kafka consumer wrapper shares, so a
 * rejected record is reported the same way whatever client consumed it.
 *
 * @example
 * ```ts
 * const dispositions = createKafkaDispositions({ observer, write: (target, rs) => producer.send(…) })
 * await dispositions.deadLetter([rejection]) // written and acknowledged, then reported
 * ```
 */
export function createKafkaDispositions<M>(options: KafkaDispositionsOptions<M>): KafkaDispositions<M> {
  const targetOf = options.deadLetterTopic ?? kafkaDeadLetterTopic
  const emit = (r: KafkaRejection<M>, policy: KafkaRejectionPolicy, target: string | undefined) =>
    notify(options.observer, 'onDisposition', {
      reason: r.result.error.reason,
      destination: kafkaDestination(r.topic),
      policy,
      target,
      coordinates: r.coordinates,
      tokenSha256: r.result.tokenSha256,
      traceparent: r.traceparent,
    })
  return {
    async deadLetter(rejections) {
      const first = rejections[0]
      if (first === undefined) return
      const write = options.write
      if (write === undefined) throw new TypeError('the dead-letter policy needs deadLetter.producer')
      const target = targetOf(first.topic)
      try {
        // A dead-letter topic that is a source topic of the rejections would feed every copy
        // (still carrying its rejected token) back to this consumer: rejected again, written
        // again, forever. Refused before anything is written.
        if (rejections.some((r) => r.topic === target)) throw new TypeError(`the dead-letter topic of ${first.topic} is ${target} itself`)
        await write(target, rejections)
      } catch (e) {
        throw new DeadLetterError(
          target,
          rejections.map((r) => r.coordinates),
          e,
        )
      }
      for (const r of rejections) emit(r, 'dead-letter', target)
    },
    report(rejection, policy) {
      emit(rejection, policy, undefined)
    },
  }
}
