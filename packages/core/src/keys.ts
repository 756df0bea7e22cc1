import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  randomBytes,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'
import { KeyError } from './errors.js'

/** Signature algorithms idctx signs and verifies with. HS256 needs an explicit opt-in. */
export type Algorithm = 'EdDSA' | 'ES256' | 'RS256' | 'HS256'

/**
 * Every algorithm idctx knows, the asymmetric ones first.
 *
 * @example
 * ```ts
 * ALGORITHMS.filter((a) => a !== 'HS256') // the ones a verifier allows by default
 * ```
 */
export const ALGORITHMS: readonly Algorithm[] = Object.freeze(['EdDSA', 'ES256', 'RS256', 'HS256'])

/** A public JWK as published in a JWKS, with the members idctx relies on. */
export interface PublicJwk extends JsonWebKey {
  kid: string
  alg: Algorithm
  use?: string
}

/** A JSON Web Key Set. */
export interface Jwks {
  keys: PublicJwk[]
}

/**
 * A key bound to exactly one algorithm and one kid. `signingKey` is the private (or secret) key
 * when the holder may sign; `verificationKey` is what a verifier uses. Imported once, as
 * node:crypto KeyObjects, so the per-message path never converts keys.
 */
export interface IdctxKey {
  readonly kid: string
  readonly alg: Algorithm
  readonly signingKey: KeyObject | undefined
  readonly verificationKey: KeyObject
}

const MIN_RSA_BITS = 2048
const MIN_HMAC_BYTES = 32

function checkKeyMatchesAlg(key: KeyObject, alg: Algorithm): void {
  const details = key.asymmetricKeyDetails
  switch (alg) {
    case 'EdDSA':
      if (key.asymmetricKeyType !== 'ed25519') throw new KeyError('EdDSA keys must be Ed25519')
      return
    case 'ES256':
      if (key.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
        throw new KeyError('ES256 keys must be EC P-256')
      }
      return
    case 'RS256':
      if (key.asymmetricKeyType !== 'rsa' || (details?.modulusLength ?? 0) < MIN_RSA_BITS) {
        throw new KeyError(`RS256 keys must be RSA of at least ${MIN_RSA_BITS} bits`)
      }
      return
    case 'HS256':
      if (key.type !== 'secret' || (key.symmetricKeySize ?? 0) < MIN_HMAC_BYTES) {
        throw new KeyError(`HS256 keys must be secrets of at least ${MIN_HMAC_BYTES} bytes`)
      }
      return
  }
}

function algFromKeyObject(key: KeyObject): Algorithm {
  if (key.type === 'secret') return 'HS256'
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 'EdDSA'
    case 'ec':
      return 'ES256'
    case 'rsa':
      return 'RS256'
    default:
      throw new KeyError('unsupported key type')
  }
}

function isAlgorithm(v: unknown): v is Algorithm {
  return typeof v === 'string' && (ALGORITHMS as readonly string[]).includes(v)
}

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url) of a key's public part: the default kid.
 *
 * @example
 * ```ts
 * const kid = jwkThumbprint(key.verificationKey)
 * ```
 */
export function jwkThumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as JsonWebKey
  let members: Record<string, unknown>
  switch (jwk.kty) {
    case 'OKP':
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
      break
    case 'EC':
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      break
    case 'RSA':
      members = { e: jwk.e, kty: jwk.kty, n: jwk.n }
      break
    default:
      members = { k: jwk.k, kty: jwk.kty }
  }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

function build(signingKey: KeyObject | undefined, verificationKey: KeyObject, alg: Algorithm, kid?: string): IdctxKey {
  checkKeyMatchesAlg(verificationKey, alg)
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) {
    throw new KeyError('kid must be a non-empty string of at most 256 characters')
  }
  return Object.freeze({
    kid: kid ?? jwkThumbprint(verificationKey),
    alg,
    signingKey,
    verificationKey,
  })
}

/**
 * Generates a new key for one algorithm (EdDSA by default). The kid defaults to the RFC 7638
 * thumbprint. HS256 generates a 32-byte random secret.
 *
 * @example
 * ```ts
 * const key = generateKey('EdDSA', { kid: 'orders-2026-11' })
 * ```
 */
export function generateKey(alg: Algorithm = 'EdDSA', options: { kid?: string } = {}): IdctxKey {
  let pair: { privateKey: KeyObject; publicKey: KeyObject }
  switch (alg) {
    case 'EdDSA':
      pair = generateKeyPairSync('ed25519')
      break
    case 'ES256':
      pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      break
    case 'RS256':
      pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
      break
    case 'HS256': {
      const secret = createSecretKey(randomBytes(32))
      return build(secret, secret, 'HS256', options.kid)
    }
    default:
      throw new TypeError('unknown algorithm')
  }
  return build(pair.privateKey, pair.publicKey, alg, options.kid)
}

