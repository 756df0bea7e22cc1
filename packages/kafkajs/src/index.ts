export { wrapProducer } from './producer.js'
export type {
  WrapProducerOptions,
  SendOptions,
  SigningSender,
  KafkaSender,
  ProducerLike,
  IdctxProducer,
  IdctxTransaction,
} from './producer.js'
export { wrapConsumer } from './consumer.js'
export type {
  RejectionPolicy,
  ConsumedRecord,
  TenantOption,
  DeadLetterOptions,
  WrapConsumerOptions,
  Violation,
  VerifiedRecord,
  AuditedRecord,
  RecordVerdict,
  IdctxEachMessagePayload,
  IdctxBatchMessage,
  IdctxBatch,
  IdctxEachBatchPayload,
  IdctxRunConfig,
  ConsumerLike,
  IdctxConsumer,
} from './types.js'
export { RecordRejectedError, DeadLetterError } from './errors.js'
export { IdctxHeader, headerOccurrences, headerValues, headerString, hasIdctxHeaders, withoutIdctxHeaders } from './headers.js'
export type { RecordHeaders } from './headers.js'
export { defaultDeadLetterTopic, deadLetterRecord } from './dead-letter.js'
export type { DeadLetterEntry, ReplacedHeaderValue } from './dead-letter.js'
