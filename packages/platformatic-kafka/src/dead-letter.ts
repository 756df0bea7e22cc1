import { kafkaDeadLetterBytes, kafkaDeadLetterHeaders, type ReasonCode } from '@idctx/core'
import type { MessageToProduce } from '@platformatic/kafka'
import { rawHeaderGroups, type RawRecord } from './raw-records.js'

/**
 * One rejected message on its way to the dead-letter topic.
 *
 * @example
 * ```ts
 * const entry: DeadLetterEntry = { topic: 'orders', partition: 0, offset: '7', record, reason: 'expired' }
 * await dlq.send({ messages: [deadLetterMessage('orders.idctx-dlq', entry)] })
 * ```
 */
export interface DeadLetterEntry {
  readonly topic: string
  readonly partition: number
  /** The offset as a decimal string. */
  readonly offset: string
  readonly record: RawRecord
  readonly reason: ReasonCode
}

/**
 * The dead-letter copy of a rejected message, for a producer with the default (Buffer)
 * serializers: the record's original key and value bytes and every original header (the
 * `idctx` carriers included, a repeated header kept repeated) plus `idctx-reject-reason` and the
 * original topic, partition and offset — core's `kafkaDeadLetterHeaders`, the rule
 * `@idctx/kafkajs` applies too. A header value that was null is written empty and listed in
 * `idctx-replaced-values`.
 *
 * @example
 * ```ts
 * const copy = deadLetterMessage('orders.idctx-dlq', { topic: 'orders', partition: 0, offset: '7', record, reason: 'expired' })
 * ```
 */
export function deadLetterMessage(target: string, entry: DeadLetterEntry): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  const names = rawHeaderGroups(entry.record)
  // Distinct Buffer keys: a Map keeps a repeated header as several entries, as on the wire.
  const headers = new Map<Buffer, Buffer>()
  for (const [name, values] of kafkaDeadLetterHeaders({ topic: entry.topic, partition: entry.partition, offset: entry.offset, reason: entry.reason, headers: names })) {
    for (const v of values) headers.set(Buffer.from(name, 'utf8'), typeof v === 'string' ? Buffer.from(v, 'utf8') : v)
  }
  const message: MessageToProduce<Buffer, Buffer, Buffer, Buffer> = { topic: target, headers }
  const key = kafkaDeadLetterBytes(entry.record.key)
  const value = kafkaDeadLetterBytes(entry.record.value)
  if (key !== null) message.key = Buffer.from(key)
  if (value !== null) message.value = Buffer.from(value)
  return message
}
