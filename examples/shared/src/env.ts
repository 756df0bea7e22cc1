/** The environment the example services read — the same variables natively and in docker/. */
export interface ServiceEnv {
  readonly kafkaBrokers: string[]
  readonly redisUrl: string
  readonly audience: string
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): ServiceEnv {
  return {
    kafkaBrokers: (env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',').map((s) => s.trim()).filter(Boolean),
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    audience: env.IDCTX_AUDIENCE ?? 'shop',
  }
}

export function redisConnection(url: string): { host: string; port: number; maxRetriesPerRequest: null } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null }
}

/** An integer from the environment, or the fallback. */
export function intEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const v = env[name]
  return v === undefined || v === '' ? fallback : Number.parseInt(v, 10)
}
