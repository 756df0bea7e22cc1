export { wrapProducer } from './producer.js'
export type { WrapProducerOptions, SendOptions, ProducerLike, IdctxProducer } from './producer.js'
export { wrapConsumer } from './consumer.js'
export type { IdctxConsumer } from './consumer.js'
export type {
  RejectionPolicy,
  AnyMessage,
  ConsumedRecord,
  TenantOption,
  DeadLetterSender,
  DeadLetterOptions,
  WrapConsumerOptions,
  Violation,
  VerifiedRecord,
  AuditedRecord,
  RecordVerdict,
  IdctxMessage,
  IdctxMessagesStream,
  ConsumerLike,
} from './types.js'
export { IdctxHeader, headerOccurrences, headerString, hasIdctxHeaders, withoutIdctxHeaders } from './headers.js'
export type { RecordHeaders } from './headers.js'
export { deadLetterMessage } from './dead-letter.js'
export type { DeadLetterEntry } from './dead-letter.js'
export type { RawRecord } from './raw-records.js'
export { RecordRejectedError, DeadLetterError, kafkaDeadLetterTopic as defaultDeadLetterTopic } from '@idctx/core'
