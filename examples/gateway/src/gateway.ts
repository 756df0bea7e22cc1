import { randomUUID } from 'node:crypto'
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { combineObservers, createSigner, messageLeaf, type IdctxObserver, type KeySet, type KeySetDocument } from '@idctx/core'
import { activeTraceId, createOtelObserver, traceparentOf } from '@idctx/otel'
import {
  createHopCounter,
  json,
  jwksRoute,
  ORDERS_HTTP_DESTINATION,
  serviceKeys,
  startHttp,
  type HopStats,
} from '@idctx/example-shared'
import { auth0Claims, keycloakClaims, mapClaims } from './claims.js'
import { AUTH0_NAMESPACE } from './namespace.js'
import { isKeySourceFailure, userTokenReason } from './user-token.js'

export { ORDERS_HTTP_DESTINATION }

export interface GatewayOptions {
  port?: number
  /** Interface to bind (default 127.0.0.1; 0.0.0.0 in a container). */
  host?: string
  /** The identity provider's issuer URL (its JWKS is at /.well-known/jwks.json). */
  idpUrl: string
  /** The audience of user tokens. */
  userAudience?: string
  /** Where orders are forwarded: one URL, or the URLs of several orders replicas (round robin). */
  ordersUrl: string | readonly string[]
  /** The idctx audience (trust domain). */
  audience: string
  /**
   * The private key set document of the `gateway` issuer, the same for every replica
   * (`keySetFromEnv`); without it this process generates a key of its own (one replica only).
   */
  keySet?: string | KeySetDocument | undefined
  /** Also receives the signer's events (an OpenTelemetry observer is always attached). */
  observer?: IdctxObserver
}

export interface Gateway {
  readonly url: string
  readonly keys: KeySet
  /** Accepted: user tokens verified and forwarded. Rejected: by reason (`expired`, `bad_signature`, …). */
  readonly stats: HopStats
  close(): Promise<void>
}

const tracer = trace.getTracer('gateway')

interface Answer {
  readonly status: number
  readonly body: unknown
  readonly txn?: string
}

/**
 * The gateway: `POST /orders` with `Authorization: Bearer <user JWT>`. The JWT is verified against
 * the IdP's JWKS; user, tenant and roles are normalized (Keycloak or Auth0 shape) into an idctx
 * context with a fresh transaction id, signed over the exact request body, and forwarded with a
 * `traceparent`. A refused user token gets 401 `{ error, reason }`.
 *
 * @example
 * ```ts
 * const gateway = await startGateway({ idpUrl, ordersUrl: orders.url, audience: 'shop' })
 * await fetch(`${gateway.url}/orders`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` }, body })
 * ```
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const keys = serviceKeys('gateway', options.keySet)
  const ordersUrls = typeof options.ordersUrl === 'string' ? [options.ordersUrl] : [...options.ordersUrl]
  if (ordersUrls.length === 0) throw new TypeError('startGateway: ordersUrl needs at least one URL')
  let nextOrders = 0
  const signer = createSigner({
    issuer: 'gateway',
    audience: options.audience,
    key: keys,
    traceId: activeTraceId,
    observer: combineObservers(createOtelObserver({ tracer }), options.observer),
  })
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', options.idpUrl))
  const mappers = [keycloakClaims, auth0Claims(AUTH0_NAMESPACE)]
  const counter = createHopCounter()

  const order = async (auth: string, body: Buffer, span: Span): Promise<Answer> => {
    const reject = (status: number, reason: string, error: string): Answer => {
      counter.reject(reason)
      span.setAttribute('gateway.reject_reason', reason)
      span.setStatus({ code: SpanStatusCode.ERROR, message: `rejected: ${reason}` })
      return { status, body: { error, reason } }
    }
    if (!auth.startsWith('Bearer ')) return reject(401, 'no_bearer', 'bearer token required')
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(auth.slice(7), jwks, {
        issuer: options.idpUrl,
        audience: options.userAudience ?? 'shop-api',
        algorithms: ['ES256', 'RS256', 'EdDSA'],
      }))
    } catch (e) {
      if (isKeySourceFailure(e)) return { status: 503, body: { error: 'identity provider unavailable' } }
      return reject(401, userTokenReason(e), 'invalid bearer token')
    }
    const user = mapClaims(payload, mappers)
    if (user === undefined) return reject(403, 'unmapped_claims', 'token has no tenant or subject the gateway understands')
    const context = { sub: user.sub, tid: user.tenant, txn: randomUUID(), pty: 'user' as const, roles: user.roles, scope: user.scope }
    const { token } = signer.sign(context, [{ destination: ORDERS_HTTP_DESTINATION, leaf: messageLeaf(ORDERS_HTTP_DESTINATION, null, body) }])
    counter.accept()
    const traceparent = traceparentOf()
    const ordersUrl = ordersUrls[nextOrders++ % ordersUrls.length] as string
    const forwarded = await fetch(new URL('/orders', ordersUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', idctx: token, ...(traceparent ? { traceparent } : {}) },
      body,
    })
    return { status: forwarded.status, body: (await forwarded.json()) as unknown, txn: context.txn }
  }

  const http = await startHttp(
    options.port ?? 0,
    {
      ...jwksRoute(keys),
      'GET /healthz': (_req, _body, res) => json(res, 200, { ok: true }),
      'GET /stats': (_req, _body, res) => json(res, 200, counter.stats),
      'POST /orders': (req, body, res) =>
        // The edge of the system: a new trace per request, whatever the caller sent.
        tracer.startActiveSpan('POST /orders', { kind: SpanKind.SERVER, root: true, attributes: { 'http.request.method': 'POST', 'url.path': '/orders' } }, async (span) => {
          try {
            const r = await order(req.headers.authorization ?? '', body, span)
            span.setAttribute('http.response.status_code', r.status)
            const traceId = span.spanContext().traceId
            const headers: Record<string, string> = {}
            if (r.txn !== undefined) headers['x-idctx-txn'] = r.txn
            if (trace.isSpanContextValid(span.spanContext())) headers['x-trace-id'] = traceId
            json(res, r.status, r.body, headers)
          } finally {
            span.end()
          }
        }),
    },
    options.host,
  )
  return { url: http.url, keys, stats: counter.stats, close: http.close }
}
