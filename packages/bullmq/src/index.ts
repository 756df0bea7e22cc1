export { wrapQueue } from './queue.js'
export type { SignedQueue, SignedQueueMembers } from './queue.js'
export { wrapFlowProducer } from './flow.js'
export type { SignedFlowProducer, SignedFlowProducerMembers } from './flow.js'
export { createProcessor } from './processor.js'
export { JobRejectedError } from './errors.js'
export { IDCTX_KEY, encodeCarrier, decodeCarrier } from './carrier.js'
export type { Carrier } from './carrier.js'
export { signableData, isPlainObject } from './job-data.js'
export type {
  SigningOptions,
  AddOptions,
  ProcessorOptions,
  RejectionPolicy,
  SchedulerContext,
  SchedulerIdentity,
  JobIdentity,
  VerifiedJobContext,
  UnverifiedJobContext,
  IdctxProcessor,
  SignedJobData,
} from './types.js'
