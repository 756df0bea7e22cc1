import {
  defaultContextStore,
  kafkaDestination,
  notify,
  type ContextStore,
  type Rejected,
  type VerifyResult,
} from '@idctx/core'
import type { KafkaMessage } from 'kafkajs'
import { defaultDeadLetterTopic, writeDeadLetters } from './dead-letter.js'
import { headerString, type RecordHeaders } from './headers.js'
import { coordinatesOf, createRecordCheck } from './record-check.js'
import type { RejectionPolicy, Violation, WrapConsumerOptions } from './types.js'

/** A record that failed verification. */
export interface Rejection {
  readonly topic: string
  readonly partition: number
  readonly message: KafkaMessage
  readonly result: Rejected
  readonly coordinates: string
}

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
  return { topic, partition, message, result, coordinates: coordinatesOf(topic, partition, message.offset) }
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
  const dlqTopicOf = options.deadLetter?.topic ?? defaultDeadLetterTopic
  const observer = options.observer

  const emit = (r: Rejection, p: RejectionPolicy, target: string | undefined) => {
    notify(observer, 'onDisposition', {
      reason: r.result.error.reason,
      destination: kafkaDestination(r.topic),
      policy: p,
      target,
      coordinates: r.coordinates,
      tokenSha256: r.result.tokenSha256,
      traceparent: headerString(r.message.headers as RecordHeaders, 'traceparent'),
    })
  }

  return {
    policy,
    store: options.contextStore ?? defaultContextStore,
    check,
    checkBatch,
    async deadLetter(rejections) {
      const first = rejections[0]
      if (first === undefined) return
      const producer = options.deadLetter?.producer
      if (producer === undefined) throw new TypeError('the dead-letter policy needs deadLetter.producer')
      const target = dlqTopicOf(first.topic)
      await writeDeadLetters(
        producer,
        target,
        rejections.map((r) => ({ topic: r.topic, partition: r.partition, message: r.message, reason: r.result.error.reason })),
      )
      for (const r of rejections) emit(r, 'dead-letter', target)
    },
    report(rejection, p) {
      emit(rejection, p, undefined)
    },
  }
}
