import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  createKeySet,
  createMemoryReplayStore,
  createSigner,
  createVerifier,
  generateKey,
  httpDestination,
  httpLeaf,
  kafkaDestination,
  kafkaLeaf,
  type IdentityContext,
} from '@idctx/core'
import { createHopVerifier } from '@idctx/ingress'

describe('hostile HTTP hops', () => {
  const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'gw-1' }) })
  const signer = createSigner({ issuer: 'gateway', audience: 'shop', key: keys })
  const alice: IdentityContext = { sub: 'u-1', tid: 'acme', txn: randomUUID(), pty: 'user' }
  const replay = createMemoryReplayStore()
  const mkVerifier = () =>
    createVerifier({ audience: 'shop', issuers: { gateway: keys }, producerAcl: { gateway: { destinations: ['http:POST orders.internal/*', 'http:GET orders.internal/*', 'kafka:orders'] } }, replay })
  const gate = (o: { authorities?: string[] } = {}) => createHopVerifier({ verifier: mkVerifier(), tenant: 'acme', authorities: o.authorities ?? ['orders.internal'] })
  const hopToken = (method: string, authority: string, target: string, body?: string) => {
    const path = target.split(/[?#]/)[0] as string
    return signer.sign(alice, [{ destination: httpDestination(method, authority, path), leaf: httpLeaf(method, authority, target, body === undefined ? null : Buffer.from(body)) }]).token
  }
  const send = async (g: ReturnType<typeof gate>, token: string | string[], method: string, host: string | string[], target: string, body?: string) => {
    const x = await g.check({ method, url: target, headers: { host: host as string, idctx: token as string } }, body === undefined ? undefined : Buffer.from(body))
    return x.ok ? 'ok' : `${x.refusal.status} ${x.refusal.reason}`
  }

  it('path, query, method and authority variants of a signed request: binding_mismatch', async () => {
    const g = gate()
    const t = () => hopToken('POST', 'orders.internal', '/orders?a=1&b=2', '{"q":1}')
    for (const [method, host, target, body] of [
      ['POST', 'orders.internal', '/orders/?a=1&b=2', '{"q":1}'],
      ['POST', 'orders.internal', '/orders?b=2&a=1', '{"q":1}'],
      ['POST', 'orders.internal', '/orders?a=1&b=2&c=3', '{"q":1}'],
      ['POST', 'orders.internal', '/orders?a=1&b=2', '{"q":2}'],
      ['POST', 'orders.internal', '/orders?a=1&b=2', undefined],
      ['POST', 'orders.internal', '/x/../orders?a=1&b=2', '{"q":1}'],
      ['POST', 'orders.internal', '/%6Frders?a=1&b=2', '{"q":1}'],
      ['PUT', 'orders.internal', '/orders?a=1&b=2', '{"q":1}'],
      ['post', 'orders.internal', '/orders?a=1&b=2', '{"q":1}'],
      ['POST', 'orders.internal:80', '/orders?a=1&b=2', '{"q":1}'],
      ['POST', 'billing.internal', '/orders?a=1&b=2', '{"q":1}'],
      ['POST', ['orders.internal', 'orders.internal'], '/orders?a=1&b=2', '{"q":1}'],
      ['POST', 'orders.internal', 'http://orders.internal/orders?a=1&b=2', '{"q":1}'],
    ] as const) {
      expect(await send(g, t(), method, host as string, target, body), `${method} ${String(host)} ${target} ${String(body)}`).toBe('401 binding_mismatch')
    }
    expect(await send(g, t(), 'POST', 'ORDERS.internal', '/orders?a=1&b=2', '{"q":1}')).toBe('ok')
    const s = hopToken('POST', 'orders.internal', '/a%2Fb')
    expect(await send(g, s, 'POST', 'orders.internal', '/a/b')).toBe('401 binding_mismatch')
  })

  it('replay: the same token twice, also across two verifier instances sharing a store', async () => {
    const t = hopToken('POST', 'orders.internal', '/orders', 'x')
    expect(await send(gate(), t, 'POST', 'orders.internal', '/orders', 'x')).toBe('ok')
    expect(await send(gate(), t, 'POST', 'orders.internal', '/orders', 'x')).toBe('401 replayed')
    expect(await send(gate(), [t, t] as unknown as string, 'POST', 'orders.internal', '/orders', 'x')).toBe('401 duplicate')
  })

  it('destination confusion: a Kafka token on HTTP and an HTTP token on Kafka, a grant on HTTP', async () => {
    const k = signer.sign(alice, [{ destination: kafkaDestination('orders'), leaf: kafkaLeaf('orders', null, 'x') }]).token
    expect(await send(gate(), k, 'POST', 'orders.internal', '/orders', 'x')).toBe('401 binding_mismatch')
    const h = hopToken('POST', 'orders.internal', '/orders', 'x')
    const r = await mkVerifier().verify({ tokens: [h], destination: kafkaDestination('orders'), leaf: () => kafkaLeaf('orders', null, 'x'), expectedTenant: 'acme', coordinates: 'orders/0/1' })
    expect(r.ok ? 'ok' : r.error.reason).toBe('binding_mismatch')
    const d = httpDestination('POST', 'orders.internal', '/orders')
    const grant = signer.signGrant(alice, { destination: d, leaf: httpLeaf('POST', 'orders.internal', '/orders', Buffer.from('x')) }).token
    expect(await send(gate(), grant, 'POST', 'orders.internal', '/orders', 'x')).toBe('401 wrong_typ')
  })

  it('no authorities pinned: the Host header decides; GET with a body; an oversize body', async () => {
    const g = createHopVerifier({ verifier: mkVerifier(), tenant: { any: true }, maxBodyBytes: 8 })
    expect(await send(g, hopToken('GET', 'orders.internal', '/orders'), 'GET', 'orders.internal', '/orders', 'smuggled')).toBe('401 binding_mismatch')
    expect(await send(g, hopToken('POST', 'orders.internal', '/orders', '123456789'), 'POST', 'orders.internal', '/orders', '123456789')).toBe('401 oversize')
  })

  it('refusals never echo the token, claims or request values', async () => {
    const g = gate()
    const t = hopToken('POST', 'orders.internal', '/orders', 'secret-body')
    const x = await g.check({ method: 'POST', url: '/orders?q=<script>', headers: { host: 'orders.internal', idctx: t } }, Buffer.from('secret-body'))
    expect(x.ok).toBe(false)
    const shown = JSON.stringify(!x.ok && x.refusal)
    for (const p of [...t.split('.'), 'secret', '<script>', 'acme', 'u-1', 'orders.internal']) expect(shown).not.toContain(p)
  })
})

