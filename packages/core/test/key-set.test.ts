import { describe, it, expect } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import {
  createKeySet,
  createSigner,
  createVerifier,
  exportPrivateJwk,
  exportPublicJwk,
  generateKey,
  importJwk,
  KeyError,
  SigningError,
  staticKeySource,
} from '@idctx/core'
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
    const { keySet, sign, advance, k1 } = setup()
    const old = sign()
    keySet.rotate(generateKey('EdDSA', { kid: 'orders-2' }))
    advance(899_000)
    expect(keySet.prune(900)).toEqual([])
    expect(keySet.get('orders-1')).toBe(k1)
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

describe('static key source: public members only', () => {
  const ignoredBy = (jwks: unknown[]) => {
    const reports: unknown[] = []
    const source = staticKeySource({ keys: jwks as never }, { onKeyIgnored: (info) => reports.push(info) })
    return { source, reports }
  }

  it('a private JWK in a JWKS yields a verify-only key, reported without material', () => {
    const a = generateKey('EdDSA', { kid: 'a' })
    const jwk = exportPrivateJwk(a)
    const { source, reports } = ignoredBy([jwk])
    const key = source.get('a')
    expect(key?.alg).toBe('EdDSA')
    expect(key?.signingKey).toBeUndefined()
    expect(key?.verificationKey.type).toBe('public')
    expect(() => createSigner({ issuer: ISS, audience: AUD, key: key as NonNullable<typeof key> })).toThrow(SigningError)
    expect(reports).toEqual([{ kid: 'a', reason: 'private_members', detail: 'key "a": private members ignored, the public key is kept' }])
    expect(JSON.stringify(reports)).not.toContain(jwk.d as string)
  })

  it('skips oct, encryption, weak and malformed JWKs, reports each, and keeps the rest', () => {
    const ok = generateKey('ES256', { kid: 'ok' })
    const secret = exportPrivateJwk(generateKey('HS256', { kid: 'hs' }))
    const e3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey.export({ format: 'jwk' })
    const { source, reports } = ignoredBy([
      secret,
      { ...exportPublicJwk(generateKey('EdDSA', { kid: 'enc' })), use: 'enc' },
      { ...e3, kid: 'rsa-e3', alg: 'RS256' },
      { kty: 'OKP', crv: 'Ed25519', x: `AQ${'A'.repeat(41)}`, kid: 'ed-identity' },
      null,
      exportPublicJwk(ok),
    ])
    expect(reports).toEqual([
      { kid: 'hs', reason: 'symmetric_key', detail: 'key "hs": a symmetric (oct) JWK is never a published verification key' },
      { kid: 'enc', reason: 'encryption_key', detail: 'key "enc": an encryption key (use "enc") is not a signature key' },
      { kid: 'rsa-e3', reason: 'unusable', detail: 'key "rsa-e3": RSA public exponent must be 65537' },
      { kid: 'ed-identity', reason: 'unusable', detail: 'key "ed-identity": the Ed25519 public key is a small-order point' },
      { kid: undefined, reason: 'not_an_object', detail: 'a JWKS entry is not an object' },
    ])
    expect(JSON.stringify(reports)).not.toContain(secret.k as string)
    for (const kid of ['hs', 'enc', 'rsa-e3', 'ed-identity']) expect(source.get(kid)).toBeUndefined()
    expect(source.get('ok')?.alg).toBe('ES256')
  })

  it('skips without a listener too, and refuses a document without a keys array', () => {
    const secret = exportPrivateJwk(generateKey('HS256', { kid: 'hs' }))
    expect(staticKeySource({ keys: [secret] as never }).get('hs')).toBeUndefined()
    expect(() => staticKeySource({ keys: 'garbage' } as never)).toThrow(KeyError)
  })

  it('still refuses duplicate kids among the usable keys of a JWKS', () => {
    const a = exportPublicJwk(generateKey('EdDSA', { kid: 'a' }))
    const a2 = exportPublicJwk(generateKey('EdDSA', { kid: 'a' }))
    expect(() => staticKeySource({ keys: [a, a2] })).toThrow(KeyError)
  })

  it('a list of IdctxKeys is taken as given (HS256 needs its secret to verify)', () => {
    const hs = generateKey('HS256', { kid: 'hs' })
    expect(staticKeySource([hs]).get('hs')).toBe(hs)
  })
})
