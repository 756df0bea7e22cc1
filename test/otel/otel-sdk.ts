import { context, metrics, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type MetricData } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** An in-process OpenTelemetry SDK: every finished span and metric is readable by the test. */
export interface TestSdk {
  spans(): ReadableSpan[]
  metrics(): Promise<MetricData[]>
  shutdown(): Promise<void>
}

/**
 * Registers a tracer provider with an in-memory exporter, a meter provider read on demand, an
 * AsyncLocalStorage context manager and the W3C trace-context propagator (BullMQ's telemetry
 * injects and extracts through it) — the setup an application gets from the Node SDK.
 */
export function registerTestSdk(): TestSdk {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new CollectingReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(tracerProvider)
  metrics.setGlobalMeterProvider(meterProvider)
  return {
    spans: () => exporter.getFinishedSpans(),
    async metrics() {
      const { resourceMetrics } = await reader.collect()
      return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
    },
    async shutdown() {
      await tracerProvider.shutdown()
      await meterProvider.shutdown()
      contextManager.disable()
      trace.disable()
      metrics.disable()
      propagation.disable()
      context.disable()
    },
  }
}

/** Sum of a counter's data points whose attributes include `match`. */
export function counterSum(all: MetricData[], name: string, match: Record<string, unknown> = {}): number {
  const m = all.find((x) => x.descriptor.name === name)
  if (m === undefined) return 0
  return (m.dataPoints as DataPoint<number>[])
    .filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
    .reduce((n, p) => n + p.value, 0)
}
