const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

/**
 * The W3C `traceparent` BullMQ's telemetry stored with a job (`opts.telemetry.metadata`, a JSON
 * carrier written by `bullmq-otel`), or undefined. Unverified: only handed to the observer.
 */
export function jobTraceparent(opts: { telemetry?: { metadata?: string } } | undefined): string | undefined {
  const metadata = opts?.telemetry?.metadata
  if (typeof metadata !== 'string' || metadata.length > 2048) return undefined
  let carrier: unknown
  try {
    carrier = JSON.parse(metadata)
  } catch {
    return undefined
  }
  const tp = carrier !== null && typeof carrier === 'object' ? (carrier as { traceparent?: unknown }).traceparent : undefined
  return typeof tp === 'string' && TRACEPARENT.test(tp) ? tp : undefined
}
