/**
 * Shared test fixtures: a fixed clock, a keyring with one key per algorithm, and a token forger
 * that signs with node:crypto directly (independent of core's own JWS code), so hostile headers
 * and payloads can be anything.
 */
import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto'
import {
  createSigner,
  generateKey,
  kafkaLeaf,
  type Algorithm,
  type IdctxKey,
  type MessageBinding,
  type VerifierOptions,
  type VerifyInput,
} from '@idctx/core'

/** A fixed "now" with a fractional second, to exercise the floor-vs-fraction boundaries. */
export const NOW_MS = 1_800_000_000_250
export const NOW = Math.floor(NOW_MS / 1000)
export const clock = (): number => NOW_MS

export const AUD = 'shop'
export const ISS = 'orders'
export const OTHER_ISS = 'billing'
export const TOPIC = 'orders'
export const DEST = 'kafka:orders'
export const RECORD = { key: 'order-1', value: Buffer.from('{"total":3,"tenant":"acme"}') } as const
export const LEAF = kafkaLeaf(TOPIC, RECORD.key, RECORD.value)
export const CONTEXT = { sub: 'u-42', tid: 'acme', txn: 'txn-1' } as const

export const ALGS: readonly Algorithm[] = ['EdDSA', 'ES256', 'RS256', 'HS256']

export interface Keyring {
  readonly EdDSA: IdctxKey
  readonly ES256: IdctxKey
  readonly RS256: IdctxKey
  readonly HS256: IdctxKey
  /** A second EdDSA key of the `orders` issuer (same alg, other kid). */
  readonly EdDSA2: IdctxKey
  /** The key of another trusted issuer, `billing`. */
  readonly billing: IdctxKey
  /** A key nobody trusts. */
  readonly rogue: IdctxKey
  /** The RS256 public key as SPKI PEM: the bytes of the classic HS256/RS256 confusion attack. */
  readonly rsaPublicPem: string
}

