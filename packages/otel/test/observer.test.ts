import { createHash, createHmac } from 'node:crypto'
import { context, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ReasonCode, type IdctxObserver } from '@idctx/core'
import {
  activeTraceId,
  createOtelObserver,
  formatTraceparent,
  IdctxAttributes as A,
  IdctxEvents,
  IdctxMetrics,
  IdctxSpanNames,
  MessagingAttributes,
  traceparentOf,
  type OtelObserverOptions,
} from '@idctx/otel'
import { claimsOf, counterSum, histogramCount, pki, registerSdk, type Sdk } from './harness.js'

let sdk: Sdk
beforeAll(() => {
  sdk = registerSdk()
})
afterAll(async () => {
  await sdk.shutdown()
})
beforeEach(() => {
  sdk.exporter.reset()
})

const ctx = { sub: 'user-7f3a', tid: 'acme', txn: 'txn-0001' }
const tracer = () => trace.getTracer('test')

/** Runs `fn` inside a new active span, ends it, and returns what `fn` returned plus the span. */
async function inSpan<T>(name: string, fn: (span: Span) => Promise<T> | T, parent = context.active()): Promise<{ value: T; span: Span }> {
  return tracer().startActiveSpan(name, {}, parent, async (span) => {
    try {
      return { value: await fn(span), span }
    } finally {
      span.end()
    }
  })
}

function finished(name: string): ReadableSpan {
  const s = sdk.spans().find((x) => x.name === name)
  if (s === undefined) throw new Error(`no finished span named ${name}; have ${sdk.spans().map((x) => x.name).join(', ')}`)
  return s
}

function setup(options: OtelObserverOptions = {}) {
  const observer = createOtelObserver(options)
  return { observer, ...pki(observer, activeTraceId) }
}

describe('signing', () => {
  it('annotates the active span, and trc is its trace id', async () => {
    const { signer, leafOf, destination } = setup()
    const before = counterSum(await sdk.reader.metrics(), IdctxMetrics.Signatures, { [A.Destination]: destination })
    const { value: signed, span } = await inSpan('POST /orders', () => signer.sign(ctx, [{ destination, leaf: leafOf('k1', 'v1') }]))

    expect(claimsOf(signed.token).trc).toBe(span.spanContext().traceId)
    const s = finished('POST /orders')
    expect(s.attributes[A.Tenant]).toBe('acme')
    expect(s.attributes[A.Txn]).toBe('txn-0001')
    expect(s.attributes[A.Producer]).toBe('orders-svc')
    expect(s.attributes[A.Jti]).toBe(signed.jti)
    expect(s.attributes[A.TokenSha256]).toBe(signed.tokenSha256)
    expect(s.attributes[A.Destination]).toBe('kafka:orders')
    expect(s.attributes[A.MessageCount]).toBe(1)
    expect(s.attributes[A.User]).toBe(createHash('sha256').update('user-7f3a').digest('hex').slice(0, 32))
    expect(s.events.map((e) => e.name)).toEqual([IdctxEvents.Signed])
    // the request span keeps its own semantics: idctx does not stamp messaging attributes on it
    expect(s.attributes[MessagingAttributes.System]).toBeUndefined()
    expect(sdk.spans().filter((x) => x.name === IdctxSpanNames.Sign)).toHaveLength(0)

    const after = counterSum(await sdk.reader.metrics(), IdctxMetrics.Signatures, { [A.Destination]: destination, [A.Producer]: 'orders-svc' })
    expect(after - before).toBe(1)
  })

  it('creates a short `idctx sign` span when no span is active, and signs no trc', () => {
    const { signer, leafOf, destination } = setup()
    const signed = signer.sign(ctx, [
      { destination, leaf: leafOf('k1', 'v1') },
      { destination, leaf: leafOf('k2', 'v2') },
    ])
    expect(claimsOf(signed.token).trc).toBeUndefined()
    const s = finished(IdctxSpanNames.Sign)
    expect(s.parentSpanContext).toBeUndefined()
    expect(s.attributes[MessagingAttributes.System]).toBe('kafka')
    expect(s.attributes[MessagingAttributes.DestinationName]).toBe('orders')
    expect(s.attributes[MessagingAttributes.OperationType]).toBe('create')
    expect(s.attributes[MessagingAttributes.BatchMessageCount]).toBe(2)
    expect(s.attributes[A.MessageCount]).toBe(2)
    expect(s.attributes[A.Jti]).toBe(signed.jti)
  })

  it('lists every destination of a token that covers several', () => {
    const { signer, leafOf, destination } = setup()
    signer.sign(ctx, [
      { destination, leaf: leafOf('k1', 'v1') },
      { destination: 'kafka:payments', leaf: leafOf('k2', 'v2') },
    ])
    const s = finished(IdctxSpanNames.Sign)
    expect(s.attributes[A.Destinations]).toEqual(['kafka:orders', 'kafka:payments'])
    expect(s.attributes[A.Destination]).toBeUndefined()
    expect(s.attributes[MessagingAttributes.DestinationName]).toBeUndefined()
  })
})

