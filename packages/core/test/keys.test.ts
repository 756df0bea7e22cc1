import { describe, it, expect } from 'vitest'
import { createPublicKey, createSecretKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, jwtVerify, type JWK } from 'jose'
import {
  ALGORITHMS,
  exportPrivateJwk,
  exportPublicJwk,
  generateKey,
  importJwk,
  importPem,
  importSecret,
  jwkThumbprint,
  KeyError,
  toJwks,
  type Algorithm,
  type IdctxKey,
} from '@idctx/core'
import { AUD, CONTEXT, DEST, LEAF, ordersSigner, weakRsaPem } from './fixtures.js'

const ASYMMETRIC: Algorithm[] = ['EdDSA', 'ES256', 'RS256']
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

const keys: Record<Algorithm, IdctxKey> = {
  EdDSA: generateKey('EdDSA'),
  ES256: generateKey('ES256'),
  RS256: generateKey('RS256'),
  HS256: generateKey('HS256'),
}

/** Signs a token with `signer` and checks it with jose and `verifyWith`'s verification key. */
async function signsAndVerifies(signer: IdctxKey, verifyWith: IdctxKey): Promise<boolean> {
  const { token } = ordersSigner(signer).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])
  try {
    await jwtVerify(token, verifyWith.verificationKey, { algorithms: [verifyWith.alg], audience: AUD, currentDate: new Date(1_800_000_000_250) })
    return true
  } catch {
    return false
  }
}