/**
 * Imports a JWK (public, private or `oct`). The algorithm comes from `options.alg`, else the
 * JWK's `alg`, else the key type; a JWK whose `alg` disagrees with `options.alg` is refused, so a
 * key is only ever used with one algorithm.
 *
 * @example
 * ```ts
 * const key = importJwk({ kty: 'OKP', crv: 'Ed25519', x: '…', kid: 'k1' })
 * ```
 */
export function importJwk(jwk: JsonWebKey & { kid?: unknown; alg?: unknown }, options: { alg?: Algorithm; kid?: string } = {}): IdctxKey {
  if (jwk === null || typeof jwk !== 'object') throw new KeyError('a JWK must be an object')
  if (jwk.alg !== undefined && !isAlgorithm(jwk.alg)) throw new KeyError('JWK alg is not supported')
  if (options.alg !== undefined && jwk.alg !== undefined && jwk.alg !== options.alg) {
    throw new KeyError('JWK alg does not match the requested algorithm')
  }
  const kid = options.kid ?? (typeof jwk.kid === 'string' ? jwk.kid : undefined)
  try {
    if (jwk.kty === 'oct') {
      if (typeof jwk.k !== 'string') throw new KeyError('oct JWK needs k')
      const secret = createSecretKey(Buffer.from(jwk.k, 'base64url'))
      const alg = options.alg ?? (jwk.alg as Algorithm | undefined) ?? 'HS256'
      return build(secret, secret, alg, kid)
    }
    const isPrivate = typeof jwk.d === 'string'
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk
    const publicKey = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' })
    const privateKey = isPrivate ? createPrivateKey({ key: jwk, format: 'jwk' }) : undefined
    const alg = options.alg ?? (jwk.alg as Algorithm | undefined) ?? algFromKeyObject(publicKey)
    return build(privateKey, publicKey, alg, kid)
  } catch (e) {
    if (e instanceof KeyError) throw e
    throw new KeyError('JWK could not be imported', { cause: e })
  }
}

/**
 * Imports a PEM key: a PKCS#8 private key (the public part is derived) or an SPKI public key.
 *
 * @example
 * ```ts
 * const key = importPem(fs.readFileSync('signing.pem', 'utf8'), { kid: 'orders-1' })
 * ```
 */
export function importPem(pem: string, options: { alg?: Algorithm; kid?: string } = {}): IdctxKey {
  try {
    if (/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(pem)) {
      const privateKey = createPrivateKey(pem)
      const publicKey = createPublicKey(privateKey)
      return build(privateKey, publicKey, options.alg ?? algFromKeyObject(publicKey), options.kid)
    }
    const publicKey = createPublicKey(pem)
    return build(undefined, publicKey, options.alg ?? algFromKeyObject(publicKey), options.kid)
  } catch (e) {
    if (e instanceof KeyError) throw e
    throw new KeyError('PEM could not be imported', { cause: e })
  }
}

/**
 * Imports a shared HS256 secret (at least 32 bytes). Only for single-operator deployments; signers
 * and verifiers also need `allowHS256: true`.
 *
 * @example
 * ```ts
 * const key = importSecret(Buffer.from(process.env.IDCTX_SECRET!, 'base64url'), { kid: 'hs-1' })
 * ```
 */
export function importSecret(secret: Uint8Array, options: { kid: string }): IdctxKey {
  const key = createSecretKey(Buffer.from(secret))
  return build(key, key, 'HS256', options.kid)
}

/**
 * The public JWK of a key, with `kid`, `alg` and `use: "sig"`. Refuses HS256 keys: a shared secret
 * is never published.
 *
 * @example
 * ```ts
 * const jwk = exportPublicJwk(key)
 * ```
 */
export function exportPublicJwk(key: IdctxKey): PublicJwk {
  if (key.alg === 'HS256') throw new KeyError('an HS256 secret has no public JWK')
  const jwk = key.verificationKey.export({ format: 'jwk' }) as JsonWebKey
  return { ...jwk, kid: key.kid, alg: key.alg, use: 'sig' }
}

/**
 * The private JWK of a key (for storing it in a secret manager). Handle the result as a secret.
 *
 * @example
 * ```ts
 * await secrets.put('idctx-signing', JSON.stringify(exportPrivateJwk(key)))
 * ```
 */
export function exportPrivateJwk(key: IdctxKey): JsonWebKey & { kid: string; alg: Algorithm } {
  if (key.signingKey === undefined) throw new KeyError('key has no private part')
  const jwk = key.signingKey.export({ format: 'jwk' }) as JsonWebKey
  return { ...jwk, kid: key.kid, alg: key.alg }
}

/**
 * The public JWKS of a list of keys (HS256 keys are left out).
 *
 * @example
 * ```ts
 * res.end(JSON.stringify(toJwks(keySet.keys())))
 * ```
 */
export function toJwks(keys: readonly IdctxKey[]): Jwks {
  return { keys: keys.filter((k) => k.alg !== 'HS256').map(exportPublicJwk) }
}
