import type { ReasonCode } from './reason-codes.js'

/**
 * Emitted once per signed token (one signature). Holds ids and hashes only, never the token,
 * a context record or payloads.
 *
 * @example
 * ```ts
 * const observer: IdctxObserver = {
 *   onSigned: (e: SignedEvent) => metrics.signed.add(e.count, { issuer: e.iss, profile: e.profile }),
 * }
 * const signer = createSigner({ issuer: 'orders', audience: 'shop', key, observer })
 * ```
 */
export interface SignedEvent {
  /**
   * `single`: a message token (`idctx+jwt`) of one identity context; `batch`: a batch-profile
   * token (`idctx-batch+jwt`, design "Batch profile") over the calls of one event-loop turn, each
   * with its own context; `grant`: a job scheduler grant.
   */
  readonly profile: 'single' | 'batch' | 'grant'
  /** The signer's issuer. */
  readonly iss: string
  /** The key that signed. */
  readonly kid: string
  /** The algorithm it signed with. */
  readonly alg: string
  /** The token's id. */
  readonly jti: string
  /** The transaction id; for a batch token, the one every call shares, else undefined. */
  readonly txn: string | undefined
  /** The tenant; for a batch token, the one every call shares, else undefined. */
  readonly tid: string | undefined
  /** The principal; for a batch token, the one every call shares, else undefined. */
  readonly sub: string | undefined
  /** Number of identity contexts (calls) the token covers: 1 except for a batch token. */
  readonly contexts: number
  /** Distinct destinations the token covers. */
  readonly destinations: readonly string[]
  /** Number of messages the token signs. */
  readonly count: number
  /** SHA-256 of the token, hex. */
  readonly tokenSha256: string
  /** The W3C trace id bound into the token, when any. */
  readonly trc: string | undefined
  /** Time spent signing, in milliseconds. */
  readonly durationMs: number
}

/**
 * Emitted for every message that passed verification.
 *
 * @example
 * ```ts
 * const observer: IdctxObserver = {
 *   onVerified: (e: VerifiedEvent) => metrics.verifyMs.record(e.durationMs, { issuer: e.iss, cached: e.cached }),
 * }
 * const verifier = createVerifier({ audience: 'shop', issuers, observer })
 * ```
 */
export interface VerifiedEvent {
  /** The token's issuer. */
  readonly iss: string
  /** The key that signed it. */
  readonly kid: string
  /** The token's id. */
  readonly jti: string
  /** The message's transaction id. */
  readonly txn: string
  /** The message's tenant. */
  readonly tid: string
  /** The message's principal. */
  readonly sub: string
  /** Where the message was verified: `kafka:<topic>` or `bullmq:<queue>/<name>`. */
  readonly destination: string
  /** SHA-256 of the token, hex. */
  readonly tokenSha256: string
  /** The W3C trace id the token carries, when any. */
  readonly trc: string | undefined
  /** The message's W3C traceparent as the adapter found it (unverified). */
  readonly traceparent: string | undefined
  /** True when the signature check was served from the verified-token cache. */
  readonly cached: boolean
  /** Time spent verifying, in milliseconds. */
  readonly durationMs: number
}

/**
 * Emitted for every message that failed verification. Ids are present when they were readable.
 *
 * @example
 * ```ts
 * const observer: IdctxObserver = {
 *   onRejected: (e: RejectedEvent) => metrics.rejected.add(1, { reason: e.reason, issuer: e.iss ?? 'unknown' }),
 * }
 * const verifier = createVerifier({ audience: 'shop', issuers, observer })
 * ```
 */
