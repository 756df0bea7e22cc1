/**
 * @idctx/redis against the real Redis: the replay store's verdicts (one round trip per batch), a
 * deny-list change reaching every instance, and failures that throw (retry) instead of deciding.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { ConfigError, StoreError, type ReplayEntry } from '@idctx/core'
import { createRedisReplayStore, createRedisRevocationStore, type RedisRevocationStore } from '@idctx/redis'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const clients: Redis[] = []
const stores: RedisRevocationStore[] = []
const redis = () => {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  clients.push(r)
  return r
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const c of clients.splice(0)) c.disconnect()
})

/** The Redis client id of the connection with this name. */
async function subscriberId(admin: Redis, name: string): Promise<number> {
  const line = String(await admin.client('LIST')).split('\n').find((l) => l.includes(` name=${name} `))
  const id = line === undefined ? undefined : /id=(\d+)/.exec(line)?.[1]
  if (id === undefined) throw new Error('the subscriber connection is not listed')
  return Number(id)
}

const entry = (jti: string, index: number, coordinates: string, extra: Partial<ReplayEntry> = {}): ReplayEntry => ({
  jti,
  index,
  coordinates,
  expiresAt: Date.now() + 60_000,
  ...extra,
})

describe('Redis replay store', () => {
  it('first, redelivery and replay, shared by two store instances (two consumers)', async () => {
    const prefix = `test:${randomUUID()}:`
    const a = createRedisReplayStore({ client: redis(), prefix })
    const b = createRedisReplayStore({ client: redis(), prefix })
    const jti = randomUUID()
    expect(await a.check(entry(jti, 0, 'orders/0/1'))).toBe('first')
    expect(await b.check(entry(jti, 0, 'orders/0/1'))).toBe('redelivery')
    expect(await b.check(entry(jti, 0, 'orders/1/7'))).toBe('replay')
    expect(await b.check(entry(jti, 2, 'orders/1/8'))).toBe('first')
    expect(await a.check(entry(jti, 0, 'orders/0/1', { firstDelivery: true }))).toBe('replay')
  })

  it('checkMany answers in order in one round trip; a later copy in the batch is a replay', async () => {
    const prefix = `test:${randomUUID()}:`
    const client = redis()
    const store = createRedisReplayStore({ client, prefix })
    const jti = randomUUID()
    let calls = 0
    for (const name of ['evalsha', 'eval'] as const) {
      const original = client[name].bind(client) as (...a: unknown[]) => Promise<unknown>
      ;(client as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => (calls++, original(...args))
    }
    const verdicts = await store.checkMany([entry(jti, 2, 'o/0/1'), entry(jti, 3, 'o/0/2'), entry(jti, 2, 'o/0/3'), entry(jti, 3, 'o/0/2')])
    expect(verdicts).toEqual(['first', 'first', 'replay', 'redelivery'])
    // One script call, plus one more only if Redis did not know the script yet.
    expect(calls).toBeGreaterThanOrEqual(1)
    expect(calls).toBeLessThanOrEqual(2)
    calls = 0
    expect(await store.checkMany([entry(jti, 4, 'o/0/5'), entry(jti, 5, 'o/0/6')])).toEqual(['first', 'first'])
    expect(calls).toBe(1)
  })

  it('one hash per token, a field per message, expiring with the token; never shortened', async () => {
    const prefix = `test:${randomUUID()}:`
    const client = redis()
    const store = createRedisReplayStore({ client, prefix })
    await store.checkMany([entry('jti-1', 5, 'o/0/1', { expiresAt: Date.now() + 5_000 }), entry('jti-1', 6, 'o/0/2', { expiresAt: Date.now() + 5_000 })])
    const keys = await client.keys(`${prefix}*`)
    expect(keys).toEqual([`${prefix}{jti-1}`])
    expect((await client.hkeys(keys[0] as string)).sort()).toEqual(['5', '6'])
    const ttl = await client.pttl(keys[0] as string)
    expect(ttl).toBeGreaterThan(3_000)
    expect(ttl).toBeLessThanOrEqual(5_000)
    // A verifier with more grace raises the expiry; one with less never shortens it.
    await store.check(entry('jti-1', 7, 'o/0/3', { expiresAt: Date.now() + 20_000 }))
    expect(await client.pttl(keys[0] as string)).toBeGreaterThan(15_000)
    await store.check(entry('jti-1', 8, 'o/0/4', { expiresAt: Date.now() + 2_000 }))
    expect(await client.pttl(keys[0] as string)).toBeGreaterThan(15_000)
    // Another token's entries live in a hash of their own.
    await store.check(entry('jti-2', 5, 'o/0/1'))
    expect((await client.keys(`${prefix}*`)).sort()).toEqual([`${prefix}{jti-1}`, `${prefix}{jti-2}`])
  })

  it('a script cache flush (a restarted Redis) is recovered without a wrong verdict', async () => {
    const prefix = `test:${randomUUID()}:`
    const client = redis()
    const store = createRedisReplayStore({ client, prefix })
    expect(await store.check(entry('j', 0, 'a'))).toBe('first')
    await client.script('FLUSH')
    expect(await store.checkMany([entry('j', 0, 'a'), entry('j', 0, 'b')])).toEqual(['redelivery', 'replay'])
  })

  it('Redis unreachable: a StoreError (retry), never a verdict', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
    clients.push(down)
    const store = createRedisReplayStore({ client: down })
    await expect(store.check(entry('j', 0, 'a'))).rejects.toBeInstanceOf(StoreError)
  })

  it('options are strict', () => {
    expect(() => createRedisReplayStore({ client: redis(), prefx: 'x' } as never)).toThrow(ConfigError)
    expect(() => createRedisReplayStore({ client: {} as never })).toThrow(ConfigError)
  })
})

