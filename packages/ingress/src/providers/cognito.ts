import type { JWTPayload } from 'jose'
import { defineClaimMapper, stringClaim, stringList, stringValues, type ClaimMapper } from '../claim-mapper.js'

/**
 * The access-token claims the Cognito mapper reads: `token_use`, `sub`, `client_id`,
 * `cognito:groups`, `scope`, and the tenant attribute.
 *
 * @example
 * ```ts
 * const claims: CognitoClaims = {
 *   iss: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz', sub: '5f1c2b7e-0d4a-4c39-9e8b-2a6f1d3c4b5a',
 *   token_use: 'access', client_id: '3n4b5urk1ft4fl3mg5e62d9ado', scope: 'orders/read',
 *   'cognito:groups': ['buyers'], 'custom:tenant_id': 'acme',
 * }
 * cognitoClaims({ tenantClaim: 'custom:tenant_id' }).map(claims)
 * // { subject: '5f1c2b7e-…', tenants: ['acme'], roles: ['buyers'], scopes: ['orders/read'], principalType: 'user' }
 * ```
 */
export interface CognitoClaims extends JWTPayload {
  token_use?: unknown
  'cognito:groups'?: unknown
  scope?: unknown
  client_id?: unknown
  [claim: string]: unknown
}

/**
 * Options of {@link cognitoClaims}; without `tenantClaim` it throws a `TypeError`.
 *
 * @example
 * ```ts
 * const options: CognitoMapperOptions = { tenantClaim: 'custom:tenant_id' }
 * const ingress = createIngress({
 *   accessTokens: createAccessTokenVerifier({ issuer, jwksUri, clientId: '3n4b5urk1ft4fl3mg5e62d9ado' }),
 *   mapper: cognitoClaims(options),
 * })
 * ```
 */
export interface CognitoMapperOptions {
  /**
   * The claim holding the tenant, e.g. `custom:tenant_id`. Custom attributes are in ID tokens by
   * default: add them to access tokens with a pre token generation trigger (event version 2).
   */
  tenantClaim: string
}

/**
 * Amazon Cognito access tokens: only `token_use: access` is accepted (an ID token is
 * `wrong_typ`), the user is `sub` (a UUID; `username` may be an email and is never read), roles
 * are `cognito:groups`, scopes are `scope`, the tenant is a custom attribute. Cognito access
 * tokens have no `aud`: verify them with `clientId` (see `createAccessTokenVerifier`). A token
 * without a user (client credentials: `sub` is the client id) is a `service`.
 *
 * @example
 * ```ts
 * const mapper = cognitoClaims({ tenantClaim: 'custom:tenant_id' })
 * ```
 */
export function cognitoClaims(options: CognitoMapperOptions): ClaimMapper<CognitoClaims> {
  if (typeof options?.tenantClaim !== 'string' || options.tenantClaim.length === 0) throw new TypeError('cognitoClaims: tenantClaim is required')
  const tenantClaim = options.tenantClaim
  return defineClaimMapper<CognitoClaims>('cognito', (c) => {
    if (c.token_use !== 'access') return { refused: 'wrong_typ' }
    const sub = stringClaim(c.sub)
    return {
      subject: sub,
      tenants: stringValues(c[tenantClaim]),
      roles: stringList(c['cognito:groups']),
      scopes: stringList(c.scope),
      principalType: sub !== undefined && sub === stringClaim(c.client_id) ? 'service' : 'user',
    }
  })
}
