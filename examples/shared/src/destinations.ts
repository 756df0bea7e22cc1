/**
 * The producer ACL pattern of the HTTP hop gateway → orders. The gateway's token is bound to the
 * exact request (`httpLeaf`: `http:POST <authority>/orders`, the query and the body); the replicas
 * are reached under several authorities, so the pattern admits any authority of a POST.
 */
export const ORDERS_HTTP_ACL = 'http:POST *'

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
