import { createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto'
import type { Algorithm } from '../keys.js'

const EC_SIG = { dsaEncoding: 'ieee-p1363' } as const
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n
const P256_HALF_N = Buffer.from((P256_N >> 1n).toString(16).padStart(64, '0'), 'hex')

/** S of an IEEE P1363 ES256 signature (bytes 32..63) is above n/2. */
function isHighS(signature: Buffer): boolean {
  return signature.compare(P256_HALF_N, 0, 32, 32, 64) > 0
}

// (r, s) and (r, n - s) both verify: keeping only s ≤ n/2 gives every signed token one spelling,
// as the verified-token cache, the replay store and the logs key on the token string.
function toLowS(signature: Buffer): Buffer {
  if (!isHighS(signature)) return signature
  const s = BigInt(`0x${signature.subarray(32).toString('hex')}`)
  const low = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex')
  return Buffer.concat([signature.subarray(0, 32), low])
}

/**
 * One-shot node:crypto signature over the JWS signing input (no WebCrypto dispatch). ES256
 * signatures are IEEE P1363 `r || s` (RFC 7518 §3.4) with s ≤ n/2 (low-S).
 */
export function signBytes(alg: Algorithm, key: KeyObject, input: Buffer): Buffer {
  switch (alg) {
    case 'EdDSA':
      return sign(null, input, key)
    case 'ES256':
      return toLowS(sign('sha256', input, { key, ...EC_SIG }))
    case 'RS256':
      return sign('sha256', input, key)
    case 'HS256':
      return createHmac('sha256', key).update(input).digest()
  }
}

const SIG_LENGTH: Partial<Record<Algorithm, number>> = { EdDSA: 64, ES256: 64, HS256: 32 }

/**
 * Whether `signature` is `alg`'s signature of `input` under `key`. Never throws: a signature of the
 * wrong length or shape, and an ES256 signature with s > n/2 (the high-S twin of a low-S one),
 * is false.
 */
export function verifyBytes(alg: Algorithm, key: KeyObject, input: Buffer, signature: Buffer): boolean {
  const expected = SIG_LENGTH[alg]
  if (expected !== undefined && signature.length !== expected) return false
  try {
    switch (alg) {
      case 'EdDSA':
        return verify(null, input, key, signature)
      case 'ES256':
        return !isHighS(signature) && verify('sha256', input, { key, ...EC_SIG }, signature)
      case 'RS256':
        return verify('sha256', input, key, signature)
      case 'HS256':
        return timingSafeEqual(createHmac('sha256', key).update(input).digest(), signature)
    }
  } catch {
    return false
  }
}
