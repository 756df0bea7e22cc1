/**
 * @idctx/redis without a Redis: option checks, the keys and arguments the replay store sends, and
 * failures that become StoreError. Behaviour against a real Redis is in test/redis.
 */
import { describe, expect, it } from 'vitest'
import { ConfigError, StoreError } from '@idctx/core'
import { createRedisReplayStore, createRedisRevocationStore } from '@idctx/redis'
import type { Redis } from 'ioredis'

/**
 * A client that records each script call as { keys, args } (four args per key) and answers it
 * with `reply(call)`.
 */
function fakeClient(reply: (call: { keys: string[]; args: string[] }) => unknown, options: { isCluster?: boolean } = {}) {
  const sent: { keys: string[]; args: string[] }[] = []
  const call = async (_script: string, numKeys: number, ...params: string[]) => {
    const c = { keys: params.slice(0, numKeys), args: params.slice(numKeys) }
    sent.push(c)
    const r = reply(c)
    if (r instanceof Error) throw r
    return r
  }
  const client = { evalsha: call, eval: call, isCluster: options.isCluster === true }
  return { client: client as unknown as Redis, sent }
}
const codes = (n: number, code = 0) => Array.from({ length: n }, () => code)

describe('replay store', () => {
  it('keys carry the jti as a hash tag; a jti that is not plain base64url is hashed for it', async () => {
    const { client, sent } = fakeClient((c) => codes(c.keys.length))
    const store = createRedisReplayStore({ client, prefix: 'p:', clock: () => 1_000_000 })
    await store.checkMany([
      { jti: 'abc_DEF-1', index: 3, coordinates: 't/0/1', expiresAt: 1_060_000 },
      { jti: 'a{b}c', index: 0, coordinates: 't/0/2', expiresAt: 1_000_010, firstDelivery: true },
    ])
    // A single Redis: one script call for the batch.
    expect(sent).toHaveLength(1)
    const [call] = sent as [{ keys: string[]; args: string[] }]
    expect(call.keys[0]).toBe('p:{abc_DEF-1}:3')
    expect(call.keys[1]).toMatch(/^p:\{[A-Za-z0-9_-]{43}\}:0$/)
    // Coordinates, expiry (at least one second), first-delivery flag, nonce.
    expect(call.args.slice(0, 3)).toEqual(['t/0/1', '60000', '0'])
    expect(call.args.slice(4, 7)).toEqual(['t/0/2', '1000', '1'])
    // A 12-character nonce per check, different for each.
    const nonces = [call.args[3], call.args[7]]
    expect(nonces.every((n) => /^[A-Za-z0-9_-]{12}$/.test(n ?? ''))).toBe(true)
    expect(new Set(nonces).size).toBe(2)
  })

  it('a single Redis: calls of at most 1000 keys, in order; a cluster: one call per token, whatever the order', async () => {
    const e = (jti: string, index: number) => ({ jti, index, coordinates: `t/0/${jti}${index}`, expiresAt: Date.now() + 60_000 })
    const batch = Array.from({ length: 2500 }, (_, i) => e(`j${i % 3}`, i))
    const single = fakeClient((c) => codes(c.keys.length))
    expect(await createRedisReplayStore({ client: single.client }).checkMany(batch)).toEqual(codes(2500).map(() => 'first'))
    expect(single.sent.map((c) => c.keys.length)).toEqual([1000, 1000, 500])
    expect(single.sent.flatMap((c) => c.keys)).toEqual(batch.map((x) => `idctx:replay:{${x.jti}}:${x.index}`))
    // Per call, the verdicts map back to their entries.
    const cluster = fakeClient((c) => c.keys.map((k) => (k.includes('{j1}') ? 2 : 1)), { isCluster: true })
    const verdicts = await createRedisReplayStore({ client: cluster.client }).checkMany(batch.slice(0, 9))
    expect(verdicts).toEqual(batch.slice(0, 9).map((x) => (x.jti === 'j1' ? 'replay' : 'redelivery')))
    expect(cluster.sent.map((c) => new Set(c.keys.map((k) => /\{(j\d)\}/.exec(k)?.[1])).size)).toEqual([1, 1, 1])
  })

  it('verdicts in order; an error reply or an unknown answer is a StoreError, never a verdict', async () => {
    const ok = fakeClient((c) => c.keys.map((_, i) => i % 3))
    const e = (i: number) => ({ jti: 'j', index: i, coordinates: 'c', expiresAt: Date.now() + 60_000 })
    expect(await createRedisReplayStore({ client: ok.client }).checkMany([e(0), e(1), e(2)])).toEqual(['first', 'redelivery', 'replay'])
    expect(await createRedisReplayStore({ client: ok.client }).checkMany([])).toEqual([])
    const refused = fakeClient(() => new Error('OOM command not allowed'))
    await expect(createRedisReplayStore({ client: refused.client }).check(e(0))).rejects.toBeInstanceOf(StoreError)
    const odd = fakeClient(() => [7])
    await expect(createRedisReplayStore({ client: odd.client }).check(e(0))).rejects.toBeInstanceOf(StoreError)
    const short = fakeClient(() => [])
    await expect(createRedisReplayStore({ client: short.client }).check(e(0))).rejects.toBeInstanceOf(StoreError)
  })

  it('NOSCRIPT: exactly the calls that ran nothing are sent again with the script text', async () => {
    let calls = 0
    const { client, sent } = fakeClient((c) => (++calls === 1 ? new Error('NOSCRIPT No matching script') : codes(c.keys.length, 1)))
    const e = (i: number) => ({ jti: 'j', index: i, coordinates: 'c', expiresAt: Date.now() + 60_000 })
    expect(await createRedisReplayStore({ client }).checkMany([e(0), e(1)])).toEqual(['redelivery', 'redelivery'])
    expect(sent).toHaveLength(2)
    expect(sent[1]).toEqual(sent[0])
  })

  it('options are strict', () => {
    const { client } = fakeClient(() => [0])
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
