import { createHash, createHmac } from 'node:crypto'

/**
 * The hash a command prints instead of a user id: HMAC-SHA-256 with `IDCTX_USER_SALT` when set,
 * else SHA-256, 128 bits in hex — the same as `createLogObserver` and `@idctx/otel`, so lines of
 * the three can be matched.
 */
export function userHasher(salt: string | undefined): (sub: string) => string {
  return (sub) => (salt === undefined || salt === '' ? createHash('sha256') : createHmac('sha256', salt)).update(sub).digest('hex').slice(0, 32)
}
