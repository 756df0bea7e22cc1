/**
 * Reading the environment of the example services. Every `main.ts` reads the same variables
 * natively and in docker/compose.yaml: KAFKA_BROKERS, REDIS_URL, PORT, HOST, IDP_URL,
 * GATEWAY_URL, ORDERS_URL, BILLING_URL, IDCTX_AUDIENCE, OTEL_EXPORTER_OTLP_ENDPOINT.
 */

/** The Kafka bootstrap servers of a comma-separated list (default the local test broker). */
export function kafkaBrokers(value: string | undefined): string[] {
  return (value ?? '127.0.0.1:39092')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}

/** BullMQ/ioredis connection options of a `redis://[user:password@]host:port[/db]` URL. */
export function redisConnection(url: string): {
  host: string
  port: number
  db: number
  username?: string
  password?: string
  maxRetriesPerRequest: null
} {
  const u = new URL(url)
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    // BullMQ workers block on Redis; ioredis must not give up on those commands.
    maxRetriesPerRequest: null,
  }
}

/** An integer from the environment, or the fallback. */
export function intEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const v = env[name]
  if (v === undefined || v === '') return fallback
  const n = Number.parseInt(v, 10)
  if (!Number.isSafeInteger(n)) throw new TypeError(`${name} must be an integer`)
  return n
}
