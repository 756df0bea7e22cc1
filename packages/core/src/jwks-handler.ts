import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Jwks } from './keys.js'
import type { KeySet } from './key-set.js'

/**
 * Options of {@link jwksResponse} and {@link createJwksHandler}.
 *
 * @example
 * ```ts
 * http.createServer(createJwksHandler(keys, { maxAgeSeconds: 30 })).listen(8080)
 * ```
 */
export interface JwksResponseOptions {
  /**
   * `Cache-Control: public, max-age=<s>` in seconds (default 60). Caches between the verifiers and
   * the service (a CDN, a gateway) may serve a JWKS this old, so a staged key must be published
   * at least the verifiers' `maxAgeMs` plus this long before it signs (`advanceKeySet`'s
   * `stageForMs`). Short is safe: verifiers refetch on their own schedule, not on this header.
   */
  maxAgeSeconds?: number
}

/**
 * An HTTP response for a JWKS request, for any framework.
 *
 * @example
 * ```ts
 * const r: JwksHttpResponse = jwksResponse(keys, { method: 'GET', ifNoneMatch: req.headers['if-none-match'] })
 * // { status: 200, headers: { 'content-type': 'application/jwk-set+json', etag: '"…"', … }, body: '{"keys":[…]}' }
 * reply.code(r.status).headers(r.headers).send(r.body)
 * ```
 */
export interface JwksHttpResponse {
  /** 200 with the JWKS, 304 when `If-None-Match` matched the ETag, 405 for a method other than GET or HEAD. */
  readonly status: 200 | 304 | 405
  /** Response headers: content type, `ETag` and `Cache-Control` (or `Allow` with a 405). */
  readonly headers: Readonly<Record<string, string>>
  /** The JWKS JSON (empty for 304, 405 and HEAD). */
  readonly body: string
}

/**
 * The response to a JWKS request: the public keys of a key set (active, staged and retiring —
 * never a private member), with `Cache-Control`, a strong `ETag` and `304 Not Modified` for a
 * matching `If-None-Match`. Framework-neutral: fastify, koa, a lambda.
 *
 * @param request `method` (GET or HEAD; anything else is 405) and the `if-none-match` header.
 * @example
 * ```ts
 * // fastify
 * app.get('/.well-known/idctx-jwks.json', (req, reply) => {
 *   const r = jwksResponse(keys, { method: req.method, ifNoneMatch: req.headers['if-none-match'] })
 *   reply.code(r.status).headers(r.headers).send(r.body)
 * })
 * ```
 */
export function jwksResponse(
  keys: KeySet | (() => Jwks),
  request: { method?: string | undefined; ifNoneMatch?: string | string[] | undefined } = {},
  options: JwksResponseOptions = {},
): JwksHttpResponse {
  const maxAge = options.maxAgeSeconds ?? 60
  if (!Number.isInteger(maxAge) || maxAge < 0) throw new TypeError('jwksResponse: maxAgeSeconds must be a whole number ≥ 0')
  const method = (request.method ?? 'GET').toUpperCase()
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, headers: { allow: 'GET, HEAD' }, body: '' }
  const jwks = typeof keys === 'function' ? keys() : keys.jwks()
  const body = JSON.stringify(jwks)
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
  const headers = {
    'content-type': 'application/jwk-set+json',
    'cache-control': `public, max-age=${maxAge}`,
    etag,
  }
  const tags = [request.ifNoneMatch ?? []].flat().flatMap((v) => v.split(',').map((t) => t.trim()))
  if (tags.includes(etag) || tags.includes('*')) return { status: 304, headers, body: '' }
  return { status: 200, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, body: method === 'HEAD' ? '' : body }
}

/**
 * A request handler serving the key set's public JWKS, for node:http and express (both call it
 * with node's request and response). See {@link jwksResponse} for what it answers.
 *
 * @example
 * ```ts
 * http.createServer((req, res) => {
 *   if (req.url === '/.well-known/idctx-jwks.json') return jwks(req, res)
 *   …
 * })
 * const jwks = createJwksHandler(keys, { maxAgeSeconds: 60 })
 * // express: app.get('/.well-known/idctx-jwks.json', jwks)
 * ```
 */
export function createJwksHandler(keys: KeySet | (() => Jwks), options: JwksResponseOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  jwksResponse(keys, {}, options) // fail at construction on bad options, not per request
  return (req, res) => {
    const r = jwksResponse(keys, { method: req.method, ifNoneMatch: req.headers['if-none-match'] }, options)
    res.writeHead(r.status, r.headers)
    res.end(r.body)
  }
}
