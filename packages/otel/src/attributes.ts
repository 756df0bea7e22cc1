/**
 * Every span attribute, span event, span name and metric name `@idctx/otel` writes. OpenTelemetry
 * messaging semantic conventions are used where one exists; everything else has the `idctx.`
 * prefix. Values are ids and hashes only — never a token, a key or a payload value.
 *
 * @example
 * ```ts
 * import { IdctxAttributes } from '@idctx/otel'
 * span.attributes[IdctxAttributes.Reason] // 'expired'
 * ```
 */
export const IdctxAttributes = {
  /** `tid`: the tenant the token is scoped to. */
  Tenant: 'idctx.tenant',
  /** `txn`: the transaction id, stable across the whole chain. */
  Txn: 'idctx.txn',
  /** `iss`: the producing workload. */
  Producer: 'idctx.producer',
  /** `sub`, hashed by default (see `userId`); absent with `userId: 'omit'`. */
  User: 'idctx.user',
  /** `jti` of the token. */
  Jti: 'idctx.jti',
  /** `kid` of the key that signed the token (a key id, never key material). */
  KeyId: 'idctx.key.id',
  /** SHA-256 of the compact token, hex: the only way a token appears anywhere. */
  TokenSha256: 'idctx.token.sha256',
  /** The destination string of the token: `kafka:<topic>` or `bullmq:<queue>/<jobName>`. */
  Destination: 'idctx.destination',
  /** Every distinct destination one token covers, when it covers more than one. */
  Destinations: 'idctx.destinations',
  /** How many messages one token signs. */
  MessageCount: 'idctx.message.count',
  /** `accepted` or `rejected`. */
  Result: 'idctx.result',
  /** The stable reason code of a rejection. */
  Reason: 'idctx.reason',
  /** Whether the signature check was served from the verifier's token cache. */
  CacheHit: 'idctx.cache.hit',
  /** The `trc` claim: trace id of the span that signed the token. */
  Trc: 'idctx.trc',
  /** True when the message's `traceparent` belongs to another trace than its signed `trc`. */
  TrcMismatch: 'idctx.trc.mismatch',
  /** The trace id of the creation context, when it could not be added as a span link. */
  LinkTraceId: 'idctx.link.trace_id',
  /** The rejection policy that dealt with a rejected message. */
  Policy: 'idctx.policy',
  /** Where a rejected message went (the DLQ topic, the failed-job set). */
  DispositionTarget: 'idctx.disposition.target',
  /** Delivery coordinates of a rejected message: `topic/partition/offset` or `queue/jobId`. */
  DispositionCoordinates: 'idctx.disposition.coordinates',
} as const

/**
 * The OpenTelemetry messaging semantic-convention attributes `@idctx/otel` sets — only on the
 * spans it creates itself; a span someone else owns keeps its own messaging attributes.
 *
 * @example
 * ```ts
 * span.attributes[MessagingAttributes.DestinationName] // 'orders'
 * ```
 */
export const MessagingAttributes = {
  /** `kafka`, or `bullmq` (not a registered value; BullMQ has none). */
  System: 'messaging.system',
  /** The Kafka topic or the BullMQ queue. */
  DestinationName: 'messaging.destination.name',
  /** `create` for signing, `process` for verifying, `settle` for a rejection's disposition. */
  OperationType: 'messaging.operation.type',
  /** Number of messages one signed token covers, when more than one. */
  BatchMessageCount: 'messaging.batch.message_count',
} as const

/**
 * Names of the span events `@idctx/otel` adds.
 *
 * @example
 * ```ts
 * span.events.find((e) => e.name === IdctxEvents.Rejected)
 * ```
 */
export const IdctxEvents = {
  /** On an annotated span, one per token signed inside it (a span may sign several). */
  Signed: 'idctx.signed',
  /** A message failed verification: `{ idctx.reason, idctx.destination }`. */
  Rejected: 'idctx.rejected',
  /** The message's `traceparent` and its signed `trc` name different traces. */
  TrcMismatch: 'idctx.trc_mismatch',
  /** A rejection policy dealt with a rejected message. */
  Disposition: 'idctx.disposition',
} as const

/**
 * Names of the spans `@idctx/otel` creates when no span is active to annotate.
 *
 * @example
 * ```ts
 * spans.filter((s) => s.name === IdctxSpanNames.Sign)
 * ```
 */
export const IdctxSpanNames = {
  Sign: 'idctx sign',
  /** Followed by a space and the destination: `idctx verify kafka:orders`. */
  Verify: 'idctx verify',
  /** Followed by a space and the destination. */
  Disposition: 'idctx disposition',
} as const

/**
 * Names of the metric instruments `@idctx/otel` records.
 *
 * @example
 * ```ts
 * metrics.find((m) => m.descriptor.name === IdctxMetrics.Verifications)
 * ```
 */
export const IdctxMetrics = {
  /** Counter, one per signed token: `{ idctx.producer, idctx.destination? }`. */
  Signatures: 'idctx.signatures',
  /** Counter, one per verified or rejected message: `{ idctx.result, idctx.reason?, idctx.destination }`. */
  Verifications: 'idctx.verifications',
  /** Histogram in ms: `{ idctx.result }`. */
  VerifyDuration: 'idctx.verify.duration',
  /** Counter, one per accepted message: `{ idctx.cache.hit }`. Hit ratio = hits / total. */
  VerifyCache: 'idctx.verify.cache',
  /** Counter, one per disposition: `{ idctx.policy, idctx.reason, idctx.destination }`. */
  RejectionsHandled: 'idctx.rejections.handled',
} as const
