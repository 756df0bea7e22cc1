import { describe, it, expect } from 'vitest'
import { createHash, createPublicKey, createSecretKey, generateKeyPairSync, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto'
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
  createKeySet,
  createVerifier,
  KeyError,
  toJwks,
  type Algorithm,
  type IdctxKey,
} from '@idctx/core'
import { AUD, b64, baseClaims, baseInput, clock, CONTEXT, DEST, ISS, LEAF, ordersSigner, rawSign, weakRsaPem } from './fixtures.js'

const ASYMMETRIC: Algorithm[] = ['EdDSA', 'ES256', 'RS256']
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

const keys: Record<Algorithm, IdctxKey> = {
  EdDSA: generateKey('EdDSA'),
  ES256: generateKey('ES256'),
  RS256: generateKey('RS256'),
  HS256: generateKey('HS256'),
}

/** The error `fn` throws; fails the test when it returns. */
function thrownBy(fn: () => unknown): Error {
  try {
    fn()
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a throw, got a return')
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
    expect(key.signingKey?.type).toBe(alg === 'HS256' ? 'secret' : 'private')
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
    const e = thrownBy(() => importJwk({ ...jwk, alg: 'EdDSA' }))
    expect(e).toBeInstanceOf(KeyError)
    expect(e.message).not.toContain(jwk.d as string)
    expect(e.message).not.toContain((jwk.n as string).slice(0, 20))
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
  it('a key built by hand with its private KeyObject as verificationKey publishes the public part only', () => {
    const published: string[] = []
    for (const alg of ASYMMETRIC) {
      const signingKey = keys[alg].signingKey as KeyObject
      const handMade: IdctxKey = { kid: `hand-${alg}`, alg, signingKey, verificationKey: signingKey }
      const jwk = exportPublicJwk(handMade)
      expect(jwk).toEqual({ ...exportPublicJwk(keys[alg]), kid: `hand-${alg}` })
      for (const m of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(m)
      published.push(JSON.stringify(createKeySet({ active: handMade }).jwks()))
      expect(published.at(-1)).not.toContain(exportPrivateJwk(keys[alg]).d as string)
    }
  })

  it('a secret KeyObject as the verificationKey of an asymmetric alg is never published', () => {
    const secret = createSecretKey(randomBytes(32))
    const handMade: IdctxKey = { kid: 'hand-secret', alg: 'EdDSA', signingKey: secret, verificationKey: secret }
    expect(() => exportPublicJwk(handMade)).toThrow(KeyError)
    expect(() => toJwks([handMade])).toThrow(KeyError)
    try {
      toJwks([handMade])
    } catch (e) {
      expect(String(e)).not.toContain(secret.export().toString('base64url'))
    }
  })
})

const reasonOf = (r: Awaited<ReturnType<ReturnType<typeof createVerifier>['verify']>>) => (r.ok ? 'ok' : r.error.reason)

/** A compact JWS of the default claims under `kid`, with `signature` (or the one `sign` makes). */
function tokenWith(alg: Algorithm, kid: string, sign: (input: string) => Buffer): string {
  const input = `${b64({ alg, kid, typ: 'idctx+jwt' })}.${b64(baseClaims())}`
  return `${input}.${sign(input).toString('base64url')}`
}

/** A verifier trusting `jwks` for the `orders` issuer (a static JWKS, as from a config file). */
const verifierOf = (jwks: readonly Record<string, unknown>[]) =>
  createVerifier({ audience: AUD, issuers: { [ISS]: { keys: jwks as never } }, clock })

/** The minimal big-endian base64url of an RSA public exponent. */
const exponent = (e: number) => Buffer.from(e.toString(16).padStart(e.toString(16).length + (e.toString(16).length % 2), '0'), 'hex').toString('base64url')

/** EMSA-PKCS1-v1_5 of SHA-256(input) for a 2048-bit modulus: with e = 1 it is its own signature. */
function pkcs1Sha256(input: string): Buffer {
  const digestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex')
  const hash = createHash('sha256').update(input).digest()
  const padding = Buffer.alloc(256 - 3 - digestInfo.length - hash.length, 0xff)
  return Buffer.concat([Buffer.from([0, 1]), padding, Buffer.from([0]), digestInfo, hash])
}

describe('keys: weak RSA keys are refused at import', () => {
  it('a genuine e = 65537 key imports', () => {
    expect(exportPublicJwk(keys.RS256).e).toBe(exponent(65537))
    expect(importJwk(exportPublicJwk(keys.RS256)).kid).toBe(keys.RS256.kid)
  })

  it.each([[1], [3], [17], [65535], [65539]])('an RSA JWK with public exponent %i is a KeyError naming the kid, never the modulus', (e) => {
    const jwk = { ...exportPublicJwk(keys.RS256), e: exponent(e), kid: `rsa-e${e}` }
    const error = thrownBy(() => importJwk(jwk))
    expect(error).toBeInstanceOf(KeyError)
    expect(error.message).toBe(`key "rsa-e${e}": RSA public exponent must be 65537`)
    expect(error.message).not.toContain((jwk.n as string).slice(0, 20))
  })

  it('an RSA PEM with public exponent 3 is refused, private and public', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    expect(() => importPem(privatePem, { kid: 'rsa-e3-private' })).toThrow(KeyError)
    expect(() => importPem(publicPem, { kid: 'rsa-e3' })).toThrow('key "rsa-e3": RSA public exponent must be 65537')
  })

  it('the e = 1 attack: the padded hash verifies in node:crypto; the key is refused and its token is unknown_kid', async () => {
    const jwk = { ...exportPublicJwk(keys.RS256), e: exponent(1), kid: 'rsa-e1' }
    const token = tokenWith('RS256', 'rsa-e1', pkcs1Sha256)
    const [h64, p64, s64] = token.split('.') as [string, string, string]
    const raw = createPublicKey({ key: jwk, format: 'jwk' })
    expect(cryptoVerify('sha256', Buffer.from(`${h64}.${p64}`), raw, Buffer.from(s64, 'base64url'))).toBe(true)
    expect(() => importJwk(jwk)).toThrow(KeyError)
    expect(reasonOf(await verifierOf([jwk]).verify(baseInput(token)))).toBe('unknown_kid')
  })
})

