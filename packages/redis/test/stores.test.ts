/**
 * @idctx/redis without a Redis: option checks, the keys and arguments the replay store sends, and
 * failures that become StoreError. Behaviour against a real Redis is in test/redis.
 */
import { describe, expect, it } from 'vitest'
import { ConfigError, StoreError } from '@idctx/core'
import { createRedisReplayStore, createRedisRevocationStore } from '@idctx/redis'
import type { Redis } from 'ioredis'

/** A client whose pipeline records the commands and answers each with `reply`. */
function fakeClient(reply: (args: readonly unknown[]) => [Error | null, unknown]) {
  const sent: unknown[][] = []
  const client = {
    evalsha: () => Promise.reject(new Error('not used')),
    eval: () => Promise.reject(new Error('not used')),
    pipeline() {
      const calls: unknown[][] = []
      const p = {
        evalsha: (...args: unknown[]) => (calls.push(['evalsha', ...args]), p),
        eval: (...args: unknown[]) => (calls.push(['eval', ...args]), p),
        exec: async () => (sent.push(...calls), calls.map(reply)),
      }
      return p
    },
  }
  return { client: client as unknown as Redis, sent }
}

describe('replay store', () => {
  it('keys carry the jti as a hash tag; a jti that is not plain base64url is hashed for it', async () => {
    const { client, sent } = fakeClient(() => [null, 0])
    const store = createRedisReplayStore({ client, prefix: 'p:', clock: () => 1_000_000 })
    await store.checkMany([
      { jti: 'abc_DEF-1', index: 3, coordinates: 't/0/1', expiresAt: 1_060_000 },
      { jti: 'a{b}c', index: 0, coordinates: 't/0/2', expiresAt: 1_000_010, firstDelivery: true },
    ])
    expect(sent[0]?.slice(2, 7)).toEqual([1, 'p:{abc_DEF-1}:3', 't/0/1', '60000', '0'])
    const hashed = sent[1]?.[3] as string
    expect(hashed).toMatch(/^p:\{[A-Za-z0-9_-]{43}\}:0$/)
    // Expiry at least one second; the first-delivery flag.
    expect(sent[1]?.slice(5, 7)).toEqual(['1000', '1'])
    // A 12-character nonce per check, different for each.
    const nonces = sent.map((c) => c[7] as string)
    expect(nonces.every((n) => /^[A-Za-z0-9_-]{12}$/.test(n))).toBe(true)
    expect(new Set(nonces).size).toBe(2)
  })

  it('verdicts in order; an error reply or an unknown answer is a StoreError, never a verdict', async () => {
    let answer = 0
    const ok = fakeClient(() => [null, answer++ % 3])
    const e = (i: number) => ({ jti: 'j', index: i, coordinates: 'c', expiresAt: Date.now() + 60_000 })
    expect(await createRedisReplayStore({ client: ok.client }).checkMany([e(0), e(1), e(2)])).toEqual(['first', 'redelivery', 'replay'])
    expect(await createRedisReplayStore({ client: ok.client }).checkMany([])).toEqual([])
    const refused = fakeClient(() => [new Error('OOM command not allowed'), null])
    await expect(createRedisReplayStore({ client: refused.client }).check(e(0))).rejects.toBeInstanceOf(StoreError)
    const odd = fakeClient(() => [null, 7])
    await expect(createRedisReplayStore({ client: odd.client }).check(e(0))).rejects.toBeInstanceOf(StoreError)
  })

  it('options are strict', () => {
    const { client } = fakeClient(() => [null, 0])
    expect(() => createRedisReplayStore({ client, prefix: '' })).toThrow(ConfigError)
    expect(() => createRedisReplayStore({ client, ttl: 5 } as never)).toThrow(ConfigError)
  })
})

describe('revocation store', () => {
  it('options are strict', () => {
    const client = { hgetall: () => Promise.resolve({}), duplicate: () => client } as unknown as Redis
    expect(() => createRedisRevocationStore({ client, maxStalenessMs: 10 })).toThrow(ConfigError)
    expect(() => createRedisRevocationStore({ client, resyncIntervalMs: Number.NaN })).toThrow(ConfigError)
    expect(() => createRedisRevocationStore({ client, stale: 1 } as never)).toThrow(ConfigError)
  })
})
