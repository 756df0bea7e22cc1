import { auth0Claims, defineClaimMapper, keycloakClaims, type ClaimMapper } from '@idctx/ingress'
import { AUTH0_NAMESPACE } from './namespace.js'

/** Keycloak tokens of the development IdP: realm roles, the tenant from a user-attribute mapper (`tenant`). */
export const keycloak = keycloakClaims({ tenant: { claim: 'tenant' } })

/** Auth0 tokens of the development IdP: the Organization (`org_id`) as tenant, permissions, namespaced roles. */
export const auth0 = auth0Claims({ namespace: AUTH0_NAMESPACE })

/**
 * The development IdP mints both shapes (`@idctx/example-identity-provider`): a Keycloak token
 * carries `realm_access`, an Auth0 one does not. A real deployment trusts one provider and uses
 * its mapper from `@idctx/ingress` as it is.
 *
 * @example
 * ```ts
 * createIngress({ accessTokens, mapper: devIdpClaims })
 * ```
 */
export const devIdpClaims: ClaimMapper = defineClaimMapper('dev-idp', (claims) => ('realm_access' in claims ? keycloak.map(claims) : auth0.map(claims)))
