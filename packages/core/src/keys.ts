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

/**
 * Signature algorithms idctx signs and verifies with. HS256 needs an explicit opt-in.
 *
 * @example
 * ```ts
 * const alg: Algorithm = 'ES256'
 * const key = generateKey(alg, { kid: 'orders-es-1' })
 * const verifier = createVerifier({ audience: 'shop', issuers, algorithms: ['EdDSA', alg] })
 * ```
 */
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

/**
 * A public JWK as published in a JWKS, with the members idctx relies on.
 *
 * @example
 * ```ts
 * const jwk: PublicJwk = exportPublicJwk(generateKey('EdDSA', { kid: 'orders-1' }))
 * // { kty: 'OKP', crv: 'Ed25519', x: '…', kid: 'orders-1', alg: 'EdDSA', use: 'sig' }
 * ```
 */
export interface PublicJwk extends JsonWebKey {
  /** The key id tokens name in their header. */
  kid: string
  /** The one algorithm this key verifies. */
  alg: Algorithm
  /** `"sig"` when present; `"enc"` keys are never imported. */
  use?: string
}

/**
 * A JSON Web Key Set.
 *
 * @example
 * ```ts
 * const jwks: Jwks = toJwks(keys.keys()) // { keys: [{ kty: 'OKP', kid: 'orders-1', alg: 'EdDSA', … }] }
 * const verifier = createVerifier({ audience: 'shop', issuers: { orders: jwks } })
 * ```
 */
export interface Jwks {
  /** The public keys, one per kid. */
  keys: PublicJwk[]
}

/**
 * A key bound to exactly one algorithm and one kid. `signingKey` is the private (or secret) key
 * when the holder may sign; `verificationKey` is what a verifier uses. Imported once, as
 * node:crypto KeyObjects, so the per-message path never converts keys.
 *
 * @example
 * ```ts
 * const key: IdctxKey = generateKey('EdDSA', { kid: 'orders-1' })
 * const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
 * const verifyOnly: IdctxKey = importJwk(exportPublicJwk(key)) // signingKey undefined
 * ```
 */
export interface IdctxKey {
  /** The key id (1..256 characters), written in the header of every token this key signs. */
  readonly kid: string
  /** The one algorithm this key signs or verifies with. */
  readonly alg: Algorithm
  /** The private or secret key; undefined for a key imported from a public JWK. */
  readonly signingKey: KeyObject | undefined
  /** The public key (the secret itself for HS256). */
  readonly verificationKey: KeyObject
}

const MIN_RSA_BITS = 2048
const MIN_HMAC_BYTES = 32
const RSA_EXPONENT = 65537n
const ED25519_P = 2n ** 255n - 19n
const ED25519_ORDER8_Y = 0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n
const ED25519_SMALL_ORDER_Y: ReadonlySet<bigint> = new Set([0n, 1n, ED25519_P - 1n, ED25519_ORDER8_Y, ED25519_P - ED25519_ORDER8_Y])

/** y of an RFC 8032 §5.1.2 point encoding: little-endian, without the sign bit of x (may be ≥ p). */
function ed25519Y(encoded: Buffer): bigint {
  const bytes = Buffer.from(encoded).reverse()
  bytes[0] = (bytes[0] as number) & 0x7f
  return BigInt(`0x${bytes.toString('hex')}`)
}

// A small-order public key lets R = identity, S = 0 (and kin) verify any message in OpenSSL; the
// y values are those of libsodium's ge25519_has_small_order, compared mod p so that the
// non-canonical spellings (y ≥ p, or x = -0) of the same points are caught too.
function ed25519Weakness(key: KeyObject): string | undefined {
  const x = (key.export({ format: 'jwk' }) as JsonWebKey).x
  const y = ed25519Y(Buffer.from(x ?? '', 'base64url'))
  if (ED25519_SMALL_ORDER_Y.has(y % ED25519_P)) return 'the Ed25519 public key is a small-order point'
  if (y >= ED25519_P) return 'the Ed25519 public key is not canonically encoded'
  return undefined
}

function rsaWeakness(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails
  if ((details?.modulusLength ?? 0) < MIN_RSA_BITS) return `RS256 keys must be RSA of at least ${MIN_RSA_BITS} bits`
  if (details?.publicExponent !== RSA_EXPONENT) return 'RSA public exponent must be 65537'
  return undefined
}

