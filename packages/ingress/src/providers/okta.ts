import type { JWTPayload } from 'jose'
import { defineClaimMapper, stringClaim, stringList, stringValues, type ClaimMapper } from '../claim-mapper.js'

/**
 * The access-token claims the Okta mapper reads: `uid`, `cid`, `scp`, and the tenant and groups
 * claims. `sub` (the login) is never read.
 *
 * @example
 * ```ts
 * const claims: OktaClaims = {
 *   iss: 'https://shop.okta.com/oauth2/aus1a2b3c4d5e6f7g8h9', sub: 'jane@example.com',
 *   uid: '00u1a2b3c4d5e6f7g8h9', cid: '0oa9h8g7f6e5d4c3b2a1', scp: ['orders:read'],
 *   tenant: 'acme', groups: ['buyers'],
 * }
 * oktaClaims({ tenantClaim: 'tenant' }).map(claims)
 * // { subject: '00u1a2b3c4d5e6f7g8h9', tenants: ['acme'], roles: ['buyers'], scopes: ['orders:read'], principalType: 'user' }
 * ```
 */
export interface OktaClaims extends JWTPayload {
  uid?: unknown
  cid?: unknown
  scp?: unknown
  [claim: string]: unknown
}

/**
 * Options of {@link oktaClaims}; without `tenantClaim` it throws a `TypeError`.
 *
 * @example
 * ```ts
 * const options: OktaMapperOptions = { tenantClaim: 'tenant', groupsClaim: 'shop_groups' }
 * const mapper = oktaClaims(options)
 * ```
 */
export interface OktaMapperOptions {
  /** The custom claim of the authorization server holding the tenant (e.g. `tenant`, from a user profile attribute). */
  tenantClaim: string
  /** The custom claim holding group names (default `groups`, a Groups claim filter). */
  groupsClaim?: string
}

/**
 * Okta (custom authorization server) access tokens: the user is `uid` — Okta's `sub` is the
 * login, usually an email address, so it never becomes the subject — the tenant comes from a
 * custom claim, roles are the groups claim, scopes are `scp`. A token without `uid` (client
 * credentials) is a `service` principal named by its client id (`cid`).
 *
 * @example
 * ```ts
 * const mapper = oktaClaims({ tenantClaim: 'tenant' })
 * ```
 */
export function oktaClaims(options: OktaMapperOptions): ClaimMapper<OktaClaims> {
  if (typeof options?.tenantClaim !== 'string' || options.tenantClaim.length === 0) throw new TypeError('oktaClaims: tenantClaim is required')
  const tenantClaim = options.tenantClaim
  const groupsClaim = options.groupsClaim ?? 'groups'
  return defineClaimMapper<OktaClaims>('okta', (c) => {
    const uid = stringClaim(c.uid)
    return {
      subject: uid ?? stringClaim(c.cid),
      tenants: stringValues(c[tenantClaim]),
      roles: stringList(c[groupsClaim]),
      scopes: stringList(c.scp),
      principalType: uid === undefined ? 'service' : 'user',
    }
  })
}
