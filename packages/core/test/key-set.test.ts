import { describe, it, expect } from 'vitest'
import { createKeySet, createSigner, createVerifier, exportPublicJwk, generateKey, importJwk, KeyError, staticKeySource } from '@idctx/core'
import { AUD, baseInput, CONTEXT, DEST, ISS, LEAF, NOW_MS } from './fixtures.js'

function setup() {
  let now = NOW_MS
  const clock = () => now
  const k1 = generateKey('EdDSA', { kid: 'orders-1' })
  const keySet = createKeySet({ active: k1, clock })
  const signer = createSigner({ issuer: ISS, audience: AUD, key: keySet, clock })
  const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: keySet }, clock })
  const sign = () => signer.sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token
  const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid as string
  return { k1, keySet, signer, verifier, sign, kidOf, advance: (ms: number) => (now += ms) }
}

describe('key set: rotation', () => {
  it('signs with the active key; after rotate, new tokens use the new kid', () => {
    const { keySet, sign, kidOf } = setup()
    expect(kidOf(sign())).toBe('orders-1')
    keySet.rotate(generateKey('EdDSA', { kid: 'orders-2' }))
    expect(keySet.active.kid).toBe('orders-2')
    expect(kidOf(sign())).toBe('orders-2')
    expect(keySet.keys().map((k) => k.kid)).toEqual(['orders-2', 'orders-1'])
  })

  it('a token signed before rotation still verifies after it', async () => {
    const { keySet, sign, verifier, advance } = setup()
    const old = sign()
    expect((await verifier.verify(baseInput(old))).ok).toBe(true)
    keySet.rotate(generateKey('EdDSA', { kid: 'orders-2' }))
    advance(60_000)
    verifier.clearCache()
    const r = await verifier.verify(baseInput(old))
    expect(r.ok ? 'ok' : r.error.reason).toBe('ok')
    const fresh = await verifier.verify(baseInput(sign()))
    expect(fresh.ok).toBe(true)
  })

  it('publishes old and new keys in its JWKS until pruned', () => {
    const { keySet, advance } = setup()
    keySet.rotate(generateKey('EdDSA', { kid: 'orders-2' }))
    expect(keySet.jwks().keys.map((k) => k.kid)).toEqual(['orders-2', 'orders-1'])
    advance(900_000)
    expect(keySet.prune(900).map((k) => k.kid)).toEqual(['orders-1'])
    expect(keySet.jwks().keys.map((k) => k.kid)).toEqual(['orders-2'])
  })

  it('refuses a rotation to the same kid or to a verify-only key', () => {
    const { keySet, k1 } = setup()
    expect(() => keySet.rotate(generateKey('EdDSA', { kid: 'orders-1' }))).toThrow(KeyError)
    expect(() => keySet.rotate(importJwk(exportPublicJwk(generateKey())))).toThrow(KeyError)
    expect(keySet.active).toBe(k1)
    expect(() => createKeySet({ active: importJwk(exportPublicJwk(k1)) })).toThrow(KeyError)
  })
})

describe('key set: staging', () => {
  it('a staged key is published and verifiable but does not sign until rotate()', async () => {
    const { keySet, sign, kidOf, verifier } = setup()
    const k2 = generateKey('EdDSA', { kid: 'orders-2' })
    keySet.stage(k2)
    expect(keySet.staged).toBe(k2)
    expect(keySet.get('orders-2')).toBe(k2)
    expect(keySet.jwks().keys.map((k) => k.kid)).toEqual(['orders-1', 'orders-2'])
    expect(kidOf(sign())).toBe('orders-1')
    keySet.rotate()
    expect(keySet.staged).toBeUndefined()
    const token = sign()
    expect(kidOf(token)).toBe('orders-2')
    expect((await verifier.verify(baseInput(token))).ok).toBe(true)
    expect(keySet.keys().map((k) => k.kid)).toEqual(['orders-2', 'orders-1'])
  })

  it('refuses a staged kid already in use, a verify-only key, and rotate() with nothing staged', () => {
    const { keySet } = setup()
    expect(() => keySet.rotate()).toThrow(KeyError)
    expect(() => keySet.stage(generateKey('EdDSA', { kid: 'orders-1' }))).toThrow(KeyError)
    expect(() => keySet.stage(importJwk(exportPublicJwk(generateKey())))).toThrow(KeyError)
    expect(keySet.staged).toBeUndefined()
  })
})

