import type { JWTPayload } from 'jose'
import { defineClaimMapper, stringClaim, stringList, stringValues, type ClaimMapper } from '../claim-mapper.js'

/**
 * The access-token claims the Keycloak mapper reads: `typ`, `sub`, `realm_access`,
 * `resource_access`, `organization` (or the tenant claim) and `scope`.
 *
 * @example
 * ```ts
 * const claims: KeycloakClaims = {
 *   iss: 'https://sso.example.com/realms/shop', sub: '0b6f1c9e-3d2a-4f5b-8c7d-9e0a1b2c3d4e', typ: 'Bearer',
 *   organization: ['acme'], scope: 'openid orders:write',
 *   realm_access: { roles: ['default-roles-shop', 'buyer'] },
 *   resource_access: { 'shop-api': { roles: ['orders-admin'] } },
 * }
 * keycloakClaims({ clients: ['shop-api'] }).map(claims)
 * // { subject: '0b6f1c9e-…', tenants: ['acme'], roles: ['buyer', 'orders-admin'], scopes: ['openid', 'orders:write'] }
 * ```
 */
export interface KeycloakClaims extends JWTPayload {
  typ?: unknown
  realm_access?: { roles?: unknown }
  resource_access?: Record<string, { roles?: unknown } | undefined>
  organization?: unknown
  scope?: unknown
  [claim: string]: unknown
}

/**
 * Options of {@link keycloakClaims}; all optional.
 *
 * @example
 * ```ts
 * // The tenant from a user-attribute mapper's `tenant` claim (make the attribute admin-only),
 * // roles from the `shop-api` client only.
 * const options: KeycloakMapperOptions = { tenant: { claim: 'tenant' }, clients: ['shop-api'], realmRoles: false }
 * const mapper = keycloakClaims(options)
 * ```
 */
export interface KeycloakMapperOptions {
  /**
   * Where the tenant comes from: `'organization'` (Keycloak 26 Organizations: the `organization`
   * claim, a list of aliases or an object keyed by alias), or the name of a claim filled by a
   * user-attribute mapper (e.g. `'tenant'`). Default `'organization'`.
   */
  tenant?: 'organization' | { claim: string }
  /** Client ids whose client roles (`resource_access.<client>.roles`) become roles. */
  clients?: readonly string[]
  /** Whether realm roles (`realm_access.roles`) become roles (default true). Keycloak's own `default-roles-*`, `offline_access` and `uma_authorization` are left out. */
  realmRoles?: boolean
}

const BUILT_IN = /^(default-roles-.+|offline_access|uma_authorization)$/

/**
 * Keycloak access tokens: the user is `sub` (a UUID), roles are realm roles and the listed
 * clients' roles, scopes are `scope`, the tenant is the user's organization (Keycloak 26) or a
 * claim of a user-attribute mapper. A token whose `typ` claim is not `Bearer` (an ID or refresh
 * token) is refused as `wrong_typ`.
 *
 * @example
 * ```ts
 * const mapper = keycloakClaims({ tenant: 'organization', clients: ['shop-api'] })
 * ```
 */
export function keycloakClaims(options: KeycloakMapperOptions = {}): ClaimMapper<KeycloakClaims> {
  const tenant = options.tenant ?? 'organization'
  const clients = [...(options.clients ?? [])]
  const realmRoles = options.realmRoles ?? true
  return defineClaimMapper<KeycloakClaims>('keycloak', (c) => {
    if (c.typ !== undefined && c.typ !== 'Bearer') return { refused: 'wrong_typ' }
    let tenants: string[]
    if (tenant === 'organization') {
      const org = c.organization
      tenants = Array.isArray(org) ? stringList(org) : typeof org === 'object' && org !== null ? Object.keys(org) : stringValues(org)
    } else {
      tenants = stringValues(c[tenant.claim])
    }
    const roles = realmRoles ? stringList(c.realm_access?.roles).filter((r) => !BUILT_IN.test(r)) : []
    for (const client of clients) {
      const access = c.resource_access !== undefined && Object.prototype.hasOwnProperty.call(c.resource_access, client) ? c.resource_access[client] : undefined
      roles.push(...stringList(access?.roles))
    }
    return { subject: stringClaim(c.sub), tenants, roles, scopes: stringList(c.scope) }
  })
}
