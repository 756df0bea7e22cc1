import { createHash, createHmac } from 'node:crypto'

/**
 * How `sub` appears in spans: hashed (default), as is, or not at all.
 *
 * @example
 * ```ts
 * const userId: UserIdMode = 'omit' // no `idctx.user` attribute at all
 * const observer = createOtelObserver({ userId })
 * ```
 */
export type UserIdMode = 'hash' | 'raw' | 'omit'

/** Hex characters kept of the hash: 128 bits, enough to correlate, short enough to index. */
const HASH_HEX_LENGTH = 32

/**
 * Builds the function that turns `sub` into the `idctx.user` attribute value. `hash` is
 * HMAC-SHA-256 keyed with the salt, or plain SHA-256 without one, truncated to 128 bits. A
 * pseudonymous id is often guessable, so a secret salt is what makes the hash non-reversible.
 *
 * @example
 * ```ts
 * createUserIdAttribute('hash', 'per-deployment-secret')('u-42') // '9f1c…' (32 hex)
 * ```
 */
export function createUserIdAttribute(mode: UserIdMode, salt?: string | Uint8Array): (sub: string) => string | undefined {
  switch (mode) {
    case 'omit':
      return () => undefined
    case 'raw':
      return (sub) => sub
    case 'hash': {
      if (salt === undefined) return (sub) => createHash('sha256').update(sub).digest('hex').slice(0, HASH_HEX_LENGTH)
      const key = typeof salt === 'string' ? Buffer.from(salt, 'utf8') : Buffer.from(salt)
      return (sub) => createHmac('sha256', key).update(sub).digest('hex').slice(0, HASH_HEX_LENGTH)
    }
    default:
      throw new TypeError("userId must be 'hash', 'raw' or 'omit'")
  }
}
