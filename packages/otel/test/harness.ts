import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { createSigner, createVerifier, generateKey, kafkaDestination, kafkaLeaf, type IdctxKey } from '@idctx/core'

/** A metric reader the test collects from on demand. */
export class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}

  async metrics(): Promise<MetricData[]> {
    const { resourceMetrics } = await this.collect()
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
  }
}

export interface Sdk {
  readonly exporter: InMemorySpanExporter
  readonly reader: CollectingReader
  readonly tracerProvider: BasicTracerProvider
  readonly meterProvider: MeterProvider
  spans(): ReadableSpan[]
  shutdown(): Promise<void>
}

/** Registers a tracer provider (in-memory exporter), a meter provider and an ALS context manager globally. */
export function registerSdk(): Sdk {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new CollectingReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  trace.setGlobalTracerProvider(tracerProvider)
  metrics.setGlobalMeterProvider(meterProvider)
  return {
    exporter,
    reader,
    tracerProvider,
    meterProvider,
    spans: () => exporter.getFinishedSpans(),
    async shutdown() {
      await tracerProvider.shutdown()
      await meterProvider.shutdown()
      contextManager.disable()
      trace.disable()
      metrics.disable()
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

/** Count of a histogram's recordings whose attributes include `match`. */
export function histogramCount(all: MetricData[], name: string, match: Record<string, unknown> = {}): number {
  const m = all.find((x) => x.descriptor.name === name)
  if (m === undefined) return 0
  return (m.dataPoints as DataPoint<Histogram>[])
    .filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
    .reduce((n, p) => n + p.value.count, 0)
}

/** A signer and a verifier sharing one EdDSA key, for topic `orders` of tenant `acme`. */
export function pki(observer: Parameters<typeof createSigner>[0]['observer'], traceId?: () => string | undefined) {
  const key: IdctxKey = generateKey('EdDSA', { kid: 'orders-k1' })
  const signer = createSigner({
    issuer: 'orders-svc',
    audience: 'shop',
    key,
    ...(traceId !== undefined ? { traceId } : {}),
    ...(observer !== undefined ? { observer } : {}),
  })
  const verifier = createVerifier({
    audience: 'shop',
    issuers: { 'orders-svc': [key] },
    ...(observer !== undefined ? { observer } : {}),
  })
  const topic = 'orders'
  const destination = kafkaDestination(topic)
  const leafOf = (key: string, value: string) => kafkaLeaf(topic, key, value)
  return { key, signer, verifier, topic, destination, leafOf }
}

/** The decoded claims of a compact JWS (test-only; never do this with an unverified token in code). */
export function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? ''
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
}
