import type { ReasonCode } from './reason-codes.js'

/**
 * Emitted once per signed token (one signature). Holds ids and hashes only, never the token,
 * a context record or payloads.
 */
export interface SignedEvent {
  /**
   * `single`: a message token (`idctx+jwt`) of one identity context; `batch`: a batch-profile
   * token (`idctx-batch+jwt`, design "Batch profile") over the calls of one event-loop turn, each
   * with its own context; `grant`: a job scheduler grant.
   */
  readonly profile: 'single' | 'batch' | 'grant'
  readonly iss: string
  readonly kid: string
  readonly alg: string
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
  readonly tokenSha256: string
  readonly trc: string | undefined
  readonly durationMs: number
}

/** Emitted for every message that passed verification. */
export interface VerifiedEvent {
  readonly iss: string
  readonly kid: string
  readonly jti: string
  readonly txn: string
  readonly tid: string
  readonly sub: string
  readonly destination: string
  readonly tokenSha256: string
  readonly trc: string | undefined
  /** The message's W3C traceparent as the adapter found it (unverified). */
  readonly traceparent: string | undefined
  /** True when the signature check was served from the verified-token cache. */
  readonly cached: boolean
  readonly durationMs: number
}

/** Emitted for every message that failed verification. Ids are present when they were readable. */
export interface RejectedEvent {
  readonly reason: ReasonCode
  readonly destination: string
  readonly tokenSha256: string | undefined
  readonly iss: string | undefined
  /**
   * The token's `aud`, when the signature was good enough to read claims: with `wrong_audience`,
   * the audience the producer signed for (an audience typo shows here).
   */
  readonly aud?: string | undefined
  readonly kid: string | undefined
  readonly jti: string | undefined
  readonly txn: string | undefined
  readonly tid: string | undefined
  readonly sub: string | undefined
  /** The `trc` claim, when the signature was good enough to read claims. */
  readonly trc: string | undefined
  /** The message's W3C traceparent as the adapter found it (unverified). */
  readonly traceparent: string | undefined
  readonly durationMs: number
}

/** Emitted by adapters when a rejected message was dealt with by a rejection policy. */
export interface DispositionEvent {
  readonly reason: ReasonCode
  readonly destination: string
  readonly policy: 'dead-letter' | 'skip' | 'fail' | 'audit'
  /** Where it went: the DLQ topic, the failed-job set, or nowhere (skip). */
  readonly target: string | undefined
  /** Delivery coordinates: `topic/partition/offset` or `queue/jobId`. */
  readonly coordinates: string | undefined
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
