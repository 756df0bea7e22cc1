export { ReasonCode, REASON_CODES, isReasonCode } from './reason-codes.js'
export { IdctxError, VerificationError, ConfigError, SigningError, KeyError, StoreError } from './errors.js'
export { claimsSchema, REQUIRED_CLAIMS, actorDepth } from './claims.js'
export type { IdctxClaims, ActorClaim, PrincipalType } from './claims.js'
export {
  ALGORITHMS,
  generateKey,
  importJwk,
  importPem,
  importSecret,
  exportPublicJwk,
  exportPrivateJwk,
  toJwks,
  jwkThumbprint,
} from './keys.js'
export type { Algorithm, IdctxKey, PublicJwk, Jwks } from './keys.js'
export { createKeySet, staticKeySource } from './key-set.js'
export { exportKeySet, importKeySet, advanceKeySet } from './key-set-document.js'
export type { KeySetDocument, AdvanceKeySetOptions, AdvancedKeySet } from './key-set-document.js'
export { jwksResponse, createJwksHandler } from './jwks-handler.js'
export type { JwksResponseOptions, JwksHttpResponse } from './jwks-handler.js'
export type { KeySet, KeySetOptions, KeySetState, RetiringKey, KeySource, IgnoredKey, IgnoredKeyReason, IgnoredKeyListener, StaticKeySourceOptions } from './key-set.js'
export { createRemoteJwks } from './remote-jwks.js'
export type { RemoteJwks, RemoteJwksOptions } from './remote-jwks.js'
export { hashLeaf, merkleRoot, merkleTree, rootFromProof, encodeProof, decodeProof } from './merkle.js'
export type { MerkleProof } from './merkle.js'
export {
  messageLeaf,
  batchLeaf,
  contextRecordHash,
  kafkaLeaf,
  bullmqLeaf,
  bullmqSchedulerLeaf,
  encodeDestinationComponent,
  kafkaDestination,
  bullmqDestination,
  httpDestination,
  httpLeaf,
  canonicalJobData,
} from './leaf.js'
export type { KafkaBytes } from './leaf.js'
export { createSigner } from './signer.js'
export type {
  Signer,
  SignerOptions,
  SignOptions,
  SignedToken,
  MessageBinding,
  PreparedContext,
  BatchCall,
  SignedBatch,
  SignedBatchCall,
} from './signer.js'
export {
  BATCH_TYP,
  BATCH_REQUIRED_CLAIMS,
  PER_MESSAGE_CLAIMS,
  CONTEXT_RECORD_REQUIRED,
  batchClaimsSchema,
  contextRecordSchema,
  mergeBatchClaims,
} from './batch-context.js'
export type { BatchClaims, ContextRecord } from './batch-context.js'
export { createTurnSigner } from './turn-signer.js'
export type { TurnSigner, TurnSignerOptions, TurnCall, SignedCall } from './turn-signer.js'
export { createVerifier } from './verifier.js'
export type {
  Verifier,
  VerifierOptions,
  VerifyInput,
  VerifyResult,
  Verified,
  Rejected,
  ExpectedTenant,
  IssuerKeys,
  ReadyReport,
} from './verifier.js'
export { isProducerAllowed, meetsRequirements } from './policies.js'
export type { ProducerAcl, ProducerGrant, Requirements } from './policies.js'
export { createMemoryRevocationStore, createMemoryReplayStore } from './stores.js'
export type {
  RevocationStore,
  MemoryRevocationStore,
  MemoryRevocationStoreOptions,
  ReplayStore,
  ReplayEntry,
  ReplayVerdict,
  MemoryReplayStoreOptions,
  RevocableId,
  TokenIds,
} from './stores.js'
export {
  createContextStore,
  defaultContextStore,
  runWithContext,
  currentContext,
  nextHopContext,
} from './context.js'
export type { IdentityContext, VerifiedContext, ContextStore } from './context.js'
export { combineObservers, notify } from './observer.js'
export type { IdctxObserver, SignedEvent, VerifiedEvent, RejectedEvent, DispositionEvent } from './observer.js'
export { createLogObserver, createConsoleLogger } from './log-observer.js'
export type { IdctxLogger, LogObserver, LogObserverOptions } from './log-observer.js'
export { unknownOptions, unknownOptionMessage, safeOptionName, isContextStore } from './option-checks.js'
export type { OptionIssue } from './option-checks.js'
export { parseOptions } from './lib/options.js'
export {
  KafkaHeader,
  KAFKA_CARRIER_HEADERS,
  isKafkaHeaderValue,
  kafkaHeaderBytes,
  kafkaCarrierValues,
} from './kafka-headers.js'
export { createKafkaRecordCheck, kafkaCoordinates } from './kafka-record-check.js'
export type { KafkaRecordView, KafkaRecordCheckOptions, KafkaRecordCheck } from './kafka-record-check.js'
export { kafkaDeadLetterTopic, kafkaDeadLetterHeaders, kafkaDeadLetterBytes } from './kafka-dead-letter.js'
export type { ReplacedHeaderValue, KafkaDeadLetterSource, KafkaDeadLetterHeader } from './kafka-dead-letter.js'
export { RecordRejectedError, DeadLetterError } from './kafka-errors.js'
export { createKafkaDispositions } from './kafka-disposition.js'
export type { KafkaRejectionPolicy, KafkaRejection, KafkaDispositionsOptions, KafkaDispositions } from './kafka-disposition.js'
export type { Violation, VerifiedRecord, AuditedRecord } from './kafka-verdicts.js'
export { passThrough } from './pass-through.js'
export { kafkaProducerOptionIssues, checkKafkaSendOptions } from './kafka-producer-options.js'
export type { KafkaProducerOptions, KafkaSendOptions } from './kafka-producer-options.js'
export { kafkaConsumerOptionIssues } from './kafka-consumer-options.js'
export type { KafkaConsumerClient } from './kafka-consumer-options.js'
