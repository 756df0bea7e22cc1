import { describe, it, expect } from 'vitest'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  advanceKeySet,
  createJwksHandler,
  createKeySet,
  createRemoteJwks,
  createSigner,
  createVerifier,
  exportKeySet,
  generateKey,
  importKeySet,
  jwksResponse,
  KeyError,
  type KeySetDocument,
} from '@idctx/core'
import { AUD, baseInput, CONTEXT, DEST, ISS, LEAF, NOW_MS } from './fixtures.js'

const T0 = NOW_MS

function freshDocument(): KeySetDocument {
  return exportKeySet(createKeySet({ active: generateKey('EdDSA', { kid: 'orders-1' }), clock: () => T0 }))
}

describe('key set document: one key set for every replica', () => {
  it('round-trips active, staged and retiring keys with their times', () => {
    let now = T0
    const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'a' }), clock: () => now })
    keys.stage(generateKey('EdDSA', { kid: 'b' }))
    keys.rotate()
    now += 5_000
    keys.stage(generateKey('ES256', { kid: 'c' }))
    const doc = exportKeySet(keys)
    expect(doc).toMatchObject({ idctx: 'keyset-v1', active: 'b', staged: 'c', stagedAt: T0 + 5_000, retiring: [{ kid: 'a', retiredAt: T0 }] })
    const again = importKeySet(JSON.stringify(doc))
    expect(again.active.kid).toBe('b')
    expect(again.staged?.kid).toBe('c')
    expect(again.state().retiring.map((r) => [r.key.kid, r.retiredAt])).toEqual([['a', T0]])
    expect(again.jwks()).toEqual(keys.jwks())
  })

  it('three replicas loading one document sign tokens every one of them verifies', async () => {
    const doc = JSON.stringify(freshDocument())
    const replicas = [0, 1, 2].map(() => createSigner({ issuer: ISS, audience: AUD, key: importKeySet(doc) }))
    // The verifier trusts only what one replica publishes.
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: importKeySet(doc).jwks() } })
    for (const signer of replicas) {
      const r = await verifier.verify(baseInput(signer.sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token))
      expect(r.ok ? 'ok' : r.error.reason).toBe('ok')
    }
  })

  it.each([
    ['not JSON', '{"idctx":'],
    ['another version', JSON.stringify({ ...freshDocument(), idctx: 'keyset-v2' })],
    ['an unknown member', JSON.stringify({ ...freshDocument(), extra: 1 })],
    ['an active kid without its key', JSON.stringify({ ...freshDocument(), active: 'nope' })],
    ['a key that is neither active, staged nor retiring', JSON.stringify({ ...freshDocument(), keys: [...freshDocument().keys, ...exportKeySet(createKeySet({ active: generateKey('EdDSA', { kid: 'x' }) })).keys] })],
    ['a staged key without stagedAt', JSON.stringify({ ...exportKeySet((() => { const k = createKeySet({ active: generateKey('EdDSA', { kid: 'a' }) }); k.stage(generateKey('EdDSA', { kid: 'b' })); return k })()), stagedAt: null })],
    ['a stagedAt without a staged key', JSON.stringify({ ...freshDocument(), stagedAt: 5 })],
    ['a public-only active key', JSON.stringify({ ...freshDocument(), keys: freshDocument().keys.map(({ d: _d, ...pub }) => pub) })],
  ])('refuses %s with a KeyError that holds no key material', (_name, text) => {
    let error: unknown
    try {
      importKeySet(text)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(KeyError)
    const d = (JSON.parse(JSON.stringify(freshDocument())) as KeySetDocument).keys[0]?.d
    expect(String((error as Error).message)).not.toContain(String(d))
  })
})

describe('advanceKeySet: stage, rotate, prune as deploy steps', () => {
  it('stages, waits, rotates, and prunes after the retention — nothing else', () => {
    let doc = freshDocument()
    const step = (now: number) => {
      const r = advanceKeySet(doc, { now, stageForMs: 60_000, retireForMs: 120_000 })
      doc = r.document
      return r
    }
    const a = step(T0)
    expect(a).toMatchObject({ action: 'staged', pruned: [], nextStepAt: T0 + 60_000 })
    expect(doc.active).toBe('orders-1')
    expect(doc.staged).toBe(a.kid)
    expect(step(T0 + 59_999)).toMatchObject({ action: 'waiting', kid: a.kid, nextStepAt: T0 + 60_000 })
    const b = step(T0 + 60_000)
    expect(b).toMatchObject({ action: 'rotated', kid: a.kid, pruned: [] })
    expect(doc.active).toBe(a.kid)
    expect(doc.retiring).toEqual([{ kid: 'orders-1', retiredAt: T0 + 60_000 }])
    const c = step(T0 + 60_000 + 119_000)
    expect(c).toMatchObject({ action: 'staged', pruned: [] })
    const d = step(T0 + 60_000 + 120_000)
    expect(d).toMatchObject({ action: 'waiting', pruned: ['orders-1'] })
    expect(doc.retiring).toEqual([])
  })

  it('a verifier with the JWKS of every step verifies tokens of the keys it published: no unknown kid', async () => {
    let doc = freshDocument()
    const published = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const now = T0 + i * 60_000
      doc = advanceKeySet(doc, { now, stageForMs: 60_000, retireForMs: 600_000 }).document
      const keys = importKeySet(doc)
      for (const k of keys.jwks().keys) published.add(k.kid)
      // The active key was published at least one step before it signs.
      expect(published.has(keys.active.kid)).toBe(true)
      const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: keys.jwks() } })
      const token = createSigner({ issuer: ISS, audience: AUD, key: keys }).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token
      const r = await verifier.verify(baseInput(token))
      expect(r.ok).toBe(true)
    }
  })
})

describe('JWKS endpoint', () => {
  const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'k-1' }) })
  keys.stage(generateKey('EdDSA', { kid: 'k-2' }))

  it('serves the public JWKS with Cache-Control, ETag and 304', () => {
    const r = jwksResponse(keys, { method: 'GET' }, { maxAgeSeconds: 30 })
    expect(r.status).toBe(200)
    expect(r.headers['cache-control']).toBe('public, max-age=30')
    expect(r.headers['content-type']).toBe('application/jwk-set+json')
    const body = JSON.parse(r.body) as { keys: Record<string, unknown>[] }
    expect(body.keys.map((k) => k.kid)).toEqual(['k-1', 'k-2'])
    for (const k of body.keys) expect(Object.keys(k).some((m) => ['d', 'p', 'q', 'k'].includes(m))).toBe(false)
    const etag = r.headers.etag as string
    expect(jwksResponse(keys, { method: 'GET', ifNoneMatch: etag }).status).toBe(304)
    expect(jwksResponse(keys, { method: 'GET', ifNoneMatch: '"other"' }).status).toBe(200)
    expect(jwksResponse(keys, { method: 'POST' }).status).toBe(405)
    expect(jwksResponse(keys, { method: 'HEAD' }).body).toBe('')
    expect(() => jwksResponse(keys, {}, { maxAgeSeconds: Number.NaN })).toThrow(TypeError)
  })

  it('a node:http server with createJwksHandler feeds a remote JWKS verifier', async () => {
    const server = createServer(createJwksHandler(keys))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`
      const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: createRemoteJwks(url) } })
      expect(await verifier.ready()).toEqual({ ok: true, issuers: { [ISS]: { ok: true } } })
      const token = createSigner({ issuer: ISS, audience: AUD, key: keys }).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token
      const r = await verifier.verify(baseInput(token))
      expect(r.ok).toBe(true)
    } finally {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})