/** Why `key` cannot be used with `alg`, or undefined when it can. */
function keyWeakness(key: KeyObject, alg: Algorithm): string | undefined {
  switch (alg) {
    case 'EdDSA':
      return key.asymmetricKeyType === 'ed25519' ? ed25519Weakness(key) : 'EdDSA keys must be Ed25519'
    case 'ES256':
      return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
        ? undefined
        : 'ES256 keys must be EC P-256'
    case 'RS256':
      return key.asymmetricKeyType === 'rsa' ? rsaWeakness(key) : `RS256 keys must be RSA of at least ${MIN_RSA_BITS} bits`
    case 'HS256':
      return key.type === 'secret' && (key.symmetricKeySize ?? 0) >= MIN_HMAC_BYTES
        ? undefined
        : `HS256 keys must be secrets of at least ${MIN_HMAC_BYTES} bytes`
  }
}

function algFromKeyObject(key: KeyObject, name: string): Algorithm {
  if (key.type === 'secret') return 'HS256'
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 'EdDSA'
    case 'ec':
      return 'ES256'
    case 'rsa':
      return 'RS256'
    default:
      throw new KeyError(`${name}: unsupported key type`)
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

function checkKid(kid: unknown): void {
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) {
    throw new KeyError('kid must be a non-empty string of at most 256 characters')
  }
}

/** How an error names a key: its kid, else its thumbprint; never its material. */
function keyName(key: KeyObject, kid: string | undefined): string {
  if (kid !== undefined) return `key ${JSON.stringify(kid)}`
  if (key.type === 'secret') return 'a key without kid'
  try {
    return `key ${JSON.stringify(jwkThumbprint(key))} (thumbprint)`
  } catch {
    return 'a key without kid'
  }
}

function build(signingKey: KeyObject | undefined, verificationKey: KeyObject, alg: Algorithm, kid?: string): IdctxKey {
  checkKid(kid)
  const weakness = keyWeakness(verificationKey, alg)
  if (weakness !== undefined) throw new KeyError(`${keyName(verificationKey, kid)}: ${weakness}`)
  return Object.freeze({
    kid: kid ?? jwkThumbprint(verificationKey),
    alg,
    signingKey,
    verificationKey,
  })
}

/**
 * Generates a new key for one algorithm (EdDSA by default): Ed25519, P-256, RSA 2048 with
 * e = 65537, or a 32-byte random HS256 secret. The kid defaults to the RFC 7638 thumbprint.
 *
 * @throws {KeyError} (`ERR_IDCTX_KEY`) for an invalid kid.
 * @throws {TypeError} for an unknown algorithm.
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
 * Imports a JWK (RFC 7517; public, private or `oct`). The algorithm comes from `options.alg`, else
 * the JWK's `alg`, else the key type; a JWK whose `alg` disagrees with `options.alg` is refused, so
 * a key is only ever used with one algorithm. A private JWK gives a key that can sign; a verifier's
 * key source imports the public members only (see `staticKeySource`, `createRemoteJwks`).
 *
 * Weak keys are refused, whatever their origin: RSA below 2048 bits or with a public exponent
 * other than 65537 (with e = 1 the padded hash is its own signature), Ed25519 public keys that are
 * small-order points or a non-canonical encoding (RFC 8032 §5.1.3; with the identity point,
 * R = identity and S = 0 verify any message), EC keys not on P-256, secrets under 32 bytes.
 *
 * @throws {KeyError} (`ERR_IDCTX_KEY`) for a weak, unsupported or malformed key, an `alg` mismatch or
 *   an invalid kid; the message names the kid (or says the key has none), never key material.
 * @example
 * ```ts
 * const key = importJwk({ kty: 'OKP', crv: 'Ed25519', x: '…', kid: 'k1' })
 * ```
 */
