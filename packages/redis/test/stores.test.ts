/**
 * @idctx/redis without a Redis: option checks, the keys and arguments the replay store sends, and
 * failures that become StoreError. Behaviour against a real Redis is in test/redis.
 */
import { describe, expect, it } from 'vitest'
import { ConfigError, StoreError } from '@idctx/core'
import { createRedisReplayStore, createRedisRevocationStore } from '@idctx/redis'
import type { Redis } from 'ioredis'

/**
 * A client that records each script call as { keys, args } (keys: the distinct token hashes of
 * the call; args: five per entry — key number, field, coordinates, first-delivery flag, nonce —
 * then one expiry per key) and answers it with `reply(call)`.
 */
function fakeClient(reply: (call: { keys: string[]; args: string[]; entries: number }) => unknown, options: { isCluster?: boolean } = {}) {
  const sent: { keys: string[]; args: string[]; entries: number }[] = []
  const call = async (_script: string, numKeys: number, ...params: string[]) => {
    const keys = params.slice(0, numKeys)
    const args = params.slice(numKeys)
    const c = { keys, args, entries: (args.length - keys.length) / 5 }
    sent.push(c)
    const r = reply(c)
    if (r instanceof Error) throw r
    return r
  }
  const client = { evalsha: call, eval: call, isCluster: options.isCluster === true }
  return { client: client as unknown as Redis, sent }
}
const codes = (n: number, code = 0) => Array.from({ length: n }, () => code)
/** The (key, field) pairs a call checks, in order. */
const pairsOf = (c: { keys: string[]; args: string[]; entries: number }) =>
  Array.from({ length: c.entries }, (_, i) => `${c.keys[Number(c.args[i * 5]) - 1]}#${c.args[i * 5 + 1]}`)

describe('replay store', () => {
  it('one hash per token with the jti as hash tag (hashed when not plain base64url), one field per message', async () => {
    const { client, sent } = fakeClient((c) => codes(c.entries))
    const store = createRedisReplayStore({ client, prefix: 'p:', clock: () => 1_000_000 })
    await store.checkMany([
      { jti: 'abc_DEF-1', index: 3, coordinates: 't/0/1', expiresAt: 1_060_000 },
      { jti: 'a{b}c', index: 0, coordinates: 't/0/2', expiresAt: 1_000_010, firstDelivery: true },
      { jti: 'abc_DEF-1', index: 4, coordinates: 't/0/3', expiresAt: 1_070_000 },
    ])
    // A single Redis: one script call for the batch, one key per token.
    expect(sent).toHaveLength(1)
    const [call] = sent as [{ keys: string[]; args: string[]; entries: number }]
    expect(call.keys).toHaveLength(2)
    expect(call.keys[0]).toBe('p:{abc_DEF-1}')
    expect(call.keys[1]).toMatch(/^p:\{[A-Za-z0-9_-]{43}\}$/)
    // Per entry: key number, field (the position), coordinates, first-delivery flag, nonce.
    expect(call.args.slice(0, 4)).toEqual(['1', '3', 't/0/1', '0'])
    expect(call.args.slice(5, 9)).toEqual(['2', '0', 't/0/2', '1'])
    expect(call.args.slice(10, 14)).toEqual(['1', '4', 't/0/3', '0'])
    // Then one expiry per key: the latest of its entries, at least one second.
    expect(call.args.slice(15)).toEqual(['70000', '1000'])
    // A 12-character nonce per check, different for each.
    const nonces = [call.args[4], call.args[9], call.args[14]]
    expect(nonces.every((n) => /^[A-Za-z0-9_-]{12}$/.test(n ?? ''))).toBe(true)
    expect(new Set(nonces).size).toBe(3)
  })

  it('a single Redis: calls of at most 1000 entries, in order; a cluster: one call per token, whatever the order', async () => {
    const e = (jti: string, index: number) => ({ jti, index, coordinates: `t/0/${jti}${index}`, expiresAt: Date.now() + 60_000 })
    const batch = Array.from({ length: 2500 }, (_, i) => e(`j${i % 3}`, i))
    const single = fakeClient((c) => codes(c.entries))
    expect(await createRedisReplayStore({ client: single.client }).checkMany(batch)).toEqual(codes(2500).map(() => 'first'))
    expect(single.sent.map((c) => c.entries)).toEqual([1000, 1000, 500])
    expect(single.sent.flatMap(pairsOf)).toEqual(batch.map((x) => `idctx:replay:{${x.jti}}#${x.index}`))
    // Per call, the verdicts map back to their entries.
    const cluster = fakeClient((c) => codes(c.entries, c.keys[0]?.includes('{j1}') ? 2 : 1), { isCluster: true })
    const verdicts = await createRedisReplayStore({ client: cluster.client }).checkMany(batch.slice(0, 9))
    expect(verdicts).toEqual(batch.slice(0, 9).map((x) => (x.jti === 'j1' ? 'replay' : 'redelivery')))
    expect(cluster.sent.map((c) => c.keys.length)).toEqual([1, 1, 1])
  })

  it('verdicts in order; an error reply or an unknown answer is a StoreError, never a verdict', async () => {
    const ok = fakeClient((c) => Array.from({ length: c.entries }, (_, i) => i % 3))
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
    const { client, sent } = fakeClient((c) => (++calls === 1 ? new Error('NOSCRIPT No matching script') : codes(c.entries, 1)))
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
