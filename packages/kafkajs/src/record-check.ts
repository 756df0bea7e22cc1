import { createKafkaRecordCheck, kafkaCoordinates, type VerifyResult } from '@idctx/core'
import type { KafkaMessage } from 'kafkajs'
import { headerOccurrences, type RecordHeaders } from './headers.js'
import type { ConsumedRecord, WrapConsumerOptions } from './types.js'

/** Verifies one consumed record; throws only for infrastructure failures (stores, resolvers). */
export type RecordCheck = (topic: string, partition: number, message: KafkaMessage) => Promise<VerifyResult>

/**
 * Verifies the records of one fetched batch with one replay-store round trip
 * (`Verifier.verifyMany`); results in record order. Throws only for infrastructure failures.
 */
export type BatchCheck = (topic: string, partition: number, messages: readonly KafkaMessage[]) => Promise<VerifyResult[]>

/** `topic/partition/offset`: a record's delivery coordinates. */
export const coordinatesOf = kafkaCoordinates

/**
 * Builds the per-record and per-batch verification of a consumer from its options: core's shared
 * Kafka record check (`createKafkaRecordCheck`) over kafkajs's header object, where a repeated
 * key is an array and every element counts (see `headerOccurrences`).
 */
export function createRecordCheck(options: WrapConsumerOptions): { check: RecordCheck; checkBatch: BatchCheck } {
  const shared = createKafkaRecordCheck<ConsumedRecord>(options, ({ topic, partition, message }) => ({
    topic,
    partition,
    offset: message.offset,
    key: message.key,
    value: message.value,
    occurrences: (name) => headerOccurrences(message.headers as RecordHeaders, name),
  }))
  return {
    check: (topic, partition, message) => shared.check({ topic, partition, message }),
    checkBatch: (topic, partition, messages) => shared.checkBatch(messages.map((message) => ({ topic, partition, message }))),
  }
}