describe('key set: prune', () => {
  it('keeps a retired key until max age has passed, then drops it', async () => {
    const { keySet, sign, advance } = setup()
    const old = sign()
    keySet.rotate(generateKey('EdDSA', { kid: 'orders-2' }))
    advance(899_000)
    expect(keySet.prune(900)).toEqual([])
    expect(keySet.get('orders-1')).toBeDefined()
    advance(1_000)
    expect(keySet.prune(900).map((k) => k.kid)).toEqual(['orders-1'])
    expect(keySet.get('orders-1')).toBeUndefined()
    // the token is long expired by then anyway; give it a fresh clock to see the kid reason
    const lateVerifier = createVerifier({ audience: AUD, issuers: { [ISS]: keySet }, clock: () => NOW_MS })
    const r = await lateVerifier.verify(baseInput(old))
    expect(r.ok ? 'ok' : r.error.reason).toBe('unknown_kid')
  })

  it('a verifier stops trusting a cached token once its key is pruned', async () => {
    let now = NOW_MS
    const clock = () => now
    const keySet = createKeySet({ active: generateKey('EdDSA', { kid: 'a' }), clock })
    const signer = createSigner({ issuer: ISS, audience: AUD, key: keySet, clock })
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: keySet }, clock: () => NOW_MS })
    const { token } = signer.sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])
    expect((await verifier.verify(baseInput(token))).ok).toBe(true)
    const second = await verifier.verify(baseInput(token))
    expect(second.ok && second.cached).toBe(true)
    keySet.rotate(generateKey('EdDSA', { kid: 'b' }))
    now += 1_000_000
    keySet.prune(900)
    const r = await verifier.verify(baseInput(token))
    expect(r.ok ? 'ok' : r.error.reason).toBe('unknown_kid')
  })

  it('never prunes the active key', () => {
    const { keySet, advance } = setup()
    advance(10_000_000)
    expect(keySet.prune(0)).toEqual([])
    expect(keySet.keys()).toHaveLength(1)
  })

  it('prunes retiring keys given at creation by their creation time', () => {
    let now = NOW_MS
    const keySet = createKeySet({ active: generateKey(), retiring: [generateKey('ES256', { kid: 'old' })], clock: () => now })
    expect(keySet.get('old')?.alg).toBe('ES256')
    now += 901_000
    expect(keySet.prune(900).map((k) => k.kid)).toEqual(['old'])
  })
})

describe('static key source', () => {
  it('reads IdctxKeys or a JWKS document', () => {
    const a = generateKey('EdDSA', { kid: 'a' })
    const b = generateKey('ES256', { kid: 'b' })
    const fromKeys = staticKeySource([a, b])
    expect(fromKeys.get('a')).toBe(a)
    const fromJwks = staticKeySource({ keys: [exportPublicJwk(a), exportPublicJwk(b)] })
    expect(fromJwks.get('b')?.alg).toBe('ES256')
    expect(fromJwks.get('b')?.signingKey).toBeUndefined()
    expect(fromJwks.get('c')).toBeUndefined()
    expect(fromJwks.get('__proto__')).toBeUndefined()
  })

  it('refuses duplicate kids', () => {
    const a = generateKey('EdDSA', { kid: 'a' })
    expect(() => staticKeySource([a, generateKey('EdDSA', { kid: 'a' })])).toThrow(KeyError)
  })
})