describe('verification', () => {
  it('annotates the processing span and links the creation context of another trace', async () => {
    const { signer, verifier, leafOf, destination } = setup()
    const leaf = leafOf('k1', 'v1')
    const { value: produced } = await inSpan('producer', (span) => ({
      signed: signer.sign(ctx, [{ destination, leaf }]),
      traceparent: formatTraceparent(span.spanContext()),
      traceId: span.spanContext().traceId,
    }))
    const before = await sdk.reader.metrics()
    // a batch-style processing span: a new root, like instrumentation-kafkajs's eachBatch spans
    const { value: result } = await inSpan(
      'process orders',
      () => verifier.verify({ tokens: [produced.signed.token], destination, leaf, expectedTenant: 'acme', traceparent: produced.traceparent }),
      trace.deleteSpan(context.active()),
    )
    expect(result.ok).toBe(true)
    const s = finished('process orders')
    expect(s.attributes[A.Result]).toBe('accepted')
    expect(s.attributes[A.Tenant]).toBe('acme')
    expect(s.attributes[A.Txn]).toBe('txn-0001')
    expect(s.attributes[A.Producer]).toBe('orders-svc')
    expect(s.attributes[A.Destination]).toBe(destination)
    expect(s.attributes[A.Jti]).toBe(produced.signed.jti)
    expect(s.attributes[A.TokenSha256]).toBe(produced.signed.tokenSha256)
    expect(s.attributes[A.CacheHit]).toBe(false)
    expect(s.attributes[A.Trc]).toBe(produced.traceId)
    expect(s.attributes[A.TrcMismatch]).toBeUndefined()
    expect(s.status.code).toBe(SpanStatusCode.UNSET)
    expect(s.links.map((l) => l.context.traceId)).toEqual([produced.traceId])
    expect(s.links[0]?.context.spanId).toBe(finished('producer').spanContext().spanId)
    expect(sdk.spans().some((x) => x.name.startsWith(IdctxSpanNames.Verify))).toBe(false)

    const after = await sdk.reader.metrics()
    const accepted = { [A.Result]: 'accepted', [A.Destination]: destination }
    expect(counterSum(after, IdctxMetrics.Verifications, accepted) - counterSum(before, IdctxMetrics.Verifications, accepted)).toBe(1)
    const dur = { [A.Result]: 'accepted' }
    expect(histogramCount(after, IdctxMetrics.VerifyDuration, dur) - histogramCount(before, IdctxMetrics.VerifyDuration, dur)).toBe(1)
  })

  it('keeps the link on an own span when the active span cannot take links after start (pre-1.9 SDK)', async () => {
    const { signer, verifier, leafOf, destination } = setup()
    const leaf = leafOf('k1', 'v1')
    const { value: produced } = await inSpan('producer', (span) => ({
      signed: signer.sign(ctx, [{ destination, leaf }]),
      traceparent: formatTraceparent(span.spanContext()),
      traceId: span.spanContext().traceId,
    }))
    const real = tracer().startSpan('old sdk process', {}, trace.deleteSpan(context.active()))
    const legacy = new Proxy(real, { get: (t, k) => (k === 'addLink' || k === 'addLinks' ? undefined : Reflect.get(t, k, t)) })
    await context.with(trace.setSpan(context.active(), legacy), () =>
      verifier.verify({ tokens: [produced.signed.token], destination, leaf, expectedTenant: 'acme', traceparent: produced.traceparent }),
    )
    real.end()
    const active = finished('old sdk process')
    expect(active.attributes[A.Result]).toBe('accepted')
    expect(active.attributes[A.LinkTraceId]).toBe(produced.traceId)
    expect(active.links).toHaveLength(0)
    const own = finished(`${IdctxSpanNames.Verify} kafka:orders`)
    expect(own.parentSpanContext?.spanId).toBe(active.spanContext().spanId)
    expect(own.links.map((l) => l.context.traceId)).toEqual([produced.traceId])
    expect(own.attributes[A.Result]).toBe('accepted')
  })

  it('adds no redundant link when the processing span already continues the producer trace', async () => {
    const { signer, verifier, leafOf, destination } = setup()
    const leaf = leafOf('k1', 'v1')
    await inSpan('producer', async (producer) => {
      const signed = signer.sign(ctx, [{ destination, leaf }])
      const traceparent = formatTraceparent(producer.spanContext())
      await inSpan('process orders', () =>
        verifier.verify({ tokens: [signed.token], destination, leaf, expectedTenant: 'acme', traceparent }),
      )
    })
    const s = finished('process orders')
    expect(s.attributes[A.Result]).toBe('accepted')
    expect(s.links).toHaveLength(0)
  })

  it('without an active span, creates `idctx verify <destination>` as a child of the creation context', async () => {
    const { signer, verifier, leafOf, destination } = setup()
    const leaf = leafOf('k1', 'v1')
    const { value: produced, span: producer } = await inSpan('producer', (span) => ({
      signed: signer.sign(ctx, [{ destination, leaf }]),
      traceparent: traceparentOf(),
      spanId: span.spanContext().spanId,
    }))
    const r = await context.with(trace.deleteSpan(context.active()), () =>
      verifier.verify({ tokens: [produced.signed.token], destination, leaf, expectedTenant: 'acme', traceparent: produced.traceparent }),
    )
    expect(r.ok).toBe(true)
    const s = finished(`${IdctxSpanNames.Verify} kafka:orders`)
    expect(s.spanContext().traceId).toBe(producer.spanContext().traceId)
    expect(s.parentSpanContext?.spanId).toBe(produced.spanId)
    expect(s.attributes[A.Result]).toBe('accepted')
    expect(s.attributes[MessagingAttributes.System]).toBe('kafka')
    expect(s.attributes[MessagingAttributes.DestinationName]).toBe('orders')
    expect(s.attributes[MessagingAttributes.OperationType]).toBe('process')
    expect(s.attributes[A.User]).toMatch(/^[0-9a-f]{32}$/)
  })

  it('a rejection becomes an `idctx.rejected` event with the exact reason, ERROR status and a metric', async () => {
    const { signer, verifier, leafOf, destination } = setup()
    const leaf = leafOf('k1', 'v1')
    const signed = signer.sign(ctx, [{ destination, leaf }])
    const before = await sdk.reader.metrics()
    const { value: r } = await inSpan('process orders', () =>
      verifier.verify({ tokens: [signed.token], destination, leaf, expectedTenant: 'globex' }),
    )
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.error.reason).toBe(ReasonCode.TenantMismatch)

    const s = finished('process orders')
    expect(s.attributes[A.Result]).toBe('rejected')
    expect(s.attributes[A.Reason]).toBe('tenant_mismatch')
    expect(s.status).toEqual({ code: SpanStatusCode.ERROR, message: 'idctx rejected: tenant_mismatch' })
    const ev = s.events.filter((e) => e.name === IdctxEvents.Rejected)
    expect(ev).toHaveLength(1)
    expect(ev[0]?.attributes?.[A.Reason]).toBe('tenant_mismatch')
    expect(ev[0]?.attributes?.[A.Destination]).toBe(destination)

    const after = await sdk.reader.metrics()
    const match = { [A.Result]: 'rejected', [A.Reason]: 'tenant_mismatch', [A.Destination]: destination }
    expect(counterSum(after, IdctxMetrics.Verifications, match) - counterSum(before, IdctxMetrics.Verifications, match)).toBe(1)
    const other = { [A.Result]: 'rejected', [A.Reason]: 'expired' }
    expect(counterSum(after, IdctxMetrics.Verifications, other) - counterSum(before, IdctxMetrics.Verifications, other)).toBe(0)
  })

  it('a missing token is rejected on an own span when nothing is active', async () => {
    const { verifier, leafOf, destination } = setup()
    const r = await verifier.verify({ tokens: [], destination, leaf: leafOf('k', 'v'), expectedTenant: 'acme' })
    expect(r.ok).toBe(false)
    const s = finished(`${IdctxSpanNames.Verify} kafka:orders`)
    expect(s.attributes[A.Reason]).toBe('missing')
    expect(s.status.code).toBe(SpanStatusCode.ERROR)
    expect(s.events.map((e) => [e.name, e.attributes?.[A.Reason]])).toEqual([[IdctxEvents.Rejected, 'missing']])
    expect(s.attributes[A.Tenant]).toBeUndefined()
  })

  it('flags a forged traceparent next to a valid token as a trc mismatch, not fatal by default', async () => {
    const { signer, verifier, leafOf, destination } = setup()
    const leaf = leafOf('k1', 'v1')
    const { value: signed, span: producer } = await inSpan('producer', () => signer.sign(ctx, [{ destination, leaf }]))
    const forged = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01'
    const { value: r } = await inSpan(
      'process orders',
      () => verifier.verify({ tokens: [signed.token], destination, leaf, expectedTenant: 'acme', traceparent: forged }),
      trace.deleteSpan(context.active()),
    )
    expect(r.ok).toBe(true)
    const s = finished('process orders')
    expect(s.attributes[A.Result]).toBe('accepted')
    expect(s.attributes[A.TrcMismatch]).toBe(true)
    expect(s.attributes[A.Trc]).toBe(producer.spanContext().traceId)
    const ev = s.events.find((e) => e.name === IdctxEvents.TrcMismatch)
    expect(ev?.attributes?.[A.Trc]).toBe(producer.spanContext().traceId)
    expect(ev?.attributes?.[A.LinkTraceId]).toBe('0123456789abcdef0123456789abcdef')
    // the unsigned, disagreeing traceparent is neither linked nor trusted as a parent
    expect(s.links).toHaveLength(0)
    expect(s.status.code).toBe(SpanStatusCode.UNSET)
  })

  it("trcMismatch: 'error' also sets ERROR status, and never uses the forged context as a parent", async () => {
    const { signer, verifier, leafOf, destination } = setup({ trcMismatch: 'error' })
    const leaf = leafOf('k1', 'v1')
    const { value: signed } = await inSpan('producer', () => signer.sign(ctx, [{ destination, leaf }]))
    const forged = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01'
    const r = await context.with(trace.deleteSpan(context.active()), () =>
      verifier.verify({ tokens: [signed.token], destination, leaf, expectedTenant: 'acme', traceparent: forged }),
    )
    expect(r.ok).toBe(true)
    const s = finished(`${IdctxSpanNames.Verify} kafka:orders`)
    expect(s.attributes[A.TrcMismatch]).toBe(true)
    expect(s.status).toEqual({ code: SpanStatusCode.ERROR, message: 'idctx trc mismatch' })
    expect(s.spanContext().traceId).not.toBe('0123456789abcdef0123456789abcdef')
    expect(s.parentSpanContext).toBeUndefined()
  })

  it('counts cache hits and misses so the hit ratio can be computed', async () => {
    const { signer, verifier, leafOf, destination } = setup()
    const messages = [1, 2, 3, 4].map((i) => ({ destination, leaf: leafOf(`k${i}`, `v${i}`) }))
    const signed = signer.sign(ctx, messages)
    const before = await sdk.reader.metrics()
    for (let i = 0; i < messages.length; i++) {
      const r = await verifier.verify({
        tokens: [signed.token],
        proof: signed.proofs[i],
        destination,
        leaf: messages[i]!.leaf,
        expectedTenant: 'acme',
      })
      expect(r.ok).toBe(true)
    }
    const after = await sdk.reader.metrics()
    const delta = (hit: boolean) =>
      counterSum(after, IdctxMetrics.VerifyCache, { [A.CacheHit]: hit }) - counterSum(before, IdctxMetrics.VerifyCache, { [A.CacheHit]: hit })
    expect(delta(false)).toBe(1)
    expect(delta(true)).toBe(3)
    const spans = sdk.spans().filter((s) => s.name === `${IdctxSpanNames.Verify} kafka:orders`)
    expect(spans.map((s) => s.attributes[A.CacheHit])).toEqual([false, true, true, true])
  })
})

