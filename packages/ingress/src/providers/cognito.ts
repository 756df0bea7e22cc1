import type { JWTPayload } from 'jose'
import { defineClaimMapper, stringClaim, stringList, stringValues, type ClaimMapper } from '../claim-mapper.js'

/** The access-token claims the Cognito mapper reads. */
export interface CognitoClaims extends JWTPayload {
  token_use?: unknown
  'cognito:groups'?: unknown
  scope?: unknown
  client_id?: unknown
  [claim: string]: unknown
}

/** Options of {@link cognitoClaims}. */
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
