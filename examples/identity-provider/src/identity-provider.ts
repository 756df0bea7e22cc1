import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { json, startHttp } from '@idctx/example-shared/http'

/** The token shapes the development IdP can mint, like the real providers' access tokens. */
export type TokenShape = 'keycloak' | 'auth0'

export interface UserTokenRequest {
  readonly shape: TokenShape
  /** A pseudonymous user id (never an email). */
  readonly user: string
  readonly tenant: string
  readonly roles: readonly string[]
  /** Seconds; negative for an already expired token (attack scenarios). */
  readonly lifetimeSeconds?: number
}

export interface IdentityProvider {
  /** The issuer URL; JWKS at `${url}/.well-known/jwks.json`. */
  readonly url: string
  readonly audience: string
  issue(request: UserTokenRequest): Promise<string>
  close(): Promise<void>
}

/** Namespace of Auth0 custom claims (Auth0 requires namespaced custom claims). */
export const AUTH0_NAMESPACE = 'https://idctx.example/'

/**
 * Starts a development IdP on `host`:`port` (default 127.0.0.1, any port). `POST /token` with a
 * JSON {@link UserTokenRequest} returns `{ access_token }` — password-less, for local use only.
 *
 * @example
 * ```ts
 * const idp = await startIdentityProvider()
 * const jwt = await idp.issue({ shape: 'keycloak', user: 'u-7d2f', tenant: 'acme', roles: ['buyer'] })
 * ```
 */
export async function startIdentityProvider(
  options: { port?: number; host?: string; audience?: string; issuer?: string } = {},
): Promise<IdentityProvider> {
  const audience = options.audience ?? 'shop-api'
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'dev-idp-1', alg: 'ES256', use: 'sig' }
  let issuer = ''
  const issue = (r: UserTokenRequest) => mint(r, privateKey, issuer, audience)
  const http = await startHttp(options.port ?? 0, {
    'GET /.well-known/jwks.json': (_req, _body, res) => json(res, 200, { keys: [jwk] }),
    'GET /healthz': (_req, _body, res) => json(res, 200, { ok: true }),
    'POST /token': async (_req, body, res) => {
      const r = JSON.parse(body.toString('utf8')) as UserTokenRequest
      json(res, 200, { access_token: await issue(r), token_type: 'Bearer' })
    },
  }, options.host)
  issuer = options.issuer ?? http.url
  return { url: issuer, audience, issue, close: http.close }
}

async function mint(r: UserTokenRequest, key: CryptoKey, issuer: string, audience: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const claims: Record<string, unknown> =
    r.shape === 'keycloak'
      ? {
          // Keycloak: realm roles under realm_access, tenant from a user-attribute mapper
          realm_access: { roles: [...r.roles] },
          tenant: r.tenant,
          azp: 'shop-web',
          scope: 'openid orders:write',
          preferred_username: `user-${r.user.slice(0, 4)}`,
        }
      : {
          // Auth0: Organizations put the tenant in org_id; RBAC in permissions; custom claims namespaced
          org_id: r.tenant,
          permissions: ['orders:write'],
          [`${AUTH0_NAMESPACE}roles`]: [...r.roles],
          azp: 'shop-web',
        }
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'dev-idp-1', typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(r.user)
    .setIssuedAt(now)
    .setExpirationTime(now + (r.lifetimeSeconds ?? 600))
    .sign(key)
}