describe('keys: generate', () => {
  it('lists every algorithm, asymmetric ones first', () => {
    expect(ALGORITHMS).toEqual(['EdDSA', 'ES256', 'RS256', 'HS256'])
    expect(Object.isFrozen(ALGORITHMS)).toBe(true)
  })

  it('defaults to EdDSA', () => {
    expect(generateKey().alg).toBe('EdDSA')
  })

  it.each(ALGORITHMS.map((a) => [a]))('generates a %s key bound to one alg, frozen, able to sign', async (alg) => {
    const key = keys[alg]
    expect(key.alg).toBe(alg)
    expect(Object.isFrozen(key)).toBe(true)
    expect(key.signingKey).toBeDefined()
    expect(await signsAndVerifies(key, key)).toBe(true)
  })

  it('generates the right key types and sizes', () => {
    expect(keys.EdDSA.verificationKey.asymmetricKeyType).toBe('ed25519')
    expect(keys.ES256.verificationKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(keys.RS256.verificationKey.asymmetricKeyDetails?.modulusLength).toBeGreaterThanOrEqual(2048)
    expect(keys.HS256.verificationKey.symmetricKeySize).toBe(32)
  })

  it('takes an explicit kid, and refuses an empty or too long one', () => {
    expect(generateKey('EdDSA', { kid: 'orders-2026-11' }).kid).toBe('orders-2026-11')
    expect(() => generateKey('EdDSA', { kid: '' })).toThrow(KeyError)
    expect(() => generateKey('EdDSA', { kid: 'k'.repeat(257) })).toThrow(KeyError)
  })

  it('refuses an unknown algorithm', () => {
    expect(() => generateKey('RS384' as Algorithm)).toThrow(TypeError)
  })
})

describe('keys: RFC 7638 thumbprint kid', () => {
  it.each(ASYMMETRIC.map((a) => [a]))('%s default kid equals jose calculateJwkThumbprint', async (alg) => {
    const key = keys[alg]
    const jwk = key.verificationKey.export({ format: 'jwk' }) as JWK
    expect(key.kid).toBe(await calculateJwkThumbprint(jwk, 'sha256'))
    expect(jwkThumbprint(key.verificationKey)).toBe(key.kid)
    // the thumbprint ignores kid, alg, use
    expect(await calculateJwkThumbprint(exportPublicJwk(key) as JWK)).toBe(key.kid)
  })

  it('HS256 default kid equals jose calculateJwkThumbprint of the oct JWK', async () => {
    const jwk = keys.HS256.verificationKey.export({ format: 'jwk' }) as JWK
    expect(keys.HS256.kid).toBe(await calculateJwkThumbprint(jwk))
  })

  it('the private and public halves give the same thumbprint', () => {
    for (const alg of ASYMMETRIC) {
      const pub = createPublicKey(keys[alg].signingKey as NonNullable<IdctxKey['signingKey']>)
      expect(jwkThumbprint(pub)).toBe(keys[alg].kid)
    }
  })
})

describe('keys: JWK import and export', () => {
  it.each(ASYMMETRIC.map((a) => [a]))('%s: private JWK round trip signs for the original public key', async (alg) => {
    const jwk = exportPrivateJwk(keys[alg])
    expect(jwk).toMatchObject({ kid: keys[alg].kid, alg })
    const imported = importJwk(jwk)
    expect(imported.kid).toBe(keys[alg].kid)
    expect(imported.alg).toBe(alg)
    expect(await signsAndVerifies(imported, keys[alg])).toBe(true)
  })

  it.each(ASYMMETRIC.map((a) => [a]))('%s: public JWK imports verify-only', async (alg) => {
    const pub = importJwk(exportPublicJwk(keys[alg]))
    expect(pub.signingKey).toBeUndefined()
    expect(pub.kid).toBe(keys[alg].kid)
    expect(await signsAndVerifies(keys[alg], pub)).toBe(true)
  })

  it('HS256: oct JWK round trip', async () => {
    const jwk = exportPrivateJwk(keys.HS256)
    expect(jwk.kty).toBe('oct')
    const imported = importJwk(jwk)
    expect(imported.alg).toBe('HS256')
    expect(await signsAndVerifies(imported, keys.HS256)).toBe(true)
  })

  it('infers the alg from the key type when the JWK has none, and takes options.kid', () => {
    const { kid: _k, alg: _a, use: _u, ...bare } = exportPublicJwk(keys.ES256)
    const key = importJwk(bare, { kid: 'es-1' })
    expect(key.alg).toBe('ES256')
    expect(key.kid).toBe('es-1')
    expect(importJwk(bare).kid).toBe(keys.ES256.kid)
  })

  it('refuses a JWK whose alg disagrees with the requested one', () => {
    expect(() => importJwk(exportPublicJwk(keys.EdDSA), { alg: 'ES256' })).toThrow(KeyError)
    expect(() => importJwk(exportPrivateJwk(keys.RS256), { alg: 'HS256' })).toThrow(KeyError)
    expect(() => importJwk(exportPrivateJwk(keys.HS256), { alg: 'EdDSA' })).toThrow(KeyError)
  })

  it('refuses a key whose type does not fit the alg it claims', () => {
    expect(() => importJwk({ ...exportPublicJwk(keys.EdDSA), alg: 'ES256' })).toThrow(KeyError)
    expect(() => importJwk({ ...exportPublicJwk(keys.RS256), alg: 'EdDSA' })).toThrow(KeyError)
    // the classic confusion: an RSA public key offered as an HMAC secret
    expect(() => importJwk(exportPublicJwk(keys.RS256), { alg: 'HS256' })).toThrow(KeyError)
  })

  it('refuses unsupported algorithms and curves', () => {
    expect(() => importJwk({ ...exportPublicJwk(keys.RS256), alg: 'RS384' })).toThrow(KeyError)
    expect(() => importJwk({ ...exportPublicJwk(keys.RS256), alg: 'none' })).toThrow(KeyError)
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'jwk' })
    expect(() => importJwk(p384)).toThrow(KeyError)
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' })
    expect(() => importJwk(x25519)).toThrow(KeyError)
  })

  it('refuses garbage with a KeyError, never a crash', () => {
    expect(() => importJwk({ kty: 'RSA' })).toThrow(KeyError)
    expect(() => importJwk({ kty: 'OKP', crv: 'Ed25519', x: '!!' })).toThrow(KeyError)
    expect(() => importJwk({ kty: 'oct' })).toThrow(KeyError)
    expect(() => importJwk(null as never)).toThrow(KeyError)
  })

  it('error messages never contain key material', () => {
    const jwk = exportPrivateJwk(keys.RS256)
    try {
      importJwk({ ...jwk, alg: 'EdDSA' })
      expect.unreachable()
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(jwk.d as string)
      expect(String((e as Error).message)).not.toContain((jwk.n as string).slice(0, 20))
    }
  })
})

