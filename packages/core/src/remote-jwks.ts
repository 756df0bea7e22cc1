import { KeyError } from './errors.js'
import type { IdctxKey } from './keys.js'
import { importVerificationJwk, type IgnoredKeyListener, type KeySource } from './key-set.js'

/**
 * Options of {@link createRemoteJwks}. Defaults follow jose's `createRemoteJWKSet`.
 *
 * @example
 * ```ts
 * const orders = createRemoteJwks('https://orders.internal/.well-known/idctx-jwks.json', {
 *   timeoutMs: 2000,
 *   cooldownMs: 10_000,
 *   maxAgeMs: 5 * 60_000,
 *   headers: { authorization: `Bearer ${process.env.JWKS_TOKEN}` },
 *   keepRemovedKeysMs: (900 + 30) * 1000,
 * })
 * ```
 */
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
  /** Extra request headers (credentials go here, never in the URL); checked when the source is created. */
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
  /**
   * How long a key that disappeared from the JWKS stays trusted, in milliseconds (default 960000:
   * the verifiers' default 900 s lifetime cap plus 60 s of clock tolerance). A key removed from
   * the JWKS is retired, not revoked: tokens it signed before stay valid until they expire. Set it
   * to the verifiers' `maxLifetimeSeconds` + `clockToleranceSeconds`; revoke a compromised key
   * through the deny-list (`kid`), which takes effect at once.
   */
  keepRemovedKeysMs?: number
}

/**
 * A remote JWKS with its cache; also a {@link KeySource}.
 *
 * @example
 * ```ts
 * const orders: RemoteJwks = createRemoteJwks('https://orders.internal/.well-known/idctx-jwks.json')
 * await orders.ready() // throws KeyError (ERR_IDCTX_KEY) when it cannot be fetched
 * const verifier = createVerifier({ audience: 'shop', issuers: { orders } })
 * metrics.jwksFetches.record(orders.fetches)
 * ```
 */
export interface RemoteJwks extends KeySource {
  /**
   * Fetches the JWKS unless a fetch is in flight (joined) or the last attempt is younger than the
   * cooldown (then nothing happens). Rejects with a {@link KeyError} when the fetch fails; the
   * last good keys are kept either way.
   */
  refresh(): Promise<void>
  resolve(kid: string, token: { issuedAtSeconds: number | undefined }): Promise<IdctxKey | undefined>
  ready(): Promise<void>
  /** Number of HTTP fetches made so far (for tests and metrics). */
  readonly fetches: number
  /** Epoch ms (source clock) at which the last successful fetch started; -Infinity before one. */
  readonly lastGoodFetchAt: number
}

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '[::1]'])

