import type { TokenShape } from '@idctx/example-identity-provider'
import type { Cluster } from './cluster.js'

/** A user of one tenant, logged in through one provider's token shape. */
export interface Customer {
  readonly tenant: string
  readonly shape: TokenShape
  /** Pseudonymous user id, as the provider puts it in `sub`. */
  readonly user: string
  readonly roles: readonly string[]
}

/** The two tenants of the demo: acme signs in with Keycloak, globex with Auth0 (Organizations). */
export const CUSTOMERS: readonly Customer[] = [
  { tenant: 'acme', shape: 'keycloak', user: 'f3a1c2d4-7d2f-4b1e-9c55-1f0e8a2b6c11', roles: ['buyer'] },
  { tenant: 'globex', shape: 'auth0', user: 'auth0|65f1c0de9a3b', roles: ['purchaser'] },
]

/** One order the traffic placed, and what the gateway answered. */
export interface PlacedOrder {
  readonly tenant: string
  readonly user: string
  readonly item: string
  readonly amount: number
  readonly priority: boolean
  readonly status: number
  readonly orderId: string | undefined
  /** The transaction the gateway opened for it (`x-idctx-txn`), carried to the invoice. */
  readonly txn: string | undefined
  /** The request's trace (`x-trace-id`). */
  readonly traceId: string | undefined
}

const ITEMS = ['widget', 'gadget', 'sprocket', 'gizmo', 'doohickey']

/**
 * Places `count` orders through the gateway, alternating the customers, a few at a time; every
 * fourth order is a priority order (another topic).
 */
export async function driveTraffic(
  cluster: Cluster,
  count: number,
  onProgress: (done: number) => void = () => {},
): Promise<PlacedOrder[]> {
  const tokens = await Promise.all(
    CUSTOMERS.map((c) => cluster.idp.issue({ shape: c.shape, user: c.user, tenant: c.tenant, roles: c.roles })),
  )
  const placed: PlacedOrder[] = []
  const place = async (i: number): Promise<PlacedOrder> => {
    const c = i % CUSTOMERS.length
    const customer = CUSTOMERS[c] as Customer
    const body = { item: ITEMS[i % ITEMS.length] as string, qty: 1 + (i % 3), amount: 12.5 * (i + 1), priority: i % 4 === 3 }
    const res = await fetch(new URL('/orders', cluster.gateway.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[c] as string}` },
      body: JSON.stringify(body),
    })
    const answer = (await res.json()) as { orderId?: unknown }
    return {
      tenant: customer.tenant,
      user: customer.user,
      item: body.item,
      amount: body.amount,
      priority: body.priority,
      status: res.status,
      orderId: typeof answer.orderId === 'string' ? answer.orderId : undefined,
      txn: res.headers.get('x-idctx-txn') ?? undefined,
      traceId: res.headers.get('x-trace-id') ?? undefined,
    }
  }
  const parallel = 4
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, (_, j) => place(i + j))
    placed.push(...(await Promise.all(batch)))
    onProgress(placed.length)
  }
  return placed
}