export function importJwk(jwk: JsonWebKey & { kid?: unknown; alg?: unknown }, options: { alg?: Algorithm; kid?: string } = {}): IdctxKey {
  if (jwk === null || typeof jwk !== 'object') throw new KeyError('a JWK must be an object')
  const kid = options.kid ?? (typeof jwk.kid === 'string' ? jwk.kid : undefined)
  checkKid(kid)
  const name = kid === undefined ? 'a JWK without kid' : `key ${JSON.stringify(kid)}`
  if (jwk.alg !== undefined && !isAlgorithm(jwk.alg)) throw new KeyError(`${name}: JWK alg is not supported`)
  if (options.alg !== undefined && jwk.alg !== undefined && jwk.alg !== options.alg) {
    throw new KeyError(`${name}: JWK alg does not match the requested algorithm`)
  }
  try {
    if (jwk.kty === 'oct') {
      if (typeof jwk.k !== 'string') throw new KeyError(`${name}: oct JWK needs k`)
      const secret = createSecretKey(Buffer.from(jwk.k, 'base64url'))
      const alg = options.alg ?? (jwk.alg as Algorithm | undefined) ?? 'HS256'
      return build(secret, secret, alg, kid)
    }
    const isPrivate = typeof jwk.d === 'string'
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub } = jwk as JsonWebKey & { oth?: unknown }
    const publicKey = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' })
    const privateKey = isPrivate ? createPrivateKey({ key: jwk, format: 'jwk' }) : undefined
    const alg = options.alg ?? (jwk.alg as Algorithm | undefined) ?? algFromKeyObject(publicKey, name)
    return build(privateKey, publicKey, alg, kid)
  } catch (e) {
    if (e instanceof KeyError) throw e
    throw new KeyError(`${name}: JWK could not be imported`, { cause: e })
  }
}

/**
 * Imports a PEM key: a PKCS#8 private key (the public part is derived) or an SPKI public key. The
 * kid defaults to the RFC 7638 thumbprint; weak keys are refused as by {@link importJwk}.
 *
 * @throws {KeyError} (`ERR_IDCTX_KEY`) for a weak, unsupported or malformed key or an invalid kid;
 *   the message names the kid (or the thumbprint), never key material.
 * @example
 * ```ts
 * const key = importPem(fs.readFileSync('signing.pem', 'utf8'), { kid: 'orders-1' })
 * ```
 */
export function importPem(pem: string, options: { alg?: Algorithm; kid?: string } = {}): IdctxKey {
  checkKid(options.kid)
  const name = options.kid === undefined ? 'a PEM key without kid' : `key ${JSON.stringify(options.kid)}`
  try {
    if (/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(pem)) {
      const privateKey = createPrivateKey(pem)
      const publicKey = createPublicKey(privateKey)
      return build(privateKey, publicKey, options.alg ?? algFromKeyObject(publicKey, name), options.kid)
    }
    const publicKey = createPublicKey(pem)
    return build(undefined, publicKey, options.alg ?? algFromKeyObject(publicKey, name), options.kid)
  } catch (e) {
    if (e instanceof KeyError) throw e
    throw new KeyError(`${name}: PEM could not be imported`, { cause: e })
  }
}

/**
 * Imports a shared HS256 secret (at least 32 bytes). Only for single-operator deployments; signers
 * and verifiers also need `allowHS256: true`.
 *
 * @throws {KeyError} (`ERR_IDCTX_KEY`) for a secret under 32 bytes or an invalid kid.
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
 * The public JWK of a key, with `kid`, `alg` and `use: "sig"` — the public part only, even of a
 * key whose `verificationKey` is its private KeyObject. Refuses HS256 keys, and any key whose
 * `verificationKey` is a secret: a shared secret is never published.
 *
 * @example
 * ```ts
 * const jwk = exportPublicJwk(key)
 * ```
 */
export function exportPublicJwk(key: IdctxKey): PublicJwk {
  if (key.alg === 'HS256') throw new KeyError('an HS256 secret has no public JWK')
  const v = key.verificationKey
  // An IdctxKey built by hand may hold its private (or a secret) KeyObject as verificationKey:
  // exporting that as it is would publish `d` (or `k`) in the JWKS.
  if (v.type === 'secret') throw new KeyError(`key ${JSON.stringify(key.kid)}: a secret has no public JWK`)
  const jwk = (v.type === 'private' ? createPublicKey(v) : v).export({ format: 'jwk' }) as JsonWebKey
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