function isLoopback(hostname: string): boolean {
  return LOOPBACK_NAMES.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/** The URL, or a TypeError without it: Node's own error keeps the whole input (credentials, query) as `input`. */
function parseUrl(url: string | URL): URL {
  try {
    return new URL(url)
  } catch {
    throw new TypeError('JWKS URL is not a valid URL')
  }
}

function checkUrl(target: URL, allowInsecureHttp: boolean): void {
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new TypeError('JWKS URL must be http(s)')
  if (target.protocol === 'http:' && !allowInsecureHttp && !isLoopback(target.hostname)) {
    throw new TypeError(
      `JWKS URL must be https: plain http to ${JSON.stringify(target.hostname)} lets anyone on the path swap the keys; ` +
        'use an https:// URL, or pass allowInsecureHttp: true for a trusted network',
    )
  }
  // fetch refuses such a URL with a TypeError that repeats it, password included.
  if (target.username !== '' || target.password !== '') {
    throw new TypeError('JWKS URL must not carry credentials (user:password@): pass them in the headers option')
  }
}

/**
 * Headers fetch would refuse, refused here: fetch's TypeError repeats the offending value (a
 * bearer token with a line break) and would end up as a KeyError's cause.
 */
function checkHeaders(headers: Record<string, string> | undefined): void {
  if (headers === undefined) return
  try {
    new Headers(headers)
  } catch {
    throw new TypeError('createRemoteJwks: headers must be valid HTTP header names and values')
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
 * @throws {TypeError} when the URL is not valid, not http(s), carries credentials
 *   (`user:password@`: put them in `headers`), or is plain http to another host without
 *   `allowInsecureHttp`, or when a header name or value is not valid HTTP; none of these
 *   errors repeats the URL or a header value. `refresh()` (and so `verify` on an unknown kid) rejects with a
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
  const target = parseUrl(url)
  checkUrl(target, options.allowInsecureHttp === true)
  checkHeaders(options.headers)
  const timeoutMs = options.timeoutMs ?? 5000
  const cooldownMs = options.cooldownMs ?? 30_000
  const maxAgeMs = options.maxAgeMs ?? 600_000
  const maxBytes = options.maxBytes ?? 256 * 1024
  const keepRemovedKeysMs = options.keepRemovedKeysMs ?? 960_000
  for (const [name, v] of [['timeoutMs', timeoutMs], ['cooldownMs', cooldownMs], ['maxAgeMs', maxAgeMs], ['maxBytes', maxBytes], ['keepRemovedKeysMs', keepRemovedKeysMs]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`createRemoteJwks: ${name} must be a finite number ≥ 0`)
  }
  const doFetch = options.fetch ?? globalThis.fetch
  const clock = options.clock ?? Date.now
  const onKeyIgnored = quietly(options.onKeyIgnored)
  const where = safeUrl(target)
  let keys = new Map<string, IdctxKey>()
  /** Keys that left the JWKS, trusted until `until` (source clock, ms). */
  const removed = new Map<string, { key: IdctxKey; until: number }>()
  let fetchedAt = Number.NEGATIVE_INFINITY
  let attemptedAt = Number.NEGATIVE_INFINITY
  let inflight: Promise<void> | undefined
  let fetches = 0

  const fail = (message: string, extra: { status?: number | undefined; networkCode?: string | undefined; cause?: unknown } = {}) =>
    new KeyError(`JWKS ${where}: ${message}`, { url: where, ...extra })

  const load = async (): Promise<void> => {
    const started = clock()
    attemptedAt = started
    fetches++
    let res: Response
    let body: string
    try {
      res = await doFetch(target, {
        headers: { accept: 'application/json', ...options.headers },
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      })
      if (!res.ok) throw fail(`HTTP ${res.status}`, { status: res.status })
      body = await res.text()
    } catch (e) {
      if (e instanceof KeyError) throw e
      const networkCode = networkCodeOf(e)
      throw fail(`fetch failed${networkCode === undefined ? '' : ` (${networkCode})`}`, { networkCode, cause: e })
    }
    if (Buffer.byteLength(body) > maxBytes) throw fail(`response over ${maxBytes} bytes`, { status: res.status })
    let doc: unknown
    try {
      doc = JSON.parse(body)
    } catch {
      // No cause: a SyntaxError quotes the body, and an error page may echo the request.
      throw fail('response is not JSON', { status: res.status })
    }
    const entries = (doc as { keys?: unknown } | null)?.keys
    if (!Array.isArray(entries)) throw fail('response has no keys array', { status: res.status })
    const next = keysOf(entries, onKeyIgnored)
    // An empty (or wholly unusable) JWKS is far likelier a broken deploy than an issuer that
    // stopped signing: a failed refresh, the last good keys stay.
    if (next.size === 0) throw fail('response has no usable key; keeping the last good keys', { status: res.status })
    const now = clock()
    for (const [kid, key] of keys) {
      if (!next.has(kid) && !removed.has(kid)) removed.set(kid, { key, until: now + keepRemovedKeysMs })
    }
    for (const kid of next.keys()) removed.delete(kid)
    keys = next
    fetchedAt = started
  }

  /** The error of the last fetch, when it failed: a cooldown retry reports what is wrong. */
  let lastFailure: KeyError | undefined
  const refresh = (): Promise<void> => {
    if (inflight !== undefined) return inflight
    if (clock() - attemptedAt < cooldownMs) return Promise.resolve()
    inflight = load()
      .then(
        () => {
          lastFailure = undefined
        },
        (e: unknown) => {
          lastFailure = e instanceof KeyError ? e : undefined
          throw e
        },
      )
      .finally(() => {
        inflight = undefined
      })
    return inflight
  }

  const known = (kid: string): IdctxKey | undefined => {
    const key = keys.get(kid)
    if (key !== undefined) return key
    const gone = removed.get(kid)
    if (gone === undefined) return undefined
    if (gone.until > clock()) return gone.key
    removed.delete(kid)
    return undefined
  }

  const resolve = async (kid: string, token: { issuedAtSeconds: number | undefined }): Promise<IdctxKey | undefined> => {
    // A fetch that started after the token was signed decides. The token's iat is read before the
    // signature, so it is capped at now; without a usable iat any good fetch decides.
    const iat = token.issuedAtSeconds
    const since =
      typeof iat === 'number' && Number.isFinite(iat) ? Math.min((iat + 1) * 1000, clock()) : Number.NEGATIVE_INFINITY
    for (let attempt = 0; attempt < 2; attempt++) {
      const key = known(kid)
      if (key !== undefined) return key
      if (fetchedAt >= since) {
        // Decided by a fetch made after the token was signed — but a key published since then (a
        // key outage over, dead-lettered records redriven) is learnt by the one refresh per
        // cooldown that any miss may make; a refresh that fails leaves the decision as it was.
        if (attempt > 0 || (inflight === undefined && clock() - attemptedAt < cooldownMs)) return undefined
        await refresh().catch(() => undefined)
        continue
      }
      if (inflight === undefined && clock() - attemptedAt < cooldownMs) {
        const last = lastFailure
        throw new KeyError(
          `JWKS ${where}: kid unknown to the last good fetch, which predates the token; the next fetch is held back by the cooldown (retry)` +
            (last === undefined ? '' : `; the last fetch failed: ${last.status !== undefined ? `HTTP ${last.status}` : (last.networkCode ?? 'error')}`),
          { url: where, cause: last, status: last?.status, networkCode: last?.networkCode },
        )
      }
      await refresh()
    }
    const key = known(kid)
    if (key !== undefined) return key
    if (fetchedAt >= since) return undefined
    throw new KeyError(`JWKS ${where}: no fetch after the token was issued could be made (retry)`, { url: where })
  }

  return {
    get(kid) {
      const key = known(kid)
      if (key !== undefined && clock() - fetchedAt > maxAgeMs) void refresh().catch(() => {})
      return key
    },
    refresh,
    resolve,
    async ready() {
      if (fetchedAt > Number.NEGATIVE_INFINITY) return
      if (inflight !== undefined) return inflight
      attemptedAt = Number.NEGATIVE_INFINITY
      return refresh()
    },
    get fetches() {
      return fetches
    },
    get lastGoodFetchAt() {
      return fetchedAt
    },
  }
}

/** The URL as it may appear in errors and logs: origin and path, no credentials, query or fragment. */
function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`
}

/** The network error code behind a failed fetch (undici wraps it in `cause`), or the error's name. */
function networkCodeOf(e: unknown): string | undefined {
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 4; c = (c as { cause?: unknown }).cause, i++) {
    const code = (c as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  const name = (e as { name?: unknown } | null)?.name
  return typeof name === 'string' && name !== 'TypeError' && name !== 'Error' ? name : undefined
}
