import { context, trace } from '@opentelemetry/api'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exportPrivateJwk, kafkaLeaf, ReasonCode } from '@idctx/core'
import { activeTraceId, createOtelObserver, traceparentOf } from '@idctx/otel'
import { pki, registerSdk, type Sdk } from './harness.js'

let sdk: Sdk
beforeAll(() => {
  sdk = registerSdk()
})
afterAll(async () => {
  await sdk.shutdown()
})

/** Every string an exporter would ship: span names, attributes, events, links, status, metric points. */
async function everythingExported(): Promise<string[]> {
  const out: string[] = []
  const add = (v: unknown) => out.push(typeof v === 'string' ? v : JSON.stringify(v))
  for (const s of sdk.spans()) {
    add(s.name)
    add(s.status.message ?? '')
    for (const [k, v] of Object.entries(s.attributes)) add(k), add(v)
    for (const e of s.events) {
      add(e.name)
      for (const [k, v] of Object.entries(e.attributes ?? {})) add(k), add(v)
    }
    for (const l of s.links) add(l.context), add(l.attributes ?? {})
  }
  const { resourceMetrics } = await sdk.reader.collect()
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      add(m.descriptor)
      for (const p of m.dataPoints) for (const [k, v] of Object.entries(p.attributes)) add(k), add(v)
    }
  }
  return out
}

function windows(s: string, size: number): string[] {
  const w: string[] = []
  for (let i = 0; i + size <= s.length; i += 1) w.push(s.slice(i, i + size))
  return w
}

it('a full sign + verify + reject + disposition cycle exports no token, signature, payload, key or raw sub', async () => {
  const observer = createOtelObserver()
  const { key, signer, verifier, destination } = pki(observer, activeTraceId)
  const sub = 'user-5e1d-private-subject'
  const identity = { sub, tid: 'acme', txn: 'txn-secret-check', roles: ['clerk'], scope: 'orders:write' }
  const payload = 'credit-card-4111111111111111'
  const leaves = [kafkaLeaf('orders', 'k1', payload), kafkaLeaf('orders', 'k2', `${payload}-2`)]
  const tokens: string[] = []

  await trace.getTracer('test').startActiveSpan('request', async (request) => {
    const signed = signer.sign(identity, leaves.map((leaf) => ({ destination, leaf })))
    tokens.push(signed.token)
    const traceparent = traceparentOf()
    request.end()
    await context.with(trace.deleteSpan(context.active()), async () => {
      const ok = await verifier.verify({ tokens: [signed.token], proof: signed.proofs[0], destination, leaf: leaves[0]!, expectedTenant: 'acme', traceparent })
      expect(ok.ok).toBe(true)
      const cached = await verifier.verify({ tokens: [signed.token], proof: signed.proofs[1], destination, leaf: leaves[1]!, expectedTenant: 'acme', traceparent })
      expect(cached.ok).toBe(true)
      const wrongTenant = await verifier.verify({ tokens: [signed.token], proof: signed.proofs[0], destination, leaf: leaves[0]!, expectedTenant: 'globex', traceparent })
      expect(wrongTenant.ok === false && wrongTenant.error.reason).toBe(ReasonCode.TenantMismatch)
      const lifted = await verifier.verify({ tokens: [signed.token], proof: signed.proofs[0], destination, leaf: kafkaLeaf('orders', 'k3', 'other'), expectedTenant: 'acme', traceparent })
      expect(lifted.ok === false && lifted.error.reason).toBe(ReasonCode.BindingMismatch)
      const [h, p, sig] = signed.token.split('.') as [string, string, string]
      const tampered = `${h}.${p}.${sig.slice(0, -4)}${sig.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`
      tokens.push(tampered)
      const forged = await verifier.verify({ tokens: [tampered], proof: signed.proofs[0], destination, leaf: leaves[0]!, expectedTenant: 'acme', traceparent })
      expect(forged.ok === false && forged.error.reason).toBe(ReasonCode.BadSignature)
      observer.onDisposition?.({ reason: 'bad_signature', destination, policy: 'dead-letter', target: 'orders.idctx-dlq', coordinates: 'orders/0/7', tokenSha256: forged.tokenSha256, traceparent: undefined })
    })
  })

  const exported = await everythingExported()
  const blob = exported.join('\n')
  // the cycle did reach the exporters
  expect(blob).toContain('tenant_mismatch')
  expect(blob).toContain('binding_mismatch')
  expect(blob).toContain('bad_signature')
  expect(blob).toContain('txn-secret-check')

  const secrets: string[] = []
  for (const token of tokens) {
    const [, claims, sig] = token.split('.') as [string, string, string]
    secrets.push(token, ...windows(sig, 12), ...windows(claims, 16))
  }
  const jwk = exportPrivateJwk(key) as { d?: string }
  expect(jwk.d).toBeTypeOf('string')
  secrets.push(...windows(jwk.d as string, 12))
  secrets.push(sub, payload, leaves[0]!.toString('base64url'), leaves[0]!.toString('hex'))
  for (const s of secrets) expect(blob.includes(s), `exported data contains a secret fragment`).toBe(false)
})