describe('Redis revocation store', () => {
  const make = (prefix: string, extra: object = {}) => {
    const s = createRedisRevocationStore({ client: redis(), prefix, ...extra })
    stores.push(s)
    return s
  }
  const ids = { kid: 'k1', jti: 'j1', txn: 't1', sub: 's1', tid: 'acme' }

  it('a revocation on one instance is enforced by all, within milliseconds', async () => {
    const prefix = `test:${randomUUID()}`
    const a = make(prefix)
    const b = make(prefix)
    await Promise.all([a.ready(), b.ready()])
    expect(b.isRevoked(ids)).toBe(false)
    const started = performance.now()
    await a.revoke('kid', 'k1')
    expect(a.isRevoked(ids)).toBe(true)
    while (!b.isRevoked(ids)) {
      if (performance.now() - started > 2_000) throw new Error('the revocation did not reach the other instance')
      await new Promise((r) => setTimeout(r, 1))
    }
    await a.unrevoke('kid', 'k1')
    while (b.isRevoked(ids)) {
      if (performance.now() - started > 4_000) throw new Error('the unrevocation did not reach the other instance')
      await new Promise((r) => setTimeout(r, 1))
    }
    expect(a.isRevoked(ids)).toBe(false)
  })

  it('a new instance loads existing entries; expired ones do not count', async () => {
    const prefix = `test:${randomUUID()}`
    const a = make(prefix)
    await a.ready()
    await a.revoke('sub', 's1')
    await a.revoke('tid', 'acme', Date.now() - 1)
    const c = make(prefix)
    await c.ready()
    expect(c.isRevoked({ ...ids, sub: 'other' })).toBe(false)
    expect(c.isRevoked(ids)).toBe(true)
    expect(c.size).toBe(1)
  })

  it('before the first sync, and after losing Redis for longer than maxStalenessMs, isRevoked throws', async () => {
    const prefix = `test:${randomUUID()}`
    // A subscriber that reconnects only after 800 ms: out of touch for longer than the 200 ms bound.
    const name = `idctx-test-${randomUUID()}`
    const subscriber = new Redis(REDIS_URL, { retryStrategy: () => 800, connectionName: name })
    clients.push(subscriber)
    const s = make(prefix, { maxStalenessMs: 200, subscriber })
    expect(() => s.isRevoked(ids)).toThrow(StoreError)
    await s.ready()
    expect(s.isRevoked(ids)).toBe(false)
    const admin = redis()
    // Kill the subscriber's connection from the server side.
    expect(Number(await admin.call('CLIENT', 'KILL', 'ID', String(await subscriberId(admin, name))))).toBe(1)
    const started = Date.now()
    let threw = false
    while (Date.now() - started < 5_000) {
      try {
        s.isRevoked(ids)
        if (threw) break
      } catch (e) {
        expect(e).toBeInstanceOf(StoreError)
        threw = true
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(threw).toBe(true)
    // Reconnected and resynced by itself: answers again.
    expect(s.isRevoked(ids)).toBe(false)
  })

  it('revoke refuses bad input', async () => {
    const s = make(`test:${randomUUID()}`)
    await s.ready()
    await expect(s.revoke('email' as never, 'x')).rejects.toThrow(TypeError)
    await expect(s.revoke('jti', '')).rejects.toThrow(TypeError)
    await expect(s.revoke('jti', 'x', Number.NaN)).rejects.toThrow(TypeError)
  })
})
