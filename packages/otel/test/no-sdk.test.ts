import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api'
import { expect, it } from 'vitest'
import { activeTraceId, createOtelObserver, IdctxMetrics, traceparentOf } from '@idctx/otel'
import { claimsOf, counterSum, pki, registerSdk } from './harness.js'

const ctx = { sub: 'u-1', tid: 'acme', txn: 't-1' }

it('without an SDK nothing throws, nothing is bound, and a later SDK is picked up by the same observer', async () => {
  const observer = createOtelObserver()
  const { signer, verifier, destination, leafOf } = pki(observer, activeTraceId)
  const leaf = leafOf('k', 'v')

  // the API's no-op tracer: spans do not record, no trace id exists to bind
  const signed = await trace.getTracer('test').startActiveSpan('request', (span) => {
    expect(span.isRecording()).toBe(false)
    span.end()
    return signer.sign(ctx, [{ destination, leaf }])
  })
  expect(activeTraceId()).toBeUndefined()
  expect(traceparentOf()).toBeUndefined()
  expect(claimsOf(signed.token).trc).toBeUndefined()
  expect((await verifier.verify({ tokens: [signed.token], destination, leaf, expectedTenant: 'acme', traceparent: 'garbage' })).ok).toBe(true)
  expect((await verifier.verify({ tokens: [], destination, leaf, expectedTenant: 'acme' })).ok).toBe(false)
  // called directly too, since notify() would hide a throw
  expect(() =>
    observer.onDisposition?.({ reason: 'missing', destination, policy: 'skip', target: undefined, coordinates: undefined, tokenSha256: undefined, traceparent: undefined }),
  ).not.toThrow()
  expect(() =>
    observer.onRejected?.({
      reason: 'expired', destination, tokenSha256: undefined, iss: undefined, kid: undefined, jti: undefined, txn: undefined,
      tid: undefined, sub: undefined, trc: 'f'.repeat(32), traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, durationMs: 1,
    }),
  ).not.toThrow()

  const sdk = registerSdk()
  try {
    const again = await trace.getTracer('test').startActiveSpan('request', (span) => {
      const s = signer.sign(ctx, [{ destination, leaf }])
      span.end()
      return { s, traceId: span.spanContext().traceId }
    })
    expect(claimsOf(again.s.token).trc).toBe(again.traceId)
    expect(sdk.spans().find((s) => s.name === 'request')?.attributes['idctx.tenant']).toBe('acme')
    expect(counterSum(await sdk.reader.metrics(), IdctxMetrics.Signatures)).toBe(1)
    // The request span ended and nothing leaked into the ambient context.
    expect(context.active()).toBe(ROOT_CONTEXT)
  } finally {
    await sdk.shutdown()
  }
})