export interface RejectedEvent {
  /** Why the message was rejected (docs/reason-codes.md). */
  readonly reason: ReasonCode
  /** Where the message was delivered: `kafka:<topic>` or `bullmq:<queue>/<name>`. */
  readonly destination: string
  /** SHA-256 of the token, hex, when there was exactly one. */
  readonly tokenSha256: string | undefined
  /** The token's issuer, when readable. */
  readonly iss: string | undefined
  /**
   * The token's `aud`, when the signature was good enough to read claims: with `wrong_audience`,
   * the audience the producer signed for (an audience typo shows here).
   */
  readonly aud?: string | undefined
  /** The token's key id, when readable. */
  readonly kid: string | undefined
  /** The token's id, when readable. */
  readonly jti: string | undefined
  /** The transaction id, when readable. */
  readonly txn: string | undefined
  /** The tenant, when readable. */
  readonly tid: string | undefined
  /** The principal, when readable (hash it before logging). */
  readonly sub: string | undefined
  /** The `trc` claim, when the signature was good enough to read claims. */
  readonly trc: string | undefined
  /** The message's W3C traceparent as the adapter found it (unverified). */
  readonly traceparent: string | undefined
  /** Time spent verifying, in milliseconds. */
  readonly durationMs: number
}

/**
 * Emitted by adapters when a rejected message was dealt with by a rejection policy.
 *
 * @example
 * ```ts
 * const observer: IdctxObserver = {
 *   onDisposition: (e: DispositionEvent) => audit.write({ reason: e.reason, policy: e.policy, to: e.target, at: e.coordinates }),
 * }
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), { verifier, tenant: 'acme', deadLetter, observer })
 * ```
 */
export interface DispositionEvent {
  /** Why the message was rejected. */
  readonly reason: ReasonCode
  /** Where it was delivered: `kafka:<topic>` or `bullmq:<queue>/<name>`. */
  readonly destination: string
  /** The rejection policy that dealt with it. */
  readonly policy: 'dead-letter' | 'skip' | 'fail' | 'audit'
  /** Where it went: the DLQ topic, the failed-job set, or nowhere (skip). */
  readonly target: string | undefined
  /** Delivery coordinates: `topic/partition/offset` or `queue/jobId`. */
  readonly coordinates: string | undefined
  /** SHA-256 of the token, hex, when there was exactly one. */
  readonly tokenSha256: string | undefined
  /** The message's W3C traceparent as the adapter found it (unverified), to trace the disposition. */
  readonly traceparent: string | undefined
}

/**
 * Receives idctx events: count, trace and audit them. Every method is optional and a throwing
 * observer never breaks signing or verification. `@idctx/otel` provides one for OpenTelemetry.
 *
 * @example
 * ```ts
 * const observer: IdctxObserver = { onRejected: (e) => metrics.inc(e.reason) }
 * ```
 */
export interface IdctxObserver {
  onSigned?(event: SignedEvent): void
  onVerified?(event: VerifiedEvent): void
  onRejected?(event: RejectedEvent): void
  onDisposition?(event: DispositionEvent): void
}

/**
 * Fans events out to several observers, isolating each from the others' failures.
 *
 * @example
 * ```ts
 * const observer = combineObservers(otelObserver, auditLog)
 * ```
 */
export function combineObservers(...observers: (IdctxObserver | undefined)[]): IdctxObserver {
  const list = observers.filter((o): o is IdctxObserver => o !== undefined)
  return {
    onSigned: (e) => notify(list, 'onSigned', e),
    onVerified: (e) => notify(list, 'onVerified', e),
    onRejected: (e) => notify(list, 'onRejected', e),
    onDisposition: (e) => notify(list, 'onDisposition', e),
  }
}

/**
 * Calls one observer method, swallowing what it throws.
 *
 * @example
 * ```ts
 * notify([observer], 'onDisposition', event)
 * ```
 */
export function notify<K extends keyof IdctxObserver>(
  observers: readonly IdctxObserver[] | IdctxObserver | undefined,
  method: K,
  event: Parameters<NonNullable<IdctxObserver[K]>>[0],
): void {
  if (observers === undefined) return
  const list = Array.isArray(observers) ? observers : [observers as IdctxObserver]
  for (const o of list) {
    const fn = o[method] as ((e: typeof event) => void) | undefined
    if (fn === undefined) continue
    try {
      fn.call(o, event)
    } catch {
      // an observer must never break the message path
    }
  }
}
