import { defaultContextStore, type ContextStore } from '@idctx/core'

/** An invoice, owned by exactly one tenant. */
export interface Invoice {
  readonly invoiceId: string
  readonly orderId: string
  readonly tenant: string
  readonly item: string
  readonly qty: number
  readonly amount: number
  /** The transaction the order was placed in, and the (pseudonymous) user who placed it. */
  readonly txn: string
  readonly user: string
  readonly issuedAt: string
}

/** Why the store refused: no identity context at all, or one of another tenant. */
export type TenantAccessReason = 'no_context' | 'other_tenant' | 'tenant_field_mismatch'

/** A store call for a tenant the current identity context does not belong to. */
export class TenantAccessError extends Error {
  static readonly code = 'ERR_TENANT_ACCESS'
  readonly code = TenantAccessError.code
  override readonly name = 'TenantAccessError'
  constructor(readonly reason: TenantAccessReason) {
    super(
      reason === 'no_context'
        ? 'no identity context: tenant data is only reachable inside a verified context'
        : reason === 'other_tenant'
          ? 'the current identity context belongs to another tenant'
          : "the invoice's tenant field is not the tenant it is stored under",
    )
  }
}

/**
 * Invoices partitioned by tenant. Every call names the tenant it touches, and the store checks
 * it against the `tid` of the current identity context (the verified context a processor runs
 * in): code running for tenant A cannot read or write tenant B's invoices, even by mistake.
 */
export interface InvoiceStore {
  /** Stores an invoice; false when one with this id already existed (a redelivery). */
  put(tenant: string, invoice: Invoice): boolean
  get(tenant: string, invoiceId: string): Invoice | undefined
  list(tenant: string): readonly Invoice[]
  /** Number of invoices per tenant: counts only, no tenant data, for operators and the demo. */
  counts(): Readonly<Record<string, number>>
}

/**
 * Creates an in-process, tenant-scoped invoice store.
 *
 * @example
 * ```ts
 * const store = createInvoiceStore()
 * runWithContext({ sub: 'u-1', tid: 'acme', txn: 't-1' }, () => store.list('acme'))   // ok
 * runWithContext({ sub: 'u-1', tid: 'acme', txn: 't-1' }, () => store.list('globex')) // throws TenantAccessError
 * ```
 */
export function createInvoiceStore(options: { contextStore?: ContextStore } = {}): InvoiceStore {
  const contexts = options.contextStore ?? defaultContextStore
  const byTenant = new Map<string, Map<string, Invoice>>()
  const scope = (tenant: string): Map<string, Invoice> | undefined => {
    const current = contexts.current()
    if (current === undefined) throw new TenantAccessError('no_context')
    if (current.tid !== tenant) throw new TenantAccessError('other_tenant')
    return byTenant.get(tenant)
  }
  return {
    put(tenant, invoice) {
      const existing = scope(tenant)
      if (invoice.tenant !== tenant) throw new TenantAccessError('tenant_field_mismatch')
      const invoices = existing ?? new Map<string, Invoice>()
      byTenant.set(tenant, invoices)
      if (invoices.has(invoice.invoiceId)) return false
      invoices.set(invoice.invoiceId, Object.freeze({ ...invoice }))
      return true
    },
    get: (tenant, invoiceId) => scope(tenant)?.get(invoiceId),
    list: (tenant) => [...(scope(tenant)?.values() ?? [])],
    counts: () => Object.fromEntries([...byTenant].map(([tenant, invoices]) => [tenant, invoices.size])),
  }
}