const ED_P = 2n ** 255n - 19n
/** y of the order-8 points, from libsodium's `ge25519_has_small_order` blocklist (little-endian there). */
const ED_Y8 = BigInt(`0x${Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex').reverse().toString('hex')}`)

/** RFC 8032 §5.1.2 encoding: y little-endian, the sign of x in the top bit (y may be ≥ p: non-canonical). */
function edEncoding(y: bigint, xSign: 0 | 1): Buffer {
  const bytes = Buffer.from(y.toString(16).padStart(64, '0'), 'hex').reverse()
  bytes[31] = (bytes[31] as number) | (xSign << 7)
  return bytes
}

const edSpki = (x: Buffer) =>
  `-----BEGIN PUBLIC KEY-----\n${Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), x]).toString('base64')}\n-----END PUBLIC KEY-----\n`

const SMALL_ORDER: [string, Buffer][] = [
  ['identity, order 1 (y = 1)', edEncoding(1n, 0)],
  ['order 2 (y = p - 1)', edEncoding(ED_P - 1n, 0)],
  ['order 4 (y = 0, x even)', edEncoding(0n, 0)],
  ['order 4 (y = 0, x odd)', edEncoding(0n, 1)],
  ['order 8 (y = y8, x even)', edEncoding(ED_Y8, 0)],
  ['order 8 (y = y8, x odd)', edEncoding(ED_Y8, 1)],
  ['order 8 (y = p - y8, x even)', edEncoding(ED_P - ED_Y8, 0)],
  ['order 8 (y = p - y8, x odd)', edEncoding(ED_P - ED_Y8, 1)],
  ['non-canonical identity: x = -0', edEncoding(1n, 1)],
  ['non-canonical order 2: x = -0', edEncoding(ED_P - 1n, 1)],
  ['non-canonical order 4: y = p', edEncoding(ED_P, 0)],
  ['non-canonical order 4: y = p, sign set', edEncoding(ED_P, 1)],
  ['non-canonical identity: y = p + 1', edEncoding(ED_P + 1n, 0)],
  ['non-canonical identity: y = p + 1, sign set', edEncoding(ED_P + 1n, 1)],
]

