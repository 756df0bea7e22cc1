import { context as contextApi, trace, type Context, type SpanContext } from '@opentelemetry/api'

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

/**
 * Parses a W3C `traceparent` string into a remote span context, without a propagator (so no
 * global propagator setup, and no baggage, is involved). Anything invalid gives `undefined`:
 * version `ff`, all-zero ids, a version-00 string with trailing data, upper-case hex.
 *
 * @example
 * ```ts
 * parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
 * // { traceId: '4bf9…', spanId: '00f0…', traceFlags: 1, isRemote: true }
 * ```
 */
export function parseTraceparent(traceparent: string | undefined): SpanContext | undefined {
  if (typeof traceparent !== 'string' || traceparent.length > 512) return undefined
  const m = TRACEPARENT.exec(traceparent.trim())
  if (m === null) return undefined
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined]
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) & 0xff, isRemote: true }
}

/**
 * Formats a span context as a version-00 W3C `traceparent` string.
 *
 * @example
 * ```ts
 * formatTraceparent(span.spanContext()) // '00-<trace id>-<span id>-01'
 * ```
 */
export function formatTraceparent(spanContext: SpanContext): string {
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/**
 * The `traceparent` of the span in `ctx` (default: the active context), or `undefined` when
 * there is no valid span context. For carriers, when no instrumentation injects one: put it in
 * the Kafka `traceparent` header or BullMQ's telemetry metadata.
 *
 * @example
 * ```ts
 * const tp = traceparentOf()
 * await producer.send({ topic, messages: [{ value, headers: tp ? { traceparent: tp } : {} }] })
 * ```
 */
export function traceparentOf(ctx: Context = contextApi.active()): string | undefined {
  const sc = trace.getSpanContext(ctx)
  return sc !== undefined && trace.isSpanContextValid(sc) ? formatTraceparent(sc) : undefined
}

/**
 * The trace id (32 hex) of the active span, or `undefined`: pass it as the signer's `traceId`
 * option so tokens bind the trace they were signed in (`trc`).
 *
 * @example
 * ```ts
 * const signer = createSigner({ issuer, audience, key, traceId: activeTraceId })
 * ```
 */
export function activeTraceId(): string | undefined {
  const sc = trace.getSpanContext(contextApi.active())
  return sc !== undefined && trace.isSpanContextValid(sc) ? sc.traceId : undefined
}

/**
 * A context whose parent is the remote span a `traceparent` names (`parent` when it is invalid):
 * start the processing span in it when no instrumentation extracts the carrier for you.
 *
 * @example
 * ```ts
 * const parent = contextFromTraceparent(headerString(message.headers, 'traceparent'))
 * await tracer.startActiveSpan('process orders', {}, parent, (span) => handle().finally(() => span.end()))
 * ```
 */
export function contextFromTraceparent(traceparent: string | undefined, parent: Context = contextApi.active()): Context {
  const sc = parseTraceparent(traceparent)
  return sc === undefined ? parent : trace.setSpanContext(parent, sc)
}
