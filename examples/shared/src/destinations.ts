/**
 * The destination of the HTTP hop gateway → orders, as bound into the gateway's idctx token
 * (`messageLeaf(ORDERS_HTTP_DESTINATION, null, body)` covers the exact request body).
 */
export const ORDERS_HTTP_DESTINATION = 'http:orders/POST /orders'

/** Default names of the cluster's topics and queue (the demo uses unique ones per run). */
export const DEFAULT_NAMES = {
  ordersTopic: 'orders',
  priorityTopic: 'orders-priority',
  invoiceQueue: 'invoices',
  invoiceJob: 'invoice',
} as const

/** The dead-letter topic of a source topic (the `@idctx/kafkajs` default). */
export function deadLetterTopicOf(topic: string): string {
  return `${topic}.idctx-dlq`
}

/** The BullMQ job id of an order's invoice job: one job per order, so a redelivery adds none. */
export function invoiceJobId(orderId: string): string {
  return `inv-${orderId}`
}
