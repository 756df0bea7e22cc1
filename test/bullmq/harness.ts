import { randomUUID } from 'node:crypto'
import {
  createSigner,
  createVerifier,
  generateKey,
  type IdctxObserver,
  type IdentityContext,
  type Signer,
  type SignerOptions,
  type Verifier,
  type VerifierOptions,
} from '@idctx/core'
import { FlowProducer, Queue, Worker, type ConnectionOptions, type Job, type JobState, type Processor, type WorkerOptions } from 'bullmq'
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

function connectionOptions(): ConnectionOptions {
  const u = new URL(REDIS_URL)
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    db,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
  }
}

/** A clock that tests move forward to simulate time, instead of waiting. */
export interface TestClock {
  offsetMs: number
  now(): number
}

export function testClock(offsetMs = 0): TestClock {
  const c: TestClock = { offsetMs, now: () => Date.now() + c.offsetMs }
  return c
}

export const AUDIENCE = 'shop'

/** Keys, signers and a verifier that trusts the `orders`, `billing` and `scheduler` issuers. */
export interface Fixture {
  readonly orders: Signer
  readonly billing: Signer
  readonly scheduler: Signer
  readonly signer: (issuer: 'orders' | 'billing' | 'scheduler', options?: Partial<SignerOptions>) => Signer
  readonly verifier: (options?: Partial<VerifierOptions>) => Verifier
}

export function fixture(): Fixture {
  const keys = {
    orders: generateKey('EdDSA', { kid: `orders-${randomUUID()}` }),
    billing: generateKey('EdDSA', { kid: `billing-${randomUUID()}` }),
    scheduler: generateKey('EdDSA', { kid: `scheduler-${randomUUID()}` }),
  }
  const signer = (issuer: keyof typeof keys, options: Partial<SignerOptions> = {}) =>
    createSigner({ issuer, audience: AUDIENCE, key: keys[issuer], ...options })
  return {
    orders: signer('orders'),
    billing: signer('billing'),
    scheduler: signer('scheduler'),
    signer,
    verifier: (options = {}) =>
      createVerifier({
        audience: AUDIENCE,
        issuers: { orders: [keys.orders], billing: [keys.billing], scheduler: [keys.scheduler] },
        ...options,
      }),
  }
}

export function userContext(overrides: Partial<IdentityContext> = {}): IdentityContext {
  return { sub: 'u-42', tid: 'acme', txn: randomUUID(), pty: 'user', roles: ['clerk'], ...overrides }
}

/** Records observer events by kind. */
export function recordingObserver(): IdctxObserver & { events: { kind: string; event: Record<string, unknown> }[] } {
  const events: { kind: string; event: Record<string, unknown> }[] = []
  const push = (kind: string) => (event: object) => {
    events.push({ kind, event: { ...event } })
  }
  return {
    events,
    onSigned: push('signed'),
    onVerified: push('verified'),
    onRejected: push('rejected'),
    onDisposition: push('disposition'),
  }
}

/**
 * Queues, workers and flow producers under a prefix unique to one test, all closed and every key
 * under the prefix deleted by `cleanup()`.
 */
export interface Harness {
  readonly prefix: string
  readonly connection: ConnectionOptions
  queue(name: string): Queue
  worker<D = any, R = any>(name: string, processor: Processor<D, R> | string, options?: Partial<WorkerOptions>): Worker<D, R>
  flowProducer(): FlowProducer
  redis(): Redis
  /** The Redis key of a job hash. */
  jobKey(queue: string, id: string): string
  cleanup(): Promise<void>
}

export function harness(): Harness {
  const prefix = `idctx-test-${randomUUID()}`
  const connection = connectionOptions()
  const queues: Queue[] = []
  const workers: Worker[] = []
  const flows: FlowProducer[] = []
  const clients: Redis[] = []
  return {
    prefix,
    connection,
    queue(name) {
      const q = new Queue(name, { connection, prefix })
      queues.push(q)
      return q
    },
    worker(name, processor, options = {}) {
      const w = new Worker(name, processor, { connection, prefix, ...options })
      workers.push(w as Worker)
      return w
    },
    flowProducer() {
      const f = new FlowProducer({ connection, prefix })
      flows.push(f)
      return f
    },
    redis() {
      const r = new Redis(REDIS_URL, { lazyConnect: false })
      clients.push(r)
      return r
    },
    jobKey: (queue, id) => `${prefix}:${queue}:${id}`,
    async cleanup() {
      await Promise.all(workers.map((w) => w.close(true)))
      await Promise.all(flows.map((f) => f.close()))
      for (const q of queues) {
        await q.obliterate({ force: true }).catch(() => {})
        await q.close()
      }
      const r = new Redis(REDIS_URL)
      let cursor = '0'
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
        if (keys.length > 0) await r.del(...keys)
        cursor = next
      } while (cursor !== '0')
      await r.quit()
      await Promise.all(clients.map((c) => c.quit()))
    },
  }
}

/** Polls until `fn` returns a value other than undefined; throws after `timeoutMs` (a hang guard, not an assertion). */
export async function eventually<T>(fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Waits until the job reaches a finished state and returns it fresh from Redis with that state. */
export async function finished(queue: Queue, id: string | undefined): Promise<{ job: Job; state: JobState | 'unknown' }> {
  if (id === undefined) throw new Error('job has no id')
  return eventually(async () => {
    const state = await queue.getJobState(id)
    if (state !== 'completed' && state !== 'failed') return undefined
    const job = await queue.getJob(id)
    return job === undefined ? undefined : { job, state }
  }, 20_000, `job ${id} to finish`)
}
