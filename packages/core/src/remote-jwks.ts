import { KeyError } from './errors.js'
import { importJwk, type IdctxKey } from './keys.js'
import type { KeySource } from './key-set.js'

/** Options of {@link createRemoteJwks}. Defaults follow jose's `createRemoteJWKSet`. */
export interface RemoteJwksOptions {
  /** Abort a fetch after this many milliseconds (default 5000). */
  timeoutMs?: number
  /** Never fetch twice within this many milliseconds (default 30000). */
  cooldownMs?: number
  /** Refetch in the background once the cached set is this old (default 600000). */
  maxAgeMs?: number
  /** Largest JWKS body accepted, in bytes (default 256 KiB). */
  maxBytes?: number
  /** Injectable fetch (default globalThis.fetch). */
  fetch?: typeof fetch
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number
  /** Extra request headers. */
  headers?: Record<string, string>
}

/** A remote JWKS with its cache; also a {@link KeySource}. */
export interface RemoteJwks extends KeySource {
  refresh(): Promise<void>
  /** Number of HTTP fetches made so far (for tests and metrics). */
  readonly fetches: number
}

/**
 * A JWKS fetched from a URL and cached. An unknown kid triggers at most one refresh per cooldown,
 * and concurrent misses share that one request (no stampede). A failed refresh keeps the last
 * good keys. Keys without a supported `alg` (or inferable key type) are skipped.
 *
 * @example
 * ```ts
 * const orders = createRemoteJwks('https://orders.internal/.well-known/jwks.json')
 * const verifier = createVerifier({ audience: 'shop', issuers: { orders } })
 * ```
 */
export function createRemoteJwks(url: string | URL, options: RemoteJwksOptions = {}): RemoteJwks {
  const target = new URL(url)
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new TypeError('JWKS URL must be http(s)')
  const timeoutMs = options.timeoutMs ?? 5000
  const cooldownMs = options.cooldownMs ?? 30_000
  const maxAgeMs = options.maxAgeMs ?? 600_000
  const maxBytes = options.maxBytes ?? 256 * 1024
  const doFetch = options.fetch ?? globalThis.fetch
  const clock = options.clock ?? Date.now
  let keys = new Map<string, IdctxKey>()
  let fetchedAt = Number.NEGATIVE_INFINITY
  let attemptedAt = Number.NEGATIVE_INFINITY
  let inflight: Promise<void> | undefined
  let fetches = 0

  const load = async (): Promise<void> => {
    attemptedAt = clock()
    fetches++
    const res = await doFetch(target, {
      headers: { accept: 'application/json', ...options.headers },
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    })
    if (!res.ok) throw new KeyError(`JWKS fetch failed with HTTP ${res.status}`)
    const body = await res.text()
    if (body.length > maxBytes) throw new KeyError('JWKS response too large')
    const doc = JSON.parse(body) as { keys?: unknown }
    if (!Array.isArray(doc.keys)) throw new KeyError('JWKS response has no keys array')
    const next = new Map<string, IdctxKey>()
    for (const jwk of doc.keys as Record<string, unknown>[]) {
      if (typeof jwk?.kid !== 'string' || jwk.use === 'enc' || jwk.kty === 'oct') continue
      try {
        const key = importJwk(jwk)
        if (!next.has(key.kid)) next.set(key.kid, key)
      } catch {
        // a key idctx cannot use is skipped, not fatal for the others
      }
    }
    keys = next
    fetchedAt = clock()
  }

  const refresh = (): Promise<void> => {
    if (inflight !== undefined) return inflight
    if (clock() - attemptedAt < cooldownMs) return Promise.resolve()
    inflight = load().finally(() => {
      inflight = undefined
    })
    return inflight
  }

  return {
    get(kid) {
      const key = keys.get(kid)
      if (key !== undefined && clock() - fetchedAt > maxAgeMs) void refresh().catch(() => {})
      return key
    },
    refresh,
    get fetches() {
      return fetches
    },
  }
}
