import type { IncomingMessage } from 'node:http'
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import { combineObservers, createSigner, defaultContextStore, KeyError, type IdctxObserver, type KeySet, type KeySetDocument } from '@idctx/core'
import { createAccessTokenVerifier, createHopFetch, createIngress } from '@idctx/ingress'
import { activeTraceId, createOtelObserver, traceparentOf } from '@idctx/otel'
import { createHopCounter, json, jwksRoute, serviceKeys, startHttp, type HopStats } from '@idctx/example-shared'
import { devIdpClaims } from './claims.js'

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
  readonly headers?: Readonly<Record<string, string>>
  readonly txn?: string
}

/**
 * The gateway: `POST /orders` with `Authorization: Bearer <user JWT>`. `@idctx/ingress` verifies
 * the JWT against the IdP's JWKS and maps user, tenant and roles (Keycloak or Auth0 shape) into an
 * idctx context with a fresh transaction id; the order is forwarded with `createHopFetch`, which
 * signs that context over the exact request (method, authority, path, body), with a
 * `traceparent`. A refused user token gets 401 or 403 with `WWW-Authenticate` and
 * `{ error, reason }`.
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
  // The edge: the user's access token verified against the IdP's JWKS and mapped (Keycloak or
  // Auth0 shape) to the first idctx context, with a fresh transaction id.
  const ingress = createIngress({
    accessTokens: createAccessTokenVerifier({
      issuer: options.idpUrl,
      jwksUri: new URL('/.well-known/jwks.json', options.idpUrl),
      audience: options.userAudience ?? 'shop-api',
      algorithms: ['ES256', 'RS256', 'EdDSA'],
    }),
    mapper: devIdpClaims,
    realm: 'shop',
  })
  // The hop to orders: the context signed over this exact request (method, authority, path, body).
  const hopFetch = createHopFetch({ signer })
  const counter = createHopCounter()

  const order = async (req: IncomingMessage, body: Buffer, span: Span): Promise<Answer> => {
    let outcome
    try {
      outcome = await ingress.authenticate(req)
    } catch (e) {
      // The IdP's keys could not be fetched: not the token's fault, the client retries.
      if (e instanceof KeyError) return { status: 503, body: { error: 'identity provider unavailable' }, headers: { 'retry-after': '1' } }
      throw e
    }
    if (!outcome.ok) {
      const { reason, status, headers, body: answer } = outcome.refusal
      counter.reject(reason)
      span.setAttribute('gateway.reject_reason', reason)
      span.setStatus({ code: SpanStatusCode.ERROR, message: `rejected: ${reason}` })
      return { status, body: answer, headers }
    }
    const context = outcome.context
    counter.accept()
    const traceparent = traceparentOf()
    const ordersUrl = ordersUrls[nextOrders++ % ordersUrls.length] as string
    const forwarded = await defaultContextStore.run(context, () =>
      hopFetch(new URL('/orders', ordersUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(traceparent ? { traceparent } : {}) },
        body,
      }),
    )
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
            const r = await order(req, body, span)
            span.setAttribute('http.response.status_code', r.status)
            const traceId = span.spanContext().traceId
            const headers: Record<string, string> = { ...r.headers }
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
