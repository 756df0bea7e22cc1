import { createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto'
import type { Algorithm } from '../keys.js'

const EC_SIG = { dsaEncoding: 'ieee-p1363' } as const

/** One-shot node:crypto signature over the JWS signing input (no WebCrypto dispatch). */
export function signBytes(alg: Algorithm, key: KeyObject, input: Buffer): Buffer {
  switch (alg) {
    case 'EdDSA':
      return sign(null, input, key)
    case 'ES256':
      return sign('sha256', input, { key, ...EC_SIG })
    case 'RS256':
      return sign('sha256', input, key)
    case 'HS256':
      return createHmac('sha256', key).update(input).digest()
  }
}

const SIG_LENGTH: Partial<Record<Algorithm, number>> = { EdDSA: 64, ES256: 64, HS256: 32 }

export function verifyBytes(alg: Algorithm, key: KeyObject, input: Buffer, signature: Buffer): boolean {
  const expected = SIG_LENGTH[alg]
  if (expected !== undefined && signature.length !== expected) return false
  try {
    switch (alg) {
      case 'EdDSA':
        return verify(null, input, key, signature)
      case 'ES256':
        return verify('sha256', input, { key, ...EC_SIG }, signature)
      case 'RS256':
        return verify('sha256', input, key, signature)
      case 'HS256':
        return timingSafeEqual(createHmac('sha256', key).update(input).digest(), signature)
    }
  } catch {
    return false
  }
}
