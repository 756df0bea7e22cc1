/**
 * What one producer may publish: destination patterns and tenants.
 *
 * @example
 * ```ts
 * const grant: ProducerGrant = { destinations: ['kafka:orders', 'bullmq:invoices/*'], tenants: ['acme', 'globex'] }
 * const verifier = createVerifier({ audience: 'shop', issuers, producerAcl: { orders: grant } })
 * ```
 */
export interface ProducerGrant {
  /** Exact destinations or prefixes ending in `*`, e.g. `kafka:orders`, `bullmq:invoices/*`. */
  readonly destinations: readonly string[]
  /** Tenants it may publish for; `'*'` for any (the default). */
  readonly tenants?: readonly string[] | '*' | undefined
}

/**
 * Producer ACL: issuer → grant. An issuer that is not listed may publish nothing.
 *
 * @example
 * ```ts
 * const producerAcl: ProducerAcl = {
 *   orders: { destinations: ['kafka:orders'] },
 *   billing: { destinations: ['bullmq:invoices/*'], tenants: ['acme'] },
 * }
 * const verifier = createVerifier({ audience: 'shop', issuers, producerAcl })
 * ```
 */
export type ProducerAcl = Readonly<Record<string, ProducerGrant>>

/**
 * Required scopes and roles (all of each list must be present).
 *
 * @example
 * ```ts
 * const requirements: Requirements = { scopes: ['orders:write'], roles: ['clerk'] }
 * const verifier = createVerifier({ audience: 'shop', issuers, requirements })
 * ```
 */
export interface Requirements {
  /** Scopes the token's space-separated `scope` claim must all contain. */
  readonly scopes?: readonly string[] | undefined
  /** Roles the token's `roles` claim must all contain. */
  readonly roles?: readonly string[] | undefined
}

function matches(pattern: string, value: string): boolean {
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : pattern === value
}

/**
 * Whether the ACL lets `issuer` publish to `destination` for `tenant`.
 *
 * @example
 * ```ts
 * isProducerAllowed({ orders: { destinations: ['kafka:orders'] } }, 'orders', 'kafka:orders', 'acme') // true
 * ```
 */
export function isProducerAllowed(acl: ProducerAcl, issuer: string, destination: string, tenant: string): boolean {
  const grant = Object.prototype.hasOwnProperty.call(acl, issuer) ? acl[issuer] : undefined
  if (grant === undefined) return false
  if (!grant.destinations.some((p) => matches(p, destination))) return false
  const tenants = grant.tenants ?? '*'
  return tenants === '*' || tenants.includes(tenant)
}

/**
 * Whether a token's space-delimited `scope` and `roles` satisfy the requirements.
 *
 * @example
 * ```ts
 * meetsRequirements({ scopes: ['orders:write'] }, 'orders:read orders:write', undefined) // true
 * ```
 */
export function meetsRequirements(
  req: Requirements | undefined,
  scope: string | undefined,
  roles: readonly string[] | undefined,
): boolean {
  if (req === undefined) return true
  if (req.scopes !== undefined && req.scopes.length > 0) {
    const have = new Set((scope ?? '').split(' ').filter(Boolean))
    if (!req.scopes.every((s) => have.has(s))) return false
  }
  if (req.roles !== undefined && req.roles.length > 0) {
    const have = new Set(roles ?? [])
    if (!req.roles.every((r) => have.has(r))) return false
  }
  return true
}
