import { KeyError } from './errors.js'
import type { IdctxKey } from './keys.js'
import { importVerificationJwk, type IgnoredKeyListener, type KeySource } from './key-set.js'

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
  /**
   * Allow a plain `http://` URL to a host that is not loopback (default false). Whoever can
   * answer in the server's place over plain HTTP chooses the keys every token is checked with:
   * set this only on a network you trust end to end (a compose network, a service mesh with mTLS).
   */
  allowInsecureHttp?: boolean
  /**
   * Told, on every load, about each JWK that is skipped (no kid, `oct`, `use: "enc"`, weak,
   * unsupported, malformed, duplicate kid) or imported without the private members it carried.
   * Gets the kid and a reason, never key material. A listener that throws is ignored.
   */
  onKeyIgnored?: IgnoredKeyListener
}

/** A remote JWKS with its cache; also a {@link KeySource}. */
export interface RemoteJwks extends KeySource {
  refresh(): Promise<void>
  /** Number of HTTP fetches made so far (for tests and metrics). */
  readonly fetches: number
}

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '[::1]'])

function isLoopback(hostname: string): boolean {
  return LOOPBACK_NAMES.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

function checkUrl(target: URL, allowInsecureHttp: boolean): void {
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new TypeError('JWKS URL must be http(s)')
  if (target.protocol === 'http:' && !allowInsecureHttp && !isLoopback(target.hostname)) {
    throw new TypeError(
      `JWKS URL must be https: plain http to ${JSON.stringify(target.hostname)} lets anyone on the path swap the keys; ` +
        'use an https:// URL, or pass allowInsecureHttp: true for a trusted network',
    )
  }
}

function quietly(listener: IgnoredKeyListener | undefined): IgnoredKeyListener | undefined {
  if (listener === undefined) return undefined
  return (info) => {
    try {
      listener(info)
    } catch {
      // a broken logger must not turn a good fetch into a failed refresh
    }
  }
}

/** The usable public keys of a JWKS body, by kid; the first key of a kid wins. */
function keysOf(entries: readonly unknown[], listener: IgnoredKeyListener | undefined): Map<string, IdctxKey> {
  const next = new Map<string, IdctxKey>()
  for (const entry of entries) {
    const kid = (entry as { kid?: unknown } | null)?.kid
    if (entry !== null && typeof entry === 'object' && typeof kid !== 'string') {
      listener?.({ kid: undefined, reason: 'missing_kid', detail: 'a JWK without kid: a remote JWKS entry needs a kid' })
      continue
    }
    const key = importVerificationJwk(entry, listener)
    if (key === undefined) continue
    if (next.has(key.kid)) {
      const detail = `key ${JSON.stringify(key.kid)}: the JWKS already has a key with this kid; the first is kept`
      listener?.({ kid: key.kid, reason: 'duplicate_kid', detail })
      continue
    }
    next.set(key.kid, key)
  }
  return next
}

/**
 * A JWKS (RFC 7517 §5) fetched from a URL and cached. An unknown kid triggers at most one refresh
 * per cooldown, and concurrent misses share that one request (no stampede). A failed refresh
 * keeps the last good keys. Only public keys are imported: private members are dropped, and
 * entries without a kid, `oct` or `use: "enc"` entries, weak keys (see `importJwk`) and keys
 * without a supported `alg` (or inferable key type) are skipped; each case is reported to
 * `options.onKeyIgnored`.
 *
 * @param url `https:`; plain `http:` only to loopback (`localhost`, `127.0.0.0/8`, `[::1]`) or
 *   with `allowInsecureHttp: true`.
 * @throws {TypeError} when the URL is not http(s), or is plain http to another host without
 *   `allowInsecureHttp`. `refresh()` (and so `verify` on an unknown kid) rejects with a
 *   {@link KeyError} (`ERR_IDCTX_KEY`) when the fetch fails, the status is not 2xx, the body is
 *   over `maxBytes` or has no `keys` array.
 * @example
 * ```ts
 * const orders = createRemoteJwks('https://orders.internal/.well-known/jwks.json', {
 *   onKeyIgnored: ({ kid, reason }) => log.warn({ kid, reason }, 'JWK ignored'),
 * })
 * const verifier = createVerifier({ audience: 'shop', issuers: { orders } })
 * ```
 */
export function createRemoteJwks(url: string | URL, options: RemoteJwksOptions = {}): RemoteJwks {
  const target = new URL(url)
  checkUrl(target, options.allowInsecureHttp === true)
  const timeoutMs = options.timeoutMs ?? 5000
  const cooldownMs = options.cooldownMs ?? 30_000
  const maxAgeMs = options.maxAgeMs ?? 600_000
  const maxBytes = options.maxBytes ?? 256 * 1024
  const doFetch = options.fetch ?? globalThis.fetch
  const clock = options.clock ?? Date.now
  const onKeyIgnored = quietly(options.onKeyIgnored)
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
    const entries = (JSON.parse(body) as { keys?: unknown } | null)?.keys
    if (!Array.isArray(entries)) throw new KeyError('JWKS response has no keys array')
    keys = keysOf(entries, onKeyIgnored)
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
