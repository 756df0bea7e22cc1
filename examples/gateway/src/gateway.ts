import { randomUUID } from 'node:crypto'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { createSigner, messageLeaf, type IdctxObserver, type KeySet } from '@idctx/core'
import { json, jwksRoute, serviceKeys, startHttp } from '@idctx/example-shared'
import { auth0Claims, keycloakClaims, mapClaims } from './claims.js'
import { AUTH0_NAMESPACE } from './namespace.js'

export interface GatewayOptions {
  port?: number
  /** The identity provider's issuer URL (its JWKS is at /.well-known/jwks.json). */
  idpUrl: string
  /** The audience of user tokens. */
  userAudience?: string
  /** Where orders are forwarded. */
  ordersUrl: string
  /** The idctx audience (trust domain). */
  audience: string
  observer?: IdctxObserver
}

export interface Gateway {
  readonly url: string
  readonly keys: KeySet
  readonly stats: { accepted: number; rejected: Record<string, number> }
  close(): Promise<void>
}

/** The destination of the HTTP hop gateway → orders, as bound into the idctx token. */
export const ORDERS_HTTP_DESTINATION = 'http:orders/POST /orders'

/**
 * The gateway: `POST /orders` with `Authorization: Bearer <user JWT>`. The JWT is verified against
 * the IdP's JWKS; user, tenant and roles are normalized (Keycloak or Auth0 shape) into an idctx
 * context with a fresh transaction id, signed over the exact request body, and forwarded.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const keys = serviceKeys('gateway')
  const signer = createSigner({ issuer: 'gateway', audience: options.audience, key: keys, ...(options.observer ? { observer: options.observer } : {}) })
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', options.idpUrl))
  const mappers = [keycloakClaims, auth0Claims(AUTH0_NAMESPACE)]
  const stats = { accepted: 0, rejected: {} as Record<string, number> }
  const reject = (reason: string) => {
    stats.rejected[reason] = (stats.rejected[reason] ?? 0) + 1
  }
  const http = await startHttp(options.port ?? 0, {
    ...jwksRoute(keys),
    'GET /healthz': (_req, _body, res) => json(res, 200, { ok: true }),
    'POST /orders': async (req, body, res) => {
      const auth = req.headers.authorization ?? ''
      if (!auth.startsWith('Bearer ')) {
        reject('no_bearer')
        return json(res, 401, { error: 'bearer token required' })
      }
      let payload
      try {
        ;({ payload } = await jwtVerify(auth.slice(7), jwks, {
          issuer: options.idpUrl,
          audience: options.userAudience ?? 'shop-api',
          algorithms: ['ES256', 'RS256', 'EdDSA'],
        }))
      } catch (e) {
        reject((e as { code?: string }).code ?? 'invalid_token')
        return json(res, 401, { error: 'invalid bearer token', code: (e as { code?: string }).code })
      }
      const user = mapClaims(payload, mappers)
      if (user === undefined) {
        reject('unmapped_claims')
        return json(res, 403, { error: 'token has no tenant or subject the gateway understands' })
      }
      const context = { sub: user.sub, tid: user.tenant, txn: randomUUID(), pty: 'user' as const, roles: user.roles, scope: user.scope }
      const { token } = signer.sign(context, [{ destination: ORDERS_HTTP_DESTINATION, leaf: messageLeaf(ORDERS_HTTP_DESTINATION, null, body) }])
      const forwarded = await fetch(new URL('/orders', options.ordersUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json', idctx: token },
        body,
      })
      stats.accepted++
      res.writeHead(forwarded.status, { 'content-type': 'application/json', 'x-idctx-txn': context.txn })
      res.end(Buffer.from(await forwarded.arrayBuffer()))
    },
  })
  return { url: http.url, keys, stats, close: http.close }
}
