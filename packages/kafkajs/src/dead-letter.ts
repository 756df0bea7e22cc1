import type { ReasonCode } from '@idctx/core'
import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { DeadLetterError } from './errors.js'
import { IdctxHeader } from './headers.js'
import type { KafkaSender } from './producer.js'

/** One rejected record on its way to the dead-letter topic. */
export interface DeadLetterEntry {
  readonly topic: string
  readonly partition: number
  readonly message: KafkaMessage
  readonly reason: ReasonCode
}

/**
 * The default dead-letter topic of a source topic: `${topic}.idctx-dlq`.
 *
 * @example
 * ```ts
 * defaultDeadLetterTopic('orders') // 'orders.idctx-dlq'
 * ```
 */
export function defaultDeadLetterTopic(topic: string): string {
  return `${topic}.idctx-dlq`
}

/**
 * The dead-letter copy of a rejected record: the same key, value and headers (the original
 * `idctx` header included, for forensics) plus `idctx-reject-reason` and the original topic,
 * partition and offset. The producer stamps a new timestamp, so the topic's time retention counts
 * from the rejection.
 *
 * @example
 * ```ts
 * const record = deadLetterRecord({ topic, partition, message, reason: 'expired' })
 * ```
 */
export function deadLetterRecord(entry: DeadLetterEntry): Message {
  const headers: IHeaders = {}
  const original = entry.message.headers as IHeaders | undefined | null
  if (original !== undefined && original !== null) {
    for (const name of Object.keys(original)) {
      const v = original[name]
      if (v !== undefined && v !== null) headers[name] = v
    }
  }
  headers[IdctxHeader.RejectReason] = entry.reason
  headers[IdctxHeader.OriginalTopic] = entry.topic
  headers[IdctxHeader.OriginalPartition] = String(entry.partition)
  headers[IdctxHeader.OriginalOffset] = entry.message.offset
  return { key: entry.message.key ?? null, value: entry.message.value ?? null, headers }
}

/**
 * Writes the rejected records of one source topic to its dead-letter topic in one `send` and
 * waits for the broker's acknowledgement (the producer's acks setting, kafkajs default: all
 * in-sync replicas). A failure becomes a {@link DeadLetterError}.
 */
export async function writeDeadLetters(producer: KafkaSender, deadLetterTopic: string, entries: readonly DeadLetterEntry[]): Promise<void> {
  if (entries.length === 0) return
  try {
    await producer.send({ topic: deadLetterTopic, messages: entries.map(deadLetterRecord) })
  } catch (e) {
    throw new DeadLetterError(
      deadLetterTopic,
      entries.map((x) => `${x.topic}/${x.partition}/${x.message.offset}`),
      e,
    )
  }
}
