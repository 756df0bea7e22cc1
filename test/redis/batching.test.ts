/**
 * The Redis replay store answers a fetched batch with few script calls (up to 1000 keys each on a
 * single Redis), all sent at once, with the verdicts `check` would give one entry after another —
 * across call boundaries too.
 */
import { randomUUID } from 'node:crypto'
import type { ReplayEntry } from '@idctx/core'
import { createRedisReplayStore } from '@idctx/redis'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
afterAll(() => client.disconnect())

/** The shared client, counting the script calls made through it. */
function counting(): { client: Redis; calls: { n: number } } {
  const calls = { n: 0 }
  const counted = new Proxy(client, {
    get(target, p, receiver) {
      const v = Reflect.get(target, p, receiver) as unknown
      if ((p === 'evalsha' || p === 'eval') && typeof v === 'function') {
        return (...args: unknown[]) => (calls.n++, (v as (...a: unknown[]) => unknown).apply(target, args))
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  return { client: counted, calls }
}

describe('Redis replay store: batches', () => {
  it('checks issued in one event-loop turn share one script call, with the verdicts of one check after another', async () => {
    const { client: counted, calls } = counting()
    const store = createRedisReplayStore({ client: counted, prefix: `test:${randomUUID()}:` })
    const at = (jti: string, index: number, coordinates: string, firstDelivery = false): ReplayEntry => ({ jti, index, coordinates, expiresAt: Date.now() + 60_000, firstDelivery })
    await store.check(at('warm', 0, 'w')) // the script is cached from here on
    calls.n = 0
    // 50 jobs of 50 tokens, as a worker at concurrency 50 starts them; plus a copy of job 3 and a
    // redelivery of job 4, issued after them in the same turn.
    const jobs = Array.from({ length: 50 }, (_, i) => at(`t-${i}-${randomUUID()}`, 0, `q/${i}`, true))
    const pending = jobs.map((e) => store.check(e))
    const copy = store.check({ ...(jobs[3] as ReplayEntry), coordinates: 'q/copy', firstDelivery: true })
    const again = store.check({ ...(jobs[4] as ReplayEntry), firstDelivery: false })
    expect(await Promise.all(pending)).toEqual(jobs.map(() => 'first'))
    expect(await copy).toBe('replay')
    expect(await again).toBe('redelivery')
    expect(calls.n).toBe(1)
    // Checks of later turns are calls of their own.
    expect(await store.check(at('later', 0, 'q/x'))).toBe('first')
    expect(await store.check(at('later', 0, 'q/y'))).toBe('replay')
    expect(calls.n).toBe(3)
  })

  it('2500 checks in 3 script calls; a copy or a redelivery in a later call sees the first', async () => {
    let calls = 0
    const counted = new Proxy(client, {
      get(target, p, receiver) {
        const v = Reflect.get(target, p, receiver) as unknown
        if ((p === 'evalsha' || p === 'eval') && typeof v === 'function') {
          return (...args: unknown[]) => (calls++, (v as (...a: unknown[]) => unknown).apply(target, args))
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    const store = createRedisReplayStore({ client: counted, prefix: `test:${randomUUID()}:` })
    const jti = randomUUID()
    const at = (index: number, coordinates: string, firstDelivery = false): ReplayEntry => ({ jti, index, coordinates, expiresAt: Date.now() + 60_000, firstDelivery })
    // Warm the script cache, so the batch below is not sent twice.
    await store.check(at(100_000, 'warm'))
    calls = 0
    const batch = Array.from({ length: 2500 }, (_, i) => at(i, `t/0/${i}`))
    batch[1500] = at(5, 't/1/99') // a copy of #5, in the second call
    batch[2400] = at(7, 't/0/7') // #7 again at its own coordinates, in the third call
    batch[2401] = at(8, 't/0/8', true) // #8 again, but said to be a first delivery
    const verdicts = await store.checkMany(batch)
    expect(calls).toBe(3)
    expect(verdicts[1500]).toBe('replay')
    expect(verdicts[2400]).toBe('redelivery')
    expect(verdicts[2401]).toBe('replay')
    expect(verdicts.filter((v) => v === 'first')).toHaveLength(2497)
    // The same batch again, as after a rebalance: redeliveries, and the copies still replays.
    const again = await store.checkMany(batch)
    expect(again.filter((v) => v === 'redelivery')).toHaveLength(2498)
    expect(again[1500]).toBe('replay')
    expect(again[2401]).toBe('replay')
  })
})
