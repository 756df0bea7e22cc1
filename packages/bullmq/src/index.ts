export { wrapQueue } from './queue.js'
export type { SignedQueue, SignedQueueMembers } from './queue.js'
export { wrapFlowProducer } from './flow.js'
export type { SignedFlowProducer, SignedFlowProducerMembers } from './flow.js'
export { createProcessor, jobCoordinates } from './processor.js'
export { schedulerRunOf, runTxn } from './scheduler.js'
export { JobRejectedError } from './errors.js'
export { IDCTX_KEY, GRANT_PREFIX, encodeCarrier, encodeGrantCarrier, decodeCarrier } from './carrier.js'
export type { Carrier } from './carrier.js'
export { signableData, isPlainObject } from './job-data.js'
export type {
  SigningOptions,
  AddOptions,
  SchedulerOptions,
  SchedulerRun,
  ProcessorOptions,
  RejectionPolicy,
  JobIdentity,
  VerifiedJobContext,
  UnverifiedJobContext,
  IdctxProcessor,
  SignedJobData,
} from './types.js'
