import type { JWTPayload } from 'jose'
import { defineClaimMapper, stringClaim, stringList, type ClaimMapper } from '../claim-mapper.js'

/**
 * The access-token claims the Auth0 mapper reads: `sub`, `org_id`, `scope`, `permissions` (RBAC),
 * `gty` and `azp`, and the namespaced roles claim.
 *
 * @example
 * ```ts
 * const claims: Auth0Claims = {
 *   iss: 'https://shop.eu.auth0.com/', sub: 'auth0|6571f0c2a9e3b1d4', aud: 'https://api.shop.example',
 *   org_id: 'org_W1cK2Nf3x8sY', scope: 'openid orders:read', permissions: ['orders:write'],
 *   'https://shop.example/roles': ['buyer'],
 * }
 * auth0Claims({ namespace: 'https://shop.example/' }).map(claims)
 * // { subject: 'auth0|6571f0c2a9e3b1d4', tenants: ['org_W1cK2Nf3x8sY'], roles: ['buyer'], scopes: ['openid', 'orders:read', 'orders:write'], principalType: 'user' }
 * ```
 */
export interface Auth0Claims extends JWTPayload {
  org_id?: unknown
  permissions?: unknown
  scope?: unknown
  gty?: unknown
  azp?: unknown
  [claim: string]: unknown
}

/**
 * Options of {@link auth0Claims}; without `namespace` it throws a `TypeError`.
 *
 * @example
 * ```ts
 * const options: Auth0MapperOptions = {
 *   namespace: 'https://shop.example/',
 *   rolesClaim: 'roles', // reads `https://shop.example/roles`
 *   organizations: { org_W1cK2Nf3x8sY: 'acme', org_Q7pL4mZt2vRb: 'globex' },
 * }
 * const mapper = auth0Claims(options)
 * ```
 */
export interface Auth0MapperOptions {
  /** The namespace of custom claims added by an Action, e.g. `https://shop.example/` (Auth0 requires one). */
  namespace: string
  /** The custom claim (under `namespace`) holding roles (default `roles`). */
  rolesClaim?: string
  /**
   * Organization ids (`org_id`, `org_…`) → application tenant ids. Without it the `org_id` is
   * the tenant id; with it an organization not listed maps to no tenant (`no_tenant`).
   */
  organizations?: Readonly<Record<string, string>>
}

/**
 * Auth0 access tokens: the tenant is the Organization the user logged in to (`org_id`), roles come
 * from a namespaced custom claim, RBAC `permissions` are added to the scopes. The user is `sub`
 * (`auth0|…`, an opaque id); a client-credentials token (`gty: client-credentials`) is a
 * `service` principal named by its client id (`azp`), not by its `…@clients` subject.
 *
 * @example
 * ```ts
 * const mapper = auth0Claims({ namespace: 'https://shop.example/' })
 * ```
 */
export function auth0Claims(options: Auth0MapperOptions): ClaimMapper<Auth0Claims> {
  if (typeof options?.namespace !== 'string' || options.namespace.length === 0) throw new TypeError('auth0Claims: namespace is required')
  const rolesClaim = `${options.namespace}${options.rolesClaim ?? 'roles'}`
  const organizations = options.organizations
  return defineClaimMapper<Auth0Claims>('auth0', (c) => {
    const org = stringClaim(c.org_id)
    let tenants: string[] = org === undefined ? [] : [org]
    if (organizations !== undefined) {
      tenants = tenants.flatMap((t) => (Object.prototype.hasOwnProperty.call(organizations, t) ? [organizations[t] as string] : []))
    }
    const scopes = [...new Set([...stringList(c.scope), ...stringList(c.permissions)])]
    const service = c.gty === 'client-credentials'
    return {
      subject: service ? stringClaim(c.azp) : stringClaim(c.sub),
      tenants,
      roles: stringList(c[rolesClaim]),
      scopes,
      principalType: service ? 'service' : 'user',
    }
  })
}
