import {
  context as contextApi,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type AttributeValue,
  type Context,
  type Link,
  type Meter,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api'
import type { DispositionEvent, IdctxObserver, RejectedEvent, SignedEvent, VerifiedEvent } from '@idctx/core'
import { IdctxAttributes as A, IdctxEvents, IdctxSpanNames, MessagingAttributes } from './attributes.js'
import { messagingAttributes } from './lib/destination.js'
import { instrumentSource } from './lib/instruments.js'
import { contextFromTraceparent, parseTraceparent } from './traceparent.js'
import { createUserIdAttribute, type UserIdMode } from './user-id.js'
import { SCOPE_NAME, SCOPE_VERSION } from './version.js'

/**
 * What to do when a message's `traceparent` names another trace than its signed `trc`.
 *
 * @example
 * ```ts
 * const trcMismatch: TrcMismatchMode = 'error' // mark the span as failed, still accept the message
 * const observer = createOtelObserver({ trcMismatch })
 * ```
 */
export type TrcMismatchMode = 'record' | 'error'

/**
 * Options of {@link createOtelObserver}.
 *
 * Invalid or unknown options throw a `ConfigError` (`ERR_IDCTX_CONFIG`) from `createOtelObserver`.
 *
 * @example
 * ```ts
 * const observer = createOtelObserver({
 *   tracer: trace.getTracer('billing'),
 *   meter: metrics.getMeter('billing'),
 *   userId: 'hash',
 *   userIdSalt: process.env.IDCTX_USER_SALT,
 *   trcMismatch: 'record',
 *   annotateActiveSpan: true,
 * })
 * const verifier = createVerifier({ audience: 'shop', issuers, observer })
 * ```
 */
export interface OtelObserverOptions {
  /** Default: the global tracer provider's `@idctx/otel` tracer (a proxy: late SDK setup is fine). */
  tracer?: Tracer
  /** Default: the global meter provider's `@idctx/otel` meter, looked up again when the provider changes. */
  meter?: Meter
  /**
   * How `sub` appears in `idctx.user`: `hash` (default; HMAC-SHA-256 with `userIdSalt`, or
   * SHA-256 without, truncated to 128 bits), `raw`, or `omit`.
   */
  userId?: UserIdMode
  /** Secret salt of the `hash` mode. Without one a guessable `sub` can be recovered from its hash. */
  userIdSalt?: string | Uint8Array
  /**
   * `record` (default): attribute `idctx.trc.mismatch` and event `idctx.trc_mismatch`, nothing
   * else. `error`: the same, and the span's status becomes ERROR. Never fatal: the verifier
   * decides acceptance; a `traceparent` is unsigned and tracing must not reject messages.
   */
  trcMismatch?: TrcMismatchMode
  /**
   * Annotate the active span (the caller's or an instrumentation's processing span) instead of
   * creating an own span (default true). Turn off when the active span covers a whole batch and
   * per-message spans are wanted.
   */
  annotateActiveSpan?: boolean
}

type Verification = { readonly kind: 'verified'; readonly e: VerifiedEvent } | { readonly kind: 'rejected'; readonly e: RejectedEvent }

function put(attrs: Attributes, key: string, value: AttributeValue | undefined): void {
  if (value !== undefined) attrs[key] = value
}

function epochNow(): number {
  return performance.timeOrigin + performance.now()
}

function checkOptions(o: OtelObserverOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('createOtelObserver options must be an object')
  if (o.userId !== undefined && o.userId !== 'hash' && o.userId !== 'raw' && o.userId !== 'omit') {
    throw new TypeError("userId must be 'hash', 'raw' or 'omit'")
  }
  if (o.userIdSalt !== undefined && typeof o.userIdSalt !== 'string' && !(o.userIdSalt instanceof Uint8Array)) {
    throw new TypeError('userIdSalt must be a string or a Uint8Array')
  }
  if (o.trcMismatch !== undefined && o.trcMismatch !== 'record' && o.trcMismatch !== 'error') {
    throw new TypeError("trcMismatch must be 'record' or 'error'")
  }
  if (o.tracer !== undefined && typeof o.tracer?.startSpan !== 'function') throw new TypeError('tracer must be an OpenTelemetry Tracer')
  if (o.meter !== undefined && typeof o.meter?.createCounter !== 'function') throw new TypeError('meter must be an OpenTelemetry Meter')
}

/**
 * Creates an {@link IdctxObserver} that turns idctx events into OpenTelemetry data, using only
 * `@opentelemetry/api` (without an SDK it costs a few no-op calls and never hashes anything):
 *
 * - **spans**: identity attributes (`idctx.tenant`, `idctx.txn`, `idctx.producer`, hashed
 *   `idctx.user`, `idctx.jti`, `idctx.token.sha256`, …) go on the active span when one records —
 *   the caller's request span when signing, the processing span of an instrumentation (or the
 *   caller's) when verifying — so nothing is duplicated. Only without one does it create a short
 *   `idctx sign` / `idctx verify <destination>` span.
 * - **links**: a verification links the message's creation context, parsed from its
 *   `traceparent`; without an active span the short verify span becomes its child, which keeps
 *   the trace whole.
 * - **rejections**: event `idctx.rejected { idctx.reason }` and status ERROR.
 * - **trc mismatch**: a `traceparent` of another trace than the signed `trc` is flagged (see
 *   `trcMismatch`) and is neither linked nor used as a parent.
 * - **metrics**: `idctx.signatures`, `idctx.verifications`, `idctx.verify.duration` (ms),
 *   `idctx.verify.cache` (hit ratio), `idctx.rejections.handled`.
 *
 * Tokens, keys and payload values never reach a span or a metric: events carry none.
 *
 * @example
 * ```ts
 * import { createOtelObserver, activeTraceId } from '@idctx/otel'
 * const observer = createOtelObserver({ userIdSalt: process.env.IDCTX_USER_SALT })
 * const signer = createSigner({ issuer: 'orders', audience: 'shop', key, traceId: activeTraceId, observer })
 * const verifier = createVerifier({ audience: 'shop', issuers, observer })
 * ```
 */
export function createOtelObserver(options: OtelObserverOptions = {}): IdctxObserver {
  checkOptions(options)
  const tracer = options.tracer ?? trace.getTracer(SCOPE_NAME, SCOPE_VERSION)
  const instruments = instrumentSource(options.meter)
  const userOf = createUserIdAttribute(options.userId ?? 'hash', options.userIdSalt)
  const mismatchIsError = options.trcMismatch === 'error'
  const annotate = options.annotateActiveSpan ?? true

  const recordingActive = (ctx: Context): Span | undefined => {
    if (!annotate) return undefined
    const span = trace.getSpan(ctx)
    return span !== undefined && span.isRecording() ? span : undefined
  }

  const identity = (
    attrs: Attributes,
    e: { tid: string | undefined; txn: string | undefined; iss: string | undefined; sub: string | undefined; jti: string | undefined; kid: string | undefined; tokenSha256: string | undefined },
  ): Attributes => {
    put(attrs, A.Tenant, e.tid)
    put(attrs, A.Txn, e.txn)
    put(attrs, A.Producer, e.iss)
    if (e.sub !== undefined) put(attrs, A.User, userOf(e.sub))
    put(attrs, A.Jti, e.jti)
    put(attrs, A.KeyId, e.kid)
    put(attrs, A.TokenSha256, e.tokenSha256)
    return attrs
  }

  const signedAttributes = (e: SignedEvent): Attributes => {
    const attrs = identity({}, e)
    if (e.destinations.length === 1) put(attrs, A.Destination, e.destinations[0])
    else attrs[A.Destinations] = [...e.destinations]
    attrs[A.MessageCount] = e.count
    return attrs
  }

  const onSigned = (e: SignedEvent): void => {
    const ctx = contextApi.active()
    const active = recordingActive(ctx)
    if (active !== undefined) {
      active.setAttributes(signedAttributes(e))
      const event: Attributes = { [A.Jti]: e.jti, [A.TokenSha256]: e.tokenSha256, [A.MessageCount]: e.count }
      if (e.destinations.length === 1) put(event, A.Destination, e.destinations[0])
      else event[A.Destinations] = [...e.destinations]
      active.addEvent(IdctxEvents.Signed, event)
    } else {
      const end = epochNow()
      const start: Attributes =
        e.destinations.length === 1 && e.destinations[0] !== undefined ? messagingAttributes(e.destinations[0]) : {}
      start[MessagingAttributes.OperationType] = 'create'
      if (e.count > 1) start[MessagingAttributes.BatchMessageCount] = e.count
      const span = tracer.startSpan(IdctxSpanNames.Sign, { kind: SpanKind.INTERNAL, startTime: end - e.durationMs, attributes: start }, ctx)
      if (span.isRecording()) span.setAttributes(signedAttributes(e))
      span.end(end)
    }
    const metricAttrs: Attributes = { [A.Producer]: e.iss }
    if (e.destinations.length === 1) put(metricAttrs, A.Destination, e.destinations[0])
    instruments().signatures.add(1, metricAttrs)
  }

  const markMismatch = (span: Span, trc: string, linked: string): void => {
    span.setAttribute(A.TrcMismatch, true)
    span.addEvent(IdctxEvents.TrcMismatch, { [A.Trc]: trc, [A.LinkTraceId]: linked })
    if (mismatchIsError) span.setStatus({ code: SpanStatusCode.ERROR, message: 'idctx trc mismatch' })
  }

  const verificationAttributes = (v: Verification): Attributes => {
    const attrs = identity({}, v.e)
    attrs[A.Destination] = v.e.destination
    put(attrs, A.Trc, v.e.trc)
    if (v.kind === 'verified') {
      attrs[A.Result] = 'accepted'
      attrs[A.CacheHit] = v.e.cached
    } else {
      attrs[A.Result] = 'rejected'
      attrs[A.Reason] = v.e.reason
    }
    return attrs
  }

  const markRejected = (span: Span, e: RejectedEvent): void => {
    span.addEvent(IdctxEvents.Rejected, { [A.Reason]: e.reason, [A.Destination]: e.destination })
    span.setStatus({ code: SpanStatusCode.ERROR, message: `idctx rejected: ${e.reason}` })
  }

  const onVerification = (v: Verification): void => {
    const e = v.e
    const creation: SpanContext | undefined = parseTraceparent(e.traceparent)
    const mismatch = creation !== undefined && e.trc !== undefined && creation.traceId !== e.trc
    const linkable = mismatch ? undefined : creation
    const ctx = contextApi.active()
    const active = recordingActive(ctx)
    const end = epochNow()
    const startOwn = (parent: Context, links: Link[]): Span =>
      tracer.startSpan(
        `${IdctxSpanNames.Verify} ${e.destination}`,
        {
          kind: SpanKind.INTERNAL,
          startTime: end - e.durationMs,
          links,
          attributes: { ...messagingAttributes(e.destination), [MessagingAttributes.OperationType]: 'process' },
        },
        parent,
      )

    if (active !== undefined) {
      active.setAttributes(verificationAttributes(v))
      if (linkable !== undefined && linkable.traceId !== active.spanContext().traceId) {
        if (typeof (active as Partial<Span>).addLink === 'function') {
          active.addLink({ context: linkable })
        } else {
          // A span from an SDK older than API 1.9 cannot take links after start: keep the link on
          // an own short span, and the linked trace id on the active one.
          active.setAttribute(A.LinkTraceId, linkable.traceId)
          const own = startOwn(trace.setSpan(ctx, active), [{ context: linkable }])
          if (own.isRecording()) own.setAttributes(verificationAttributes(v))
          own.end(end)
        }
      }
      if (mismatch && e.trc !== undefined) markMismatch(active, e.trc, creation.traceId)
      if (v.kind === 'rejected') markRejected(active, v.e)
    } else {
      const current = trace.getSpanContext(ctx)
      const hasParent = current !== undefined && trace.isSpanContextValid(current)
      const parent = hasParent || linkable === undefined ? ctx : trace.setSpanContext(ctx, linkable)
      const links = hasParent && linkable !== undefined && linkable.traceId !== current.traceId ? [{ context: linkable }] : []
      const span = startOwn(parent, links)
      if (span.isRecording()) {
        span.setAttributes(verificationAttributes(v))
        if (mismatch && e.trc !== undefined) markMismatch(span, e.trc, creation.traceId)
        if (v.kind === 'rejected') markRejected(span, v.e)
      }
      span.end(end)
    }

    const m = instruments()
    const result = v.kind === 'verified' ? 'accepted' : 'rejected'
    const counted: Attributes = { [A.Result]: result, [A.Destination]: e.destination }
    if (v.kind === 'rejected') counted[A.Reason] = v.e.reason
    m.verifications.add(1, counted)
    m.verifyDuration.record(e.durationMs, { [A.Result]: result })
    if (v.kind === 'verified') m.verifyCache.add(1, { [A.CacheHit]: v.e.cached })
  }

  const onDisposition = (e: DispositionEvent): void => {
    const ctx = contextApi.active()
    const active = recordingActive(ctx)
    const attrs: Attributes = { [A.Policy]: e.policy, [A.Reason]: e.reason, [A.Destination]: e.destination }
    put(attrs, A.DispositionTarget, e.target)
    put(attrs, A.DispositionCoordinates, e.coordinates)
    put(attrs, A.TokenSha256, e.tokenSha256)
    if (active !== undefined) {
      active.addEvent(IdctxEvents.Disposition, attrs)
    } else {
      // No processing span: settle under the message's own trace rather than start a new one.
      const parent = e.traceparent === undefined ? ctx : contextFromTraceparent(e.traceparent, ctx)
      const span = tracer.startSpan(
        `${IdctxSpanNames.Disposition} ${e.destination}`,
        {
          kind: SpanKind.INTERNAL,
          attributes: { ...messagingAttributes(e.destination), [MessagingAttributes.OperationType]: 'settle' },
        },
        parent,
      )
      if (span.isRecording()) {
        span.setAttributes(attrs)
        span.addEvent(IdctxEvents.Disposition, attrs)
      }
      span.end()
    }
    instruments().rejectionsHandled.add(1, { [A.Policy]: e.policy, [A.Reason]: e.reason, [A.Destination]: e.destination })
  }

  return Object.freeze({
    onSigned,
    onVerified: (e: VerifiedEvent) => onVerification({ kind: 'verified', e }),
    onRejected: (e: RejectedEvent) => onVerification({ kind: 'rejected', e }),
    onDisposition,
  })
}
