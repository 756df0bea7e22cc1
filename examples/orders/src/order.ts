/** What a client posts to `POST /orders` (through the gateway). */
export interface OrderRequest {
  readonly item: string
  readonly qty: number
  readonly amount: number
  /** Priority orders go to the priority topic. */
  readonly priority?: boolean
}

/** The value of an `orders` Kafka record (JSON). The tenant comes from the verified context. */
export interface OrderRecord {
  readonly orderId: string
  readonly tenant: string
  readonly item: string
  readonly qty: number
  readonly amount: number
}

/**
 * Parses an order request body; undefined when it is not a valid order.
 *
 * @example
 * ```ts
 * parseOrderRequest(Buffer.from('{"item":"widget","qty":2,"amount":19.9}')) // { item: 'widget', qty: 2, amount: 19.9 }
 * ```
 */
export function parseOrderRequest(body: Buffer): OrderRequest | undefined {
  let v: unknown
  try {
    v = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const { item, qty, amount, priority } = v as Record<string, unknown>
  if (typeof item !== 'string' || item.length === 0 || item.length > 100) return undefined
  if (typeof qty !== 'number' || !Number.isInteger(qty) || qty < 1 || qty > 1000) return undefined
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) return undefined
  if (priority !== undefined && typeof priority !== 'boolean') return undefined
  return { item, qty, amount, ...(priority === true ? { priority } : {}) }
}

/**
 * Parses an `orders` record value; undefined when it is not one.
 *
 * @example
 * ```ts
 * parseOrderRecord(message.value)?.tenant
 * ```
 */
export function parseOrderRecord(value: Buffer | string | null | undefined): OrderRecord | undefined {
  if (value === null || value === undefined) return undefined
  let v: unknown
  try {
    v = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const { orderId, tenant, item, qty, amount } = v as Record<string, unknown>
  if (typeof orderId !== 'string' || typeof tenant !== 'string' || typeof item !== 'string') return undefined
  if (typeof qty !== 'number' || typeof amount !== 'number') return undefined
  return { orderId, tenant, item, qty, amount }
}