describe('dispositions', () => {
  it('count by policy and reason, with an event on the active span', async () => {
    const observer = createOtelObserver()
    const before = await sdk.reader.metrics()
    await inSpan('process orders', () =>
      observer.onDisposition?.({
        reason: 'bad_signature',
        destination: 'kafka:orders',
        policy: 'dead-letter',
        target: 'orders.idctx-dlq',
        coordinates: 'orders/0/42',
        tokenSha256: 'ab'.repeat(32),
        traceparent: undefined,
      }),
    )
    const s = finished('process orders')
    const ev = s.events.find((e) => e.name === IdctxEvents.Disposition)
    expect(ev?.attributes).toMatchObject({
      [A.Policy]: 'dead-letter',
      [A.Reason]: 'bad_signature',
      [A.DispositionTarget]: 'orders.idctx-dlq',
      [A.DispositionCoordinates]: 'orders/0/42',
    })
    const after = await sdk.reader.metrics()
    const match = { [A.Policy]: 'dead-letter', [A.Reason]: 'bad_signature', [A.Destination]: 'kafka:orders' }
    expect(counterSum(after, IdctxMetrics.RejectionsHandled, match) - counterSum(before, IdctxMetrics.RejectionsHandled, match)).toBe(1)
  })

  it('get an own `idctx disposition` span without an active one, in the message trace', () => {
    createOtelObserver().onDisposition?.({
      reason: 'replayed',
      destination: 'bullmq:invoices/invoice',
      policy: 'fail',
      target: undefined,
      coordinates: 'invoices/17',
      tokenSha256: undefined,
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    })
    const s = finished(`${IdctxSpanNames.Disposition} bullmq:invoices/invoice`)
    expect(s.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c')
    expect(s.parentSpanContext?.spanId ?? (s as unknown as { parentSpanId?: string }).parentSpanId).toBe('b7ad6b7169203331')
    expect(s.attributes[MessagingAttributes.System]).toBe('bullmq')
    expect(s.attributes[MessagingAttributes.DestinationName]).toBe('invoices')
    expect(s.attributes[A.Policy]).toBe('fail')
    expect(s.attributes[A.DispositionTarget]).toBeUndefined()
  })
})

describe('options', () => {
  it('annotateActiveSpan: false creates own spans as children of the active one', async () => {
    const { signer, verifier, leafOf, destination } = setup({ annotateActiveSpan: false })
    const leaf = leafOf('k1', 'v1')
    const { span } = await inSpan('batch', async () => {
      const signed = signer.sign(ctx, [{ destination, leaf }])
      await verifier.verify({ tokens: [signed.token], destination, leaf, expectedTenant: 'acme' })
    })
    const batch = finished('batch')
    expect(batch.attributes[A.Tenant]).toBeUndefined()
    expect(finished(IdctxSpanNames.Sign).parentSpanContext?.spanId).toBe(span.spanContext().spanId)
    expect(finished(`${IdctxSpanNames.Verify} kafka:orders`).parentSpanContext?.spanId).toBe(span.spanContext().spanId)
  })

  it("userId: 'raw' | 'omit' | salted 'hash'", async () => {
    const spanUser = async (options: OtelObserverOptions) => {
      sdk.exporter.reset()
      const { signer, leafOf, destination } = setup(options)
      signer.sign(ctx, [{ destination, leaf: leafOf('k', 'v') }])
      return finished(IdctxSpanNames.Sign).attributes[A.User]
    }
    expect(await spanUser({ userId: 'raw' })).toBe('user-7f3a')
    expect(await spanUser({ userId: 'omit' })).toBeUndefined()
    const salted = createHmac('sha256', 'pepper').update('user-7f3a').digest('hex').slice(0, 32)
    expect(await spanUser({ userIdSalt: 'pepper' })).toBe(salted)
    expect(await spanUser({ userIdSalt: 'other' })).not.toBe(salted)
  })

  it('rejects bad options with a TypeError', () => {
    expect(() => createOtelObserver({ userId: 'plain' as never })).toThrow(TypeError)
    expect(() => createOtelObserver({ trcMismatch: 'reject' as never })).toThrow(TypeError)
    expect(() => createOtelObserver({ tracer: {} as never })).toThrow(TypeError)
    expect(() => createOtelObserver({ userIdSalt: 42 as never })).toThrow(TypeError)
  })

  it('uses a given tracer and meter instead of the global ones', async () => {
    const tracer = sdk.tracerProvider.getTracer('custom-scope')
    const meter = sdk.meterProvider.getMeter('custom-meter')
    const observer: IdctxObserver = createOtelObserver({ tracer, meter })
    const { signer, leafOf, destination } = pki(observer)
    signer.sign(ctx, [{ destination, leaf: leafOf('k', 'v') }])
    expect(finished(IdctxSpanNames.Sign).instrumentationScope.name).toBe('custom-scope')
    const { resourceMetrics } = await sdk.reader.collect()
    const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === 'custom-meter')
    expect(scope?.metrics.map((m) => m.descriptor.name)).toContain(IdctxMetrics.Signatures)
  })
})
