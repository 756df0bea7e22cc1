/** The child side of children.ts: configuration, reports to the parent, and stop requests. */
import { Cluster, Redis } from 'ioredis'

/** Where a child's Redis is: one server, or the seed nodes of a cluster. */
export type RedisTarget = { readonly url: string } | { readonly cluster: readonly { host: string; port: number }[] }

/**
 * An ioredis client for the target. Commands fail fast while Redis is unreachable (one retry per
 * request), so the stores throw and the adapters retry instead of waiting in ioredis's queue.
 */
export function redisClient(target: RedisTarget): Redis | Cluster {
  if ('url' in target) return new Redis(target.url, { maxRetriesPerRequest: 1 })
  return new Cluster([...target.cluster], { redisOptions: { maxRetriesPerRequest: 1 }, maxRedirections: 16 })
}

export function config<T>(): T {
  const raw = process.env.IDCTX_INSTANCE
  if (raw === undefined) throw new Error('IDCTX_INSTANCE is not set: start this script with children.ts')
  return JSON.parse(raw) as T
}

export const name = process.env.IDCTX_INSTANCE_NAME ?? 'instance'

/** Sends a message to the parent; resolves once it is written to the channel. */
export function report(message: object): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined || !process.connected) return resolve()
    process.send(message, undefined, {}, (e) => (e ? reject(e) : resolve()))
  })
}

/** Runs `fn` for every message from the parent. */
export function onParentMessage(fn: (m: { type: string } & Record<string, unknown>) => void): void {
  process.on('message', (m) => fn(m as { type: string } & Record<string, unknown>))
}

/** Runs `cleanup` and exits on `{ type: 'stop' }`; exits at once when the parent is gone. */
export function onStop(cleanup: () => Promise<void>): void {
  let stopping = false
  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    const timer = setTimeout(() => process.exit(code), 4_000)
    timer.unref()
    await cleanup().catch(() => undefined)
    process.exit(code)
  }
  onParentMessage((m) => {
    if (m.type === 'stop') void stop(0)
  })
  process.on('disconnect', () => void stop(0))
}

/** Reports a fatal error to the parent and exits. */
export async function fail(e: unknown): Promise<void> {
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
  process.stderr.write(`[${name}] ${message}\n`)
  await report({ type: 'fatal', message }).catch(() => undefined)
  process.exit(1)
}
