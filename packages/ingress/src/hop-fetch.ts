import { defaultContextStore, httpDestination, httpLeaf, isContextStore, SigningError, type ContextStore, type Signer } from '@idctx/core'

/**
 * The header an idctx token travels in on an HTTP hop.
 *
 * @example
 * ```ts
 * const tokens = headerValues(req, HOP_HEADER) // every idctx header value of the request
 * ```
 */
export const HOP_HEADER = 'idctx'

/**
 * Options of {@link createHopFetch}; `signer` is required (a `TypeError` otherwise).
 *
 * @example
 * ```ts
 * const options: HopFetchOptions = {
 *   signer: createSigner({ issuer: 'gateway', audience: 'shop', key: importKeySet(process.env.IDCTX_KEYSET!) }),
 *   lifetimeSeconds: 60,
 * }
 * const hopFetch = createHopFetch(options)
 * ```
 */
export interface HopFetchOptions {
  /** Signs the current context for each request (`createSigner`). */
  signer: Signer
  /** Where the current context is read (default the process-wide store). */
  store?: ContextStore
  /** The fetch to call (default the global one). */
  fetch?: typeof globalThis.fetch
  /**
   * Token lifetime in seconds (default the signer's `lifetimeSeconds`, 300 unless set); a hop is
   * immediate, so short is fine. A whole number up to the signer's `maxLifetimeSeconds` (default
   * 900): any other value makes every call throw a `SigningError` (`ERR_IDCTX_SIGNING`).
   */
  lifetimeSeconds?: number
}

/**
 * The request options of a hop: `fetch`'s, with a body the token can be bound to (a string,
 * bytes or `URLSearchParams`; a stream or `FormData` cannot be). `redirect` defaults to `'error'`.
 *
 * @example
 * ```ts
 * const init: HopRequestInit = {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ sku: 'A-1', quantity: 2 }),
 *   signal: AbortSignal.timeout(5000),
 * }
 * await hopFetch('http://orders.internal/orders', init)
 * ```
 */
export type HopRequestInit = Omit<RequestInit, 'body'> & {
  readonly body?: string | Uint8Array | ArrayBuffer | URLSearchParams | null | undefined
}

/**
 * A `fetch` that signs the current identity context into every request it sends. Throws a
 * `SigningError` (`ERR_IDCTX_SIGNING`) outside a context, and a `TypeError` for a `Request`
 * input, credentials in the URL, an unbindable body or an `idctx` header already set.
 *
 * @example
 * ```ts
 * const hopFetch: HopFetch = createHopFetch({ signer })
 * // Inside a verified handler: the caller's identity goes on.
 * const res = await hopFetch('http://billing.internal/invoices?order=o-1')
 * ```
 */
export type HopFetch = (url: string | URL, init?: HopRequestInit) => Promise<Response>

// fetch upper-cases these methods whatever their case (Fetch standard, "normalize a method").
const NORMALIZED = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'])

function bodyBytes(body: HopRequestInit['body'], headers: Headers): Buffer | undefined {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return Buffer.from(body, 'utf8')
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8')
    return Buffer.from(body.toString(), 'utf8')
  }
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  if (body instanceof ArrayBuffer) return Buffer.from(body)
  throw new TypeError('idctx fetch: the body must be a string, bytes or URLSearchParams (a stream or FormData cannot be bound before it is sent)')
}

/**
 * Creates a `fetch` for calls between services: each request carries, in its `idctx` header, a
 * token signed for the current identity context (same `sub`, `tid`, `txn`; this service pushed
 * on the actor chain; a new `jti`) and bound to the request — method, authority, path, query and
 * the exact body bytes (`httpLeaf`) — so the receiving service (`createHopVerifier`) refuses it
 * on any other request, and a second time (`replayed`). Outside a context it throws a
 * `SigningError` before sending anything. Redirects are not followed unless `redirect` says so
 * (the token would go to a request it was not signed for).
 *
 * @example
 * ```ts
 * const hopFetch = createHopFetch({ signer })
 * await runWithContext(identity, () =>
 *   hopFetch('http://orders.internal/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) }),
 * )
 * ```
 */
export function createHopFetch(options: HopFetchOptions): HopFetch {
  const { signer } = options
  if (typeof signer?.sign !== 'function') throw new TypeError('createHopFetch: signer must come from createSigner')
  if (options.store !== undefined && !isContextStore(options.store)) throw new TypeError('createHopFetch: store must be a ContextStore')
  const store = options.store ?? defaultContextStore
  const send = options.fetch ?? globalThis.fetch
  const signOptions = options.lifetimeSeconds === undefined ? undefined : { lifetimeSeconds: options.lifetimeSeconds }
  return async (input, init = {}) => {
    if (typeof input !== 'string' && !(input instanceof URL)) throw new TypeError('idctx fetch: the URL must be a string or a URL (a Request body cannot be bound)')
    const url = new URL(input)
    if (url.username !== '' || url.password !== '') throw new TypeError('idctx fetch: credentials in the URL are not supported')
    const context = store.current()
    if (context === undefined) throw new SigningError('idctx fetch outside an identity context: run it inside runWithContext or a verified handler')
    const rawMethod = init.method ?? 'GET'
    const method = NORMALIZED.has(rawMethod.toUpperCase()) ? rawMethod.toUpperCase() : rawMethod
    const headers = new Headers(init.headers)
    if (headers.has(HOP_HEADER)) throw new TypeError(`idctx fetch: the request already has an ${HOP_HEADER} header`)
    const body = bodyBytes(init.body, headers)
    const target = `${url.pathname}${url.search}`
    const destination = httpDestination(method, url.host, url.pathname)
    const { token } = signer.sign(context, [{ destination, leaf: httpLeaf(method, url.host, target, body ?? null) }], signOptions)
    headers.set(HOP_HEADER, token)
    return send(url, { ...init, method, headers, redirect: init.redirect ?? 'error', ...(body !== undefined ? { body } : {}) } as RequestInit)
  }
}
