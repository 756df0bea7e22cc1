import type { JWTPayload } from 'jose'
import { defineClaimMapper, stringClaim, stringList, type ClaimMapper } from '../claim-mapper.js'

/**
 * The access-token claims the Entra ID mapper reads: `iss`, `tid`, `oid`, `roles`, `scp` and
 * `idtyp`.
 *
 * @example
 * ```ts
 * const claims: EntraClaims = {
 *   iss: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
 *   tid: '72f988bf-86f1-41af-91ab-2d7cd011db47', oid: '3f2e1d0c-9b8a-4765-8432-10fedcba9876',
 *   scp: 'Orders.Read', roles: ['Orders.Admin'],
 * }
 * entraClaims({ directories: { '72f988bf-86f1-41af-91ab-2d7cd011db47': 'contoso' } }).map(claims)
 * // { subject: '3f2e1d0c-…', tenants: ['contoso'], roles: ['Orders.Admin'], scopes: ['Orders.Read'], principalType: 'user' }
 * ```
 */
export interface EntraClaims extends JWTPayload {
  oid?: unknown
  tid?: unknown
  roles?: unknown
  scp?: unknown
  idtyp?: unknown
}

/**
 * Options of {@link entraClaims}; without `directories` it throws a `TypeError`.
 *
 * @example
 * ```ts
 * const options: EntraMapperOptions = {
 *   directories: {
 *     '72f988bf-86f1-41af-91ab-2d7cd011db47': 'contoso', // case-insensitive
 *     'f8cdef31-a31e-4b4a-93e4-5f571e91255a': 'fabrikam',
 *   },
 * }
 * const mapper = entraClaims(options)
 * ```
 */
export interface EntraMapperOptions {
  /**
   * Directory (`tid`, a GUID) → the application's tenant id. A directory not listed maps to no
   * tenant: a multi-tenant app admits exactly the customers it was configured for.
   */
  directories: Readonly<Record<string, string>>
}

/**
 * Microsoft Entra ID access tokens (v1 or v2): the user is `oid` (the object id, stable across
 * applications; `sub` is pairwise and `upn`/`preferred_username` are personal), the directory
 * `tid` is mapped to the application's tenant through `directories`, app roles are `roles`,
 * delegated scopes are `scp`. The issuer must name the same directory as `tid`
 * (`https://login.microsoftonline.com/<tid>/v2.0` or `https://sts.windows.net/<tid>/`): a token of
 * one directory never passes for another. A token with neither `scp` nor `roles` (an ID token)
 * is refused as `wrong_typ`. An app-only token (`idtyp: app`) is a `service`.
 *
 * @example
 * ```ts
 * const mapper = entraClaims({ directories: { '72f988bf-86f1-41af-91ab-2d7cd011db47': 'contoso' } })
 * ```
 */
export function entraClaims(options: EntraMapperOptions): ClaimMapper<EntraClaims> {
  if (typeof options?.directories !== 'object' || options.directories === null) throw new TypeError('entraClaims: directories is required')
  const directories = new Map(Object.entries(options.directories).map(([k, v]) => [k.toLowerCase(), v]))
  return defineClaimMapper<EntraClaims>('entra', (c) => {
    const tid = stringClaim(c.tid)?.toLowerCase()
    const iss = stringClaim(c.iss)?.toLowerCase()
    if (tid === undefined) return { subject: stringClaim(c.oid), tenants: [] }
    if (iss !== `https://login.microsoftonline.com/${tid}/v2.0` && iss !== `https://sts.windows.net/${tid}/`) return { refused: 'wrong_issuer' }
    const roles = stringList(c.roles)
    const scopes = stringList(c.scp)
    // An access token for an API carries delegated scopes or app roles; an ID token (same keys,
    // same issuer, and `aud` = the client id, which is the API's too when one app registration
    // is both) carries neither. Microsoft.Identity.Web refuses it the same way.
    if (roles.length === 0 && scopes.length === 0) return { refused: 'wrong_typ' }
    const tenant = directories.get(tid)
    return {
      subject: stringClaim(c.oid),
      tenants: tenant === undefined ? [] : [tenant],
      roles,
      scopes,
      principalType: c.idtyp === 'app' ? 'service' : 'user',
    }
  })
}
