import { describe, expect, it } from 'vitest'
import { createContextStore, runWithContext, type IdentityContext } from '@idctx/core'
import { createInvoiceStore, TenantAccessError, type Invoice } from '@idctx/example-invoice-worker/store'

const acme: IdentityContext = { sub: 'u-7d2f', tid: 'acme', txn: 'txn-a' }
const globex: IdentityContext = { sub: 'u-91c0', tid: 'globex', txn: 'txn-g' }

function invoice(tenant: string, n: number): Invoice {
  return { invoiceId: `inv-${tenant}-${n}`, orderId: `o-${n}`, tenant, item: 'widget', qty: 1, amount: 10 * n, txn: `txn-${n}`, user: 'u-1', issuedAt: '2026-01-01T00:00:00.000Z' }
}

function refusal(fn: () => unknown): TenantAccessError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(TenantAccessError)
    return e as TenantAccessError
  }
  throw new Error('the store did not refuse')
}

describe('tenant-scoped invoice store', () => {
  it('stores and reads a tenant’s invoices inside that tenant’s context', () => {
    const store = createInvoiceStore()
    runWithContext(acme, () => {
      expect(store.put('acme', invoice('acme', 1))).toBe(true)
      expect(store.put('acme', invoice('acme', 2))).toBe(true)
      expect(store.get('acme', 'inv-acme-1')?.amount).toBe(10)
      expect(store.list('acme').map((i) => i.invoiceId)).toEqual(['inv-acme-1', 'inv-acme-2'])
    })
    runWithContext(globex, () => {
      store.put('globex', invoice('globex', 7))
      expect(store.list('globex')).toHaveLength(1)
    })
    expect(store.counts()).toEqual({ acme: 2, globex: 1 })
  })

  it('refuses every call for another tenant than the context’s, reads and writes alike', () => {
    const store = createInvoiceStore()
    runWithContext(globex, () => store.put('globex', invoice('globex', 1)))
    runWithContext(acme, () => {
      expect(refusal(() => store.get('globex', 'inv-globex-1')).reason).toBe('other_tenant')
      expect(refusal(() => store.list('globex')).reason).toBe('other_tenant')
      expect(refusal(() => store.put('globex', invoice('globex', 2))).reason).toBe('other_tenant')
    })
    expect(store.counts()).toEqual({ globex: 1 })
  })

  it('refuses every call made outside any identity context', () => {
    const store = createInvoiceStore()
    const e = refusal(() => store.list('acme'))
    expect(e.reason).toBe('no_context')
    expect(e.code).toBe('ERR_TENANT_ACCESS')
    expect(refusal(() => store.put('acme', invoice('acme', 1))).reason).toBe('no_context')
  })

  it('refuses an invoice whose own tenant field names another tenant', () => {
    const store = createInvoiceStore()
    runWithContext(acme, () => {
      expect(refusal(() => store.put('acme', invoice('globex', 1))).reason).toBe('tenant_field_mismatch')
    })
    expect(store.counts()).toEqual({})
  })

  it('keeps the first write of an invoice id (a redelivered job adds nothing) and hands out frozen copies', () => {
    const store = createInvoiceStore()
    runWithContext(acme, () => {
      expect(store.put('acme', invoice('acme', 1))).toBe(true)
      expect(store.put('acme', { ...invoice('acme', 1), amount: 999 })).toBe(false)
      const stored = store.get('acme', 'inv-acme-1')
      expect(stored?.amount).toBe(10)
      expect(Object.isFrozen(stored)).toBe(true)
    })
  })

  it('follows the context store it is given, not the default one', () => {
    const contexts = createContextStore()
    const store = createInvoiceStore({ contextStore: contexts })
    // A context in the default store means nothing to this store.
    runWithContext(acme, () => expect(refusal(() => store.list('acme')).reason).toBe('no_context'))
    contexts.run(acme, () => expect(store.list('acme')).toEqual([]))
  })

  it('error messages name no tenant', () => {
    const store = createInvoiceStore()
    const e = runWithContext(acme, () => refusal(() => store.list('globex')))
    expect(e.message).not.toMatch(/acme|globex/)
  })
})
