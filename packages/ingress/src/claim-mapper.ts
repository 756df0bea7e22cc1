import type { PrincipalType } from '@idctx/core'
import type { JWTPayload } from 'jose'

/**
 * What a claim mapper reads from a verified access token: an opaque user id, every tenant the
 * token names (the ingress accepts exactly one), roles and scopes. Never a name or an email.
 *
 * @example
 * ```ts
 * const corp = defineClaimMapper('corp', (c): MappedIdentity => ({
 *   subject: stringClaim(c.sub),
 *   tenants: stringValues(c['corp:tenant']),
 *   roles: stringList(c['corp:roles']),
 *   scopes: stringList(c.scope),
 *   principalType: c.gty === 'client-credentials' ? 'service' : 'user',
 * }))
 * ```
 */
export interface MappedIdentity {
  /** The provider's opaque, stable user id (Keycloak `sub`, Entra `oid`, Okta `uid`, …); undefined when none. */
  readonly subject: string | undefined
  /** Every tenant the token names, in the application's tenant ids. */
  readonly tenants: readonly string[]
  /** Role names; duplicates are removed and at most 64 are kept. */
  readonly roles?: readonly string[] | undefined
  /** OAuth scopes (RFC 6749 §3.3 scope tokens; others are dropped), joined into `scope` up to 2048 characters. */
  readonly scopes?: readonly string[] | undefined
  /** `user` by default; `service` for a client-credentials token. */
  readonly principalType?: PrincipalType | undefined
}

/**
 * A mapper's refusal of a token that is genuine but not an access token it accepts (an ID token,
 * say). The ingress answers it with 401 and the reason `refused`.
 *
 * @example
 * ```ts
 * const corp = defineClaimMapper('corp', (c): MappedIdentity | MappingRefusal =>
 *   c.token_use !== 'access' ? { refused: 'wrong_typ' } : { subject: stringClaim(c.sub), tenants: stringValues(c.tenant) },
 * )
 * ```
 */
export interface MappingRefusal {
  /** The reason the request is refused with. */
  readonly refused: 'wrong_typ' | 'wrong_issuer' | 'missing_claim'
}

/**
 * Maps one provider's verified access-token claims to a {@link MappedIdentity}. `P` types the
 * claims the mapper reads; they are only ever read after the signature has been checked.
 * Made by the provider mappers (`keycloakClaims()`, …) or {@link defineClaimMapper}, and given to
 * `createIngress` as `mapper`.
 *
 * @example
 * ```ts
 * const mapper: ClaimMapper<KeycloakClaims> = keycloakClaims({ clients: ['shop-api'] })
 * const r = mapper.map(verified.claims) // claims of a token accessTokens.verify accepted
 * if (!isRefusal(r)) console.log(r.tenants) // ['acme']
 * ```
 */
export interface ClaimMapper<P extends JWTPayload = JWTPayload> {
  /** A short name for logs and docs (`keycloak`, `auth0`, …). */
  readonly provider: string
  /** The identity the verified claims name, or a refusal of the token. */
  map(claims: P): MappedIdentity | MappingRefusal
}

/**
 * Writes a claim mapper with typed claims. Read claims with {@link stringClaim} and
 * {@link stringList}: a claim of an unexpected type counts as absent, never as a value.
 *
 * @example
 * ```ts
 * interface Corp extends JWTPayload { employee_id?: string; 'corp:tenant'?: string; 'corp:roles'?: string[] }
 * const corp = defineClaimMapper<Corp>('corp', (c) => ({
 *   subject: stringClaim(c.employee_id),
 *   tenants: stringList(c['corp:tenant']),
 *   roles: stringList(c['corp:roles']),
 *   scopes: stringList(c.scope),
 * }))
 * ```
 */
export function defineClaimMapper<P extends JWTPayload = JWTPayload>(provider: string, map: (claims: P) => MappedIdentity | MappingRefusal): ClaimMapper<P> {
  if (typeof provider !== 'string' || provider.length === 0) throw new TypeError('defineClaimMapper: provider must be a non-empty string')
  if (typeof map !== 'function') throw new TypeError('defineClaimMapper: map must be a function')
  return Object.freeze({ provider, map })
}

/**
 * A claim as a non-empty string, or undefined.
 *
 * @example
 * ```ts
 * stringClaim(claims.oid) // 'b1e5…' or undefined
 * ```
 */
export function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined
}

/**
 * A claim as a list of non-empty strings: an array keeps its strings, a string is split on
 * spaces (as `scope` is), anything else is empty.
 *
 * @example
 * ```ts
 * stringList('openid orders:write') // ['openid', 'orders:write']
 * stringList(['buyer', 7]) // ['buyer']
 * ```
 */
export function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s.length > 0)
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string' && s.length > 0)
  return []
}

/**
 * A claim as a list of values: a string is one value (a tenant id may hold a space), an array
 * keeps its non-empty strings, anything else is empty.
 *
 * @example
 * ```ts
 * stringValues('acme') // ['acme']
 * stringValues(['acme', 'globex']) // ['acme', 'globex']
 * ```
 */
export function stringValues(value: unknown): string[] {
  if (typeof value === 'string') return value.length > 0 ? [value] : []
  return Array.isArray(value) ? value.filter((s): s is string => typeof s === 'string' && s.length > 0) : []
}

/**
 * Whether a mapper's result is a refusal.
 *
 * @example
 * ```ts
 * const r = keycloak.map(claims)
 * if (isRefusal(r)) console.log(r.refused)
 * ```
 */
export function isRefusal(result: MappedIdentity | MappingRefusal): result is MappingRefusal {
  return typeof (result as MappingRefusal).refused === 'string'
}
