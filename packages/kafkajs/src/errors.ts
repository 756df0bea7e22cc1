// Shared by every Kafka adapter: one class each, so `instanceof` works whatever client threw.
export { RecordRejectedError, DeadLetterError } from '@idctx/core'