describe('keys: PEM import', () => {
  it.each(ASYMMETRIC.map((a) => [a]))('%s: PKCS#8 private PEM signs, SPKI public PEM verifies', async (alg) => {
    const k = keys[alg]
    const privatePem = (k.signingKey as NonNullable<IdctxKey['signingKey']>).export({ type: 'pkcs8', format: 'pem' }).toString()
    const publicPem = k.verificationKey.export({ type: 'spki', format: 'pem' }).toString()
    const priv = importPem(privatePem, { kid: 'pem-1' })
    const pub = importPem(publicPem, { kid: 'pem-1' })
    expect(priv.alg).toBe(alg)
    expect(pub.alg).toBe(alg)
    expect(pub.signingKey).toBeUndefined()
    expect(importPem(publicPem).kid).toBe(k.kid)
    expect(await signsAndVerifies(priv, pub)).toBe(true)
  })

  it('refuses a PEM for another alg', () => {
    const pem = keys.EdDSA.verificationKey.export({ type: 'spki', format: 'pem' }).toString()
    expect(() => importPem(pem, { alg: 'ES256' })).toThrow(KeyError)
    expect(() => importPem(pem, { alg: 'HS256' })).toThrow(KeyError)
  })

  it('refuses RSA keys below 2048 bits (PEM and JWK, private and public)', () => {
    const weak = weakRsaPem()
    expect(() => importPem(weak.privatePem)).toThrow(KeyError)
    expect(() => importPem(weak.publicPem)).toThrow(/2048/)
    const jwk = createPublicKey(weak.publicPem).export({ format: 'jwk' })
    expect(() => importJwk({ ...jwk, alg: 'RS256' })).toThrow(KeyError)
  })

  it('refuses garbage', () => {
    expect(() => importPem('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----')).toThrow(KeyError)
    expect(() => importPem('not a pem')).toThrow(KeyError)
  })
})

describe('keys: HS256 secrets', () => {
  it('imports a 32-byte secret under a kid', async () => {
    const secret = randomBytes(32)
    const a = importSecret(secret, { kid: 'hs-1' })
    const b = importJwk({ kty: 'oct', k: secret.toString('base64url') }, { kid: 'hs-1' })
    expect(a.alg).toBe('HS256')
    expect(await signsAndVerifies(a, b)).toBe(true)
  })

  it('refuses secrets shorter than 32 bytes', () => {
    expect(() => importSecret(randomBytes(31), { kid: 'hs' })).toThrow(KeyError)
    expect(() => importJwk({ kty: 'oct', k: randomBytes(16).toString('base64url') })).toThrow(KeyError)
  })

  it('never publishes a secret', () => {
    expect(() => exportPublicJwk(keys.HS256)).toThrow(KeyError)
    expect(toJwks([keys.HS256]).keys).toEqual([])
  })
})

describe('keys: public JWKS', () => {
  it('holds every asymmetric key with kid, alg, use and no private member', () => {
    const jwks = toJwks(ALGORITHMS.map((a) => keys[a]))
    expect(jwks.keys.map((k) => k.alg)).toEqual(['EdDSA', 'ES256', 'RS256'])
    for (const jwk of jwks.keys) {
      expect(jwk.use).toBe('sig')
      expect(typeof jwk.kid).toBe('string')
      for (const m of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(m)
    }
    const text = JSON.stringify(jwks)
    for (const alg of ASYMMETRIC) {
      const d = exportPrivateJwk(keys[alg]).d as string
      expect(text).not.toContain(d)
    }
  })

  it('a public JWK of a verify-only key can be exported again; a private one cannot', () => {
    const pub = importJwk(exportPublicJwk(keys.EdDSA))
    expect(exportPublicJwk(pub)).toEqual(exportPublicJwk(keys.EdDSA))
    expect(() => exportPrivateJwk(pub)).toThrow(KeyError)
  })

  it('a secret KeyObject is never taken for an asymmetric alg', () => {
    const secret = createSecretKey(randomBytes(64))
    expect(() => importJwk(secret.export({ format: 'jwk' }), { alg: 'RS256' })).toThrow(KeyError)
  })
})
