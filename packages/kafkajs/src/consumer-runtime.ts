import {
  createKafkaDispositions,
  defaultContextStore,
  type ContextStore,
  type KafkaRejection,
  type Rejected,
  type VerifyResult,
} from '@idctx/core'
import type { KafkaMessage } from 'kafkajs'
import { deadLetterRecord } from './dead-letter.js'
import { headerString, type RecordHeaders } from './headers.js'
import { coordinatesOf, createRecordCheck } from './record-check.js'
import type { RejectionPolicy, Violation, WrapConsumerOptions } from './types.js'

/** A record that failed verification. */
export type Rejection = KafkaRejection<KafkaMessage>

/** What the `eachMessage` and `eachBatch` wrappers share: verification and rejection handling. */
export interface ConsumerRuntime {
  readonly policy: RejectionPolicy
  /** Where a verified record's context is entered (`run`) and every other path leaves all (`exit`). */
  readonly store: ContextStore
  /** Verifies a record; throws only for infrastructure failures (stores, resolvers). */
  check(topic: string, partition: number, message: KafkaMessage): Promise<VerifyResult>
  /** Verifies a fetched batch, one replay-store round trip for all of it; results in order. */
  checkBatch(topic: string, partition: number, messages: readonly KafkaMessage[]): Promise<VerifyResult[]>
  /** Writes rejected records of one topic-partition to the dead-letter topic, then reports them. */
  deadLetter(rejections: readonly Rejection[]): Promise<void>
  /** Reports a disposition other than dead-letter (skip, fail, audit). */
  report(rejection: Rejection, policy: Exclude<RejectionPolicy, 'dead-letter'>): void
}

/** A rejected record with its delivery coordinates (computed only here, for rejections). */
export function rejectionOf(topic: string, partition: number, message: KafkaMessage, result: Rejected): Rejection {
  return {
    topic,
    partition,
    message,
    result,
    coordinates: coordinatesOf(topic, partition, message.offset),
    traceparent: headerString(message.headers as RecordHeaders, 'traceparent'),
  }
}

/** The violation an audited handler receives. */
export function violationOf(rejection: Rejection): Violation {
  return {
    reason: rejection.result.error.reason,
    error: rejection.result.error,
    tokenSha256: rejection.result.tokenSha256,
  }
}

/** Builds the runtime from validated options. */
export function createConsumerRuntime(options: WrapConsumerOptions): ConsumerRuntime {
  const policy = options.policy ?? 'dead-letter'
  const { check, checkBatch } = createRecordCheck(options)
  const producer = options.deadLetter?.producer
  // The dead-letter write and the observer events are core's, shared with every Kafka adapter.
  const dispositions = createKafkaDispositions<KafkaMessage>({
    observer: options.observer,
    deadLetterTopic: options.deadLetter?.topic,
    write:
      producer === undefined
        ? undefined
        : (target, rejections) =>
            producer.send({
              topic: target,
              messages: rejections.map((r) => deadLetterRecord({ topic: r.topic, partition: r.partition, message: r.message, reason: r.result.error.reason })),
            }),
  })
  return {
    policy,
    store: options.contextStore ?? defaultContextStore,
    check,
    checkBatch,
    deadLetter: dispositions.deadLetter,
    report: dispositions.report,
  }
}