export function makeKeyring(): Keyring {
  const RS256 = generateKey('RS256', { kid: 'orders-rs' })
  return {
    EdDSA: generateKey('EdDSA', { kid: 'orders-ed' }),
    ES256: generateKey('ES256', { kid: 'orders-es' }),
    RS256,
    HS256: generateKey('HS256', { kid: 'orders-hs' }),
    EdDSA2: generateKey('EdDSA', { kid: 'orders-ed-2' }),
    billing: generateKey('EdDSA', { kid: 'billing-ed' }),
    rogue: generateKey('EdDSA', { kid: 'rogue-ed' }),
    rsaPublicPem: RS256.verificationKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

/** Verifier options trusting `orders` (one key per alg) and `billing`, all four algs allowed. */
export function baseOptions(ring: Keyring, extra: Partial<VerifierOptions> = {}): VerifierOptions {
  return {
    audience: AUD,
    issuers: {
      [ISS]: [ring.EdDSA, ring.ES256, ring.RS256, ring.HS256, ring.EdDSA2],
      [OTHER_ISS]: [ring.billing],
    },
    algorithms: ['EdDSA', 'ES256', 'RS256', 'HS256'],
    allowHS256: true,
    clock,
    ...extra,
  }
}

/** The default message a token is verified against (one Kafka record on `orders`). */
export function baseInput(token: string | Buffer, extra: Partial<VerifyInput> = {}): VerifyInput {
  return { tokens: [token], destination: DEST, leaf: LEAF, expectedTenant: 'acme', ...extra }
}

export const b64 = (v: unknown): string =>
  (Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8')).toString('base64url')

/** A JWS signature over `input`, straight from node:crypto. */
export function rawSign(alg: string, key: KeyObject | Uint8Array, input: string): Buffer {
  const data = Buffer.from(input, 'utf8')
  switch (alg) {
    case 'EdDSA':
      return cryptoSign(null, data, key as KeyObject)
    case 'ES256':
      return cryptoSign('sha256', data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' })
    case 'RS256':
      return cryptoSign('sha256', data, key as KeyObject)
    case 'HS256':
      return createHmac('sha256', key).update(data).digest()
    default:
      throw new TypeError(`cannot sign ${alg}`)
  }
}

let jtiCounter = 0

/** A complete, valid claim set for the default record, with a fresh jti. */
export function baseClaims(): Record<string, unknown> {
  return {
    iss: ISS,
    aud: AUD,
    sub: CONTEXT.sub,
    tid: CONTEXT.tid,
    txn: CONTEXT.txn,
    jti: `jti-${++jtiCounter}`,
    iat: NOW,
    exp: NOW + 300,
    mh: LEAF.toString('base64url'),
  }
}

function patch(base: Record<string, unknown>, p: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...base }
  for (const [k, v] of Object.entries(p ?? {})) {
    if (v === undefined) delete out[k]
    else out[k] = v
  }
  return out
}

export interface ForgeOptions {
  /** Key whose kid goes in the header and that signs (default: the EdDSA key). */
  key?: IdctxKey
  /** Replaces the header entirely. */
  header?: Record<string, unknown>
  /** Merged into the default header `{alg, kid, typ}`; `undefined` deletes a member. */
  headerPatch?: Record<string, unknown>
  /** Replaces the claims entirely. */
  claims?: Record<string, unknown>
  /** Merged into {@link baseClaims}; `undefined` deletes a claim. */
  claimsPatch?: Record<string, unknown>
  /** Raw encoded header / payload segments (override the objects). */
  h64?: string
  p64?: string
  /** Sign with this algorithm instead of the key's. */
  signAlg?: string
  /** Sign with these bytes as HMAC secret. */
  secret?: Uint8Array
  /** Replace or rewrite the encoded signature. */
  sig?: string | ((encoded: string, signingInput: string) => string)
}

/** Builds a compact JWS by hand; anything can be put in the header and payload. */
export function forge(ring: Keyring, o: ForgeOptions = {}): string {
  const key = o.key ?? ring.EdDSA
  const header = o.header ?? patch({ alg: key.alg, kid: key.kid, typ: 'idctx+jwt' }, o.headerPatch)
  const claims = o.claims ?? patch(baseClaims(), o.claimsPatch)
  const input = `${o.h64 ?? b64(header)}.${o.p64 ?? b64(claims)}`
  let sig: string
  if (typeof o.sig === 'string') sig = o.sig
  else {
    const alg = o.signAlg ?? key.alg
    const signer = o.secret ?? (alg === 'HS256' ? (key.signingKey as KeyObject) : (key.signingKey as KeyObject))
    const raw = rawSign(alg, signer, input)
    // Verifiers accept only low-S ES256 signatures (one token, one spelling): forge writes those.
    sig = (alg === 'ES256' ? lowS(raw) : raw).toString('base64url')
    if (typeof o.sig === 'function') sig = o.sig(sig, input)
  }
  return `${input}.${sig}`
}

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

/** The low-S form of a P-256 signature r ‖ s (IEEE P1363): s replaced by n - s when s > n/2. */
export function lowS(signature: Buffer): Buffer {
  const s = BigInt(`0x${signature.subarray(32).toString('hex')}`)
  if (s <= P256_ORDER / 2n) return signature
  return Buffer.concat([signature.subarray(0, 32), Buffer.from((P256_ORDER - s).toString(16).padStart(64, '0'), 'hex')])
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * Re-encodes a canonical base64url segment with non-zero unused trailing bits: it decodes to the
 * same bytes, but is a different string.
 */
export function nonCanonical(segment: string): string {
  if (segment.length % 4 === 0) throw new TypeError('segment has no unused bits')
  const last = segment[segment.length - 1] as string
  const v = B64URL.indexOf(last)
  return segment.slice(0, -1) + (B64URL[v ^ 1] as string)
}

/** Replaces one segment of a compact token. */
export function withSegment(token: string, index: 0 | 1 | 2, segment: string): string {
  const parts = token.split('.')
  parts[index] = segment
  return parts.join('.')
}

/** The three records of the default batch and a token signed over all of them. */
export function signBatch(ring: Keyring, key: IdctxKey = ring.EdDSA) {
  const records = [
    { key: 'order-1', value: Buffer.from('{"n":1}') },
    { key: 'order-2', value: Buffer.from('{"n":2}') },
    { key: 'order-3', value: Buffer.from('{"n":3}') },
  ]
  const leaves = records.map((r) => kafkaLeaf(TOPIC, r.key, r.value))
  const signer = createSigner({ issuer: ISS, audience: AUD, key, clock, allowHS256: true })
  const messages: MessageBinding[] = leaves.map((leaf) => ({ destination: DEST, leaf }))
  const signed = signer.sign(CONTEXT, messages)
  return { records, leaves, ...signed, proofs: signed.proofs as string[] }
}

/** A signer of the `orders` issuer on the fixed clock. */
export function ordersSigner(key: IdctxKey, extra: { lifetimeSeconds?: number } = {}) {
  return createSigner({ issuer: ISS, audience: AUD, key, clock, allowHS256: true, ...extra })
}

/** Generates an RSA key below the 2048-bit floor, as PEM (for refusal tests). */
export function weakRsaPem(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 })
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}