describe('keys: small-order Ed25519 keys are refused at import', () => {
  it('lists the 8 small-order points and 6 non-canonical spellings of them', () => {
    expect(SMALL_ORDER).toHaveLength(14)
    expect(new Set(SMALL_ORDER.map(([, x]) => x.toString('hex'))).size).toBe(14)
    expect(edEncoding(1n, 0).toString('hex')).toBe(`01${'00'.repeat(31)}`)
    expect(edEncoding(ED_P - ED_Y8, 0).toString('hex')).toBe('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')
  })

  it.each(SMALL_ORDER)('%s: importJwk and importPem throw a KeyError naming the kid', (_name, x) => {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: x.toString('base64url'), kid: 'ed-small' }
    const error = thrownBy(() => importJwk(jwk))
    expect(error).toBeInstanceOf(KeyError)
    expect(error.message).toBe('key "ed-small": the Ed25519 public key is a small-order point')
    expect(() => importPem(edSpki(x), { kid: 'ed-small' })).toThrow('key "ed-small": the Ed25519 public key is a small-order point')
  })

  it('refuses a non-canonical encoding (y >= p) of any other point', () => {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: edEncoding(ED_P + 2n, 0).toString('base64url'), kid: 'ed-nc' }
    expect(() => importJwk(jwk)).toThrow(KeyError)
    expect(() => importJwk(jwk)).toThrow('key "ed-nc": the Ed25519 public key is not canonically encoded')
  })

  it('a generated key still imports, by JWK and by PEM', () => {
    const pem = keys.EdDSA.verificationKey.export({ type: 'spki', format: 'pem' }).toString()
    expect(importJwk(exportPublicJwk(keys.EdDSA)).kid).toBe(keys.EdDSA.kid)
    expect(importPem(pem).kid).toBe(keys.EdDSA.kid)
  })

  it('the identity attack: R = identity, S = 0 verifies any payload under the OpenSSL of Node 20; the key is refused and its token is unknown_kid', async () => {
    const identity = edEncoding(1n, 0)
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: identity.toString('base64url'), kid: 'ed-identity', alg: 'EdDSA' }
    const forged = Buffer.concat([identity, Buffer.alloc(32)])
    const raw = createPublicKey({ key: jwk, format: 'jwk' })
    // Whether node:crypto itself accepts the forgery depends on the OpenSSL build: Node 20's does
    // (for every payload alike), Node 24's refuses it. idctx must refuse the key either way.
    const accepted = cryptoVerify(null, Buffer.from('any payload'), raw, forged)
    expect(cryptoVerify(null, Buffer.from('another payload'), raw, forged)).toBe(accepted)
    if (process.versions.node.startsWith('20.')) expect(accepted).toBe(true)
    expect(() => importJwk(jwk)).toThrow(KeyError)
    const token = tokenWith('EdDSA', 'ed-identity', () => forged)
    const genuine = exportPublicJwk(keys.EdDSA)
    const verifier = verifierOf([jwk, genuine])
    expect(reasonOf(await verifier.verify(baseInput(token)))).toBe('unknown_kid')
    const good = ordersSigner(keys.EdDSA).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token
    expect(reasonOf(await verifier.verify(baseInput(good)))).toBe('ok')
  })
})

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n
const sOf = (token: string) => BigInt(`0x${Buffer.from(token.split('.')[2] as string, 'base64url').subarray(32).toString('hex')}`)

/** The same token with S replaced by n - S: a second valid ECDSA signature of the same bytes. */
function highSTwin(token: string): string {
  const [h64, p64, s64] = token.split('.') as [string, string, string]
  const sig = Buffer.from(s64, 'base64url')
  const twinS = Buffer.from((P256_N - sOf(token)).toString(16).padStart(64, '0'), 'hex')
  return `${h64}.${p64}.${Buffer.concat([sig.subarray(0, 32), twinS]).toString('base64url')}`
}

describe('keys: ES256 signatures are low-S (one token, one spelling)', () => {
  const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: [keys.ES256] }, clock })
  const signES256 = () => ordersSigner(keys.ES256).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token

  it('every ES256 signature createSigner makes has S <= n/2 and verifies', async () => {
    const tokens = Array.from({ length: 64 }, signES256)
    expect(tokens).toHaveLength(64)
    expect(new Set(tokens).size).toBe(64)
    for (const token of tokens) {
      expect(sOf(token) <= P256_N / 2n).toBe(true)
      expect(reasonOf(await verifier.verify(baseInput(token)))).toBe('ok')
    }
  })

  it('the high-S twin of a valid signature is bad_signature, though jose accepts it', async () => {
    const token = signES256()
    const twin = highSTwin(token)
    expect(sOf(twin) > P256_N / 2n).toBe(true)
    await expect(jwtVerify(twin, keys.ES256.verificationKey, { algorithms: ['ES256'], audience: AUD, currentDate: new Date(clock()) })).resolves.toMatchObject({
      protectedHeader: { alg: 'ES256' },
    })
    expect(reasonOf(await verifier.verify(baseInput(token)))).toBe('ok')
    expect(reasonOf(await verifier.verify(baseInput(twin)))).toBe('bad_signature')
  })

  it('a high-S signature made straight with node:crypto is bad_signature; its low-S twin verifies', async () => {
    let token: string
    do token = tokenWith('ES256', keys.ES256.kid, (input) => rawSign('ES256', keys.ES256.signingKey as NonNullable<IdctxKey['signingKey']>, input))
    while (sOf(token) <= P256_N / 2n)
    expect(reasonOf(await verifier.verify(baseInput(token)))).toBe('bad_signature')
    expect(reasonOf(await verifier.verify(baseInput(highSTwin(token))))).toBe('ok')
  })
})
