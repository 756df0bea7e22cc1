import { context, propagation, trace } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node'

export type { ReadableSpan }

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** `service.name` of the resource. */
  readonly serviceName: string
  /**
   * The OTLP/HTTP base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://jaeger:4318`); spans go
   * to `<endpoint>/v1/traces`. Unset: no export.
   */
  readonly otlpEndpoint?: string | undefined
  /** Keep finished spans in memory, readable with `spans()` (the demo prints one trace). */
  readonly inMemory?: boolean
}

/** The tracing set-up of one process. */
export interface Telemetry {
  /** False when nothing was registered (no endpoint, no in-memory export): tracing is a no-op. */
  readonly enabled: boolean
  /** Finished spans kept in memory (empty unless `inMemory`). */
  spans(): readonly ReadableSpan[]
  /** Flushes, shuts the provider down and unregisters the global OpenTelemetry API state. */
  shutdown(): Promise<void>
}

/**
 * Registers an OpenTelemetry tracer provider for this process when there is somewhere to send
 * spans: OTLP/HTTP (Jaeger, a collector) and/or memory. It also registers the AsyncLocalStorage
 * context manager and the W3C trace-context propagator (which BullMQ's telemetry uses). Without
 * either, nothing is registered and every tracer stays a no-op.
 *
 * @example
 * ```ts
 * const telemetry = startTelemetry({ serviceName: 'orders', otlpEndpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT })
 * ```
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const processors: SpanProcessor[] = []
  const memory = options.inMemory === true ? new InMemorySpanExporter() : undefined
  if (memory !== undefined) processors.push(new SimpleSpanProcessor(memory))
  const endpoint = options.otlpEndpoint?.trim()
  if (endpoint !== undefined && endpoint !== '') {
    const url = `${endpoint.replace(/\/+$/, '')}/v1/traces`
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 1000 }))
  }
  if (processors.length === 0) return { enabled: false, spans: () => [], shutdown: async () => {} }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: processors,
  })
  provider.register()
  return {
    enabled: true,
    spans: () => memory?.getFinishedSpans() ?? [],
    async shutdown() {
      await provider.shutdown()
      trace.disable()
      propagation.disable()
      context.disable()
    },
  }
}
