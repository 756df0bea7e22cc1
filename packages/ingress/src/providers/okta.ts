import type { JWTPayload } from 'jose'
import { defineClaimMapper, stringClaim, stringList, stringValues, type ClaimMapper } from '../claim-mapper.js'

/** The access-token claims the Okta mapper reads. */
export interface OktaClaims extends JWTPayload {
  uid?: unknown
  cid?: unknown
  scp?: unknown
  [claim: string]: unknown
}

/** Options of {@link oktaClaims}. */
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
