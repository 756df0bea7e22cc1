import type { JWTPayload } from 'jose'

/** What the gateway takes from a user token, whatever the provider. */
export interface UserClaims {
  readonly sub: string
  readonly tenant: string
  readonly roles: readonly string[]
  readonly scope: string | undefined
}

/** Maps one provider's token shape to {@link UserClaims}; undefined when the shape is not its own. */
export type ClaimMapper = (payload: JWTPayload) => UserClaims | undefined

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])

/**
 * Keycloak: realm roles in `realm_access.roles`, the tenant from a user-attribute mapper (`tenant`)
 * or from Keycloak 26 organizations (`organization`: the single organization alias).
 */
export const keycloakClaims: ClaimMapper = (p) => {
  const realm = p.realm_access as { roles?: unknown } | undefined
  if (realm === undefined) return undefined
  const org = p.organization
  const tenant = typeof p.tenant === 'string' ? p.tenant : Array.isArray(org) && org.length === 1 ? String(org[0]) : undefined
  if (typeof p.sub !== 'string' || tenant === undefined) return undefined
  return { sub: p.sub, tenant, roles: strings(realm.roles), scope: typeof p.scope === 'string' ? p.scope : undefined }
}

/**
 * Auth0: the tenant is the Organization (`org_id`), RBAC permissions become scopes, roles come from
 * a namespaced custom claim added by an Action.
 */
export function auth0Claims(namespace: string): ClaimMapper {
  return (p) => {
    if (typeof p.org_id !== 'string' || typeof p.sub !== 'string') return undefined
    const permissions = strings(p.permissions)
    return {
      sub: p.sub,
      tenant: p.org_id,
      roles: strings(p[`${namespace}roles`]),
      scope: permissions.length > 0 ? permissions.join(' ') : typeof p.scope === 'string' ? p.scope : undefined,
    }
  }
}

/** Tries each mapper in turn. */
export function mapClaims(payload: JWTPayload, mappers: readonly ClaimMapper[]): UserClaims | undefined {
  for (const m of mappers) {
    const r = m(payload)
    if (r !== undefined) return r
  }
  return undefined
}
