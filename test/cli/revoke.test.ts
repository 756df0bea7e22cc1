import { randomBytes } from 'node:crypto'
import { createSigner, createVerifier, generateKey, kafkaLeaf, type VerifyResult } from '@idctx/core'
import { createRedisRevocationStore, type RedisRevocationStore } from '@idctx/redis'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../kafka/helpers.js'
import { idctx, json } from './run-cli.js'

// `idctx revoke` / `unrevoke` against the real Redis, enforced by a verifier that uses the Redis
// revocation store of @idctx/redis.

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `idctx:test-cli:${randomBytes(6).toString('hex')}`
let client: Redis
let store: RedisRevocationStore

beforeAll(async () => {
  client = new Redis(REDIS_URL)
  store = createRedisRevocationStore({ client, prefix })
  await store.ready()
})
afterAll(async () => {
  await store.close()
  const keys = await client.keys(`${prefix}*`)
  if (keys.length > 0) await client.del(...keys)
  client.disconnect()
})

describe('idctx revoke', () => {
  const key = generateKey('EdDSA', { kid: `orders-${randomBytes(4).toString('hex')}` })
  const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
  const verifier = () => createVerifier({ audience: 'shop', issuers: { orders: [key] }, revocation: store })
  const leaf = kafkaLeaf('orders', 'k', Buffer.from('v'))
  const check = (sub: string): Promise<VerifyResult> =>
    verifier().verify({
      tokens: [signer.sign({ sub, tid: 'acme', txn: 'txn-revoke' }, [{ destination: 'kafka:orders', leaf }]).token],
      destination: 'kafka:orders',
      leaf,
      expectedTenant: 'acme',
    })
  const reason = async (sub: string) => {
    const r = await check(sub)
    return r.ok ? 'ok' : r.error.reason
  }

  it('denies a kid for every verifier of the store at once, and unrevoke lifts it', async () => {
    expect(await reason('u-1')).toBe('ok')
    const r = await idctx(['revoke', 'kid', key.kid, '--prefix', prefix, '--json'], { env: { REDIS_URL } })
    expect(r.code).toBe(0)
    expect(json(r)).toEqual({ action: 'revoked', kind: 'kid', value: key.kid, until: null })
    await waitFor('the revocation to reach this verifier', async () => (await reason('u-1')) === 'revoked')
    expect(await reason('u-2')).toBe('revoked')

    const u = await idctx(['unrevoke', 'kid', key.kid, '--prefix', prefix, '--redis', REDIS_URL, '--json'])
    expect(u.code).toBe(0)
    await waitFor('the unrevocation to reach this verifier', async () => (await reason('u-1')) === 'ok')
  })

  it('denies a user for --ttl seconds, printing only the hash of the user id', async () => {
    const sub = `user-secret-${randomBytes(4).toString('hex')}`
    const r = await idctx(['revoke', 'sub', sub, '--ttl', '2', '--prefix', prefix, '--json'], { env: { REDIS_URL } })
    expect(r.code).toBe(0)
    const out = json<{ value: string; until: string }>(r)
    expect(out.value).toMatch(/^sha256:[0-9a-f]{32}$/)
    expect(r.stdout + r.stderr).not.toContain(sub)
    expect(Date.parse(out.until) - Date.now()).toBeLessThanOrEqual(2000)
    await waitFor('the user revoked', async () => (await reason(sub)) === 'revoked')
    expect(await reason('someone-else')).toBe('ok')
    await waitFor('the denial to lapse', async () => (await reason(sub)) === 'ok', 10_000)
  })

  it('exit 2 for an unknown kind, 3 for an unreachable Redis', async () => {
    expect((await idctx(['revoke', 'email', 'x', '--prefix', prefix])).code).toBe(2)
    const down = await idctx(['revoke', 'kid', 'k', '--redis', 'redis://127.0.0.1:1', '--prefix', prefix])
    expect(down.code).toBe(3)
    expect(down.stderr).toContain('Redis')
  })
})
