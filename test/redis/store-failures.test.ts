/**
 * The stores when the connection to Redis misbehaves: a reply lost with the connection (ioredis
 * sends the command again after reconnecting), and a deny-list reload that fails right after the
 * subscriber reconnected. Neither may reject a genuine message or leave a verifier throwing for
 * good.
 */
import { randomUUID } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { StoreError } from '@idctx/core'
import { createRedisReplayStore, createRedisRevocationStore, type RedisRevocationStore } from '@idctx/redis'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const target = new URL(REDIS_URL)
const clients: Redis[] = []
const stores: RedisRevocationStore[] = []
const servers: Server[] = []
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const c of clients.splice(0)) c.disconnect()
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
})
const track = (r: Redis) => (clients.push(r), r.on('error', () => {}), r)

/**
 * A TCP proxy to Redis that, once armed, lets the next command containing `EVAL` through and then
 * cuts the client's connection instead of passing Redis's reply back: the command ran, the
 * client never heard of it.
 */
async function lossyProxy(): Promise<{ port: number; dropNextEvalReply(): void; dropped: () => number }> {
  let armed = false
  let dropped = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    sockets.add(client).add(upstream)
    let cutOnReply = false
    client.on('data', (d) => {
      if (armed && d.toString('latin1').toUpperCase().includes('EVAL')) {
        armed = false
        cutOnReply = true
      }
      upstream.write(d)
    })
    upstream.on('data', (d) => {
      if (cutOnReply) {
        dropped++
        client.destroy()
        upstream.destroy()
        return
      }
      client.write(d)
    })
    const close = () => (client.destroy(), upstream.destroy())
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  servers.push(server)
  server.on('close', () => sockets.forEach((s) => s.destroy()))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  return { port, dropNextEvalReply: () => void (armed = true), dropped: () => dropped }
}

describe('Redis replay store: a reply lost with the connection', () => {
  it('the command ioredis sends again is the same check, not a second delivery: a first attempt stays first', async () => {
    const proxy = await lossyProxy()
    const client = track(new Redis({ host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: 1, retryStrategy: () => 20 }))
    const store = createRedisReplayStore({ client, prefix: `test:${randomUUID()}:` })
    const entry = (jti: string, coordinates: string, firstDelivery: boolean) => ({ jti, index: 0, coordinates, expiresAt: Date.now() + 60_000, firstDelivery })
    // Warm the script cache, so the next check is one EVALSHA.
    expect(await store.check(entry(randomUUID(), 'bull:q/0', true))).toBe('first')

    // A BullMQ job's first attempt: the script runs, its reply is lost, ioredis resends.
    const jti = randomUUID()
    proxy.dropNextEvalReply()
    expect(await store.check(entry(jti, 'bull:q/1', true))).toBe('first')
    expect(proxy.dropped()).toBe(1)
    // The store still tells the rest apart.
    expect(await store.check(entry(jti, 'bull:q/1', false))).toBe('redelivery')
    expect(await store.check(entry(jti, 'bull:q/1', true))).toBe('replay')
    expect(await store.check(entry(jti, 'bull:q/2', false))).toBe('replay')

    // The same for a whole batch (kafkajs eachBatch): nothing flips.
    const batch = Array.from({ length: 5 }, (_, i) => entry(randomUUID(), `t/0/${i}`, true))
    proxy.dropNextEvalReply()
    expect(await store.checkMany(batch)).toEqual(batch.map(() => 'first'))
    expect(proxy.dropped()).toBe(2)
  })
})

describe('Redis revocation store: a reload that fails after a reconnect', () => {
  it('is retried until it succeeds: the copy is current again within seconds, not stuck out of touch', async () => {
    const client = track(new Redis(REDIS_URL, { maxRetriesPerRequest: 1 }))
    let failLoads = 0
    const hgetall = client.hgetall.bind(client) as (key: string) => Promise<Record<string, string>>
    client.hgetall = ((key: string) => (failLoads > 0 ? (failLoads--, Promise.reject(new Error('injected: reload failed'))) : hgetall(key))) as typeof client.hgetall
    const name = `idctx-test-${randomUUID()}`
    const subscriber = track(new Redis(REDIS_URL, { retryStrategy: () => 50, connectionName: name }))
    const prefix = `test:${randomUUID()}`
    // The periodic resync is far away: only the store's own retry can bring the copy back.
    const store = createRedisRevocationStore({ client, subscriber, prefix, maxStalenessMs: 200, resyncIntervalMs: 600_000 })
    stores.push(store)
    await store.ready()
    const ids = { kid: 'k', jti: 'j', txn: 't', sub: 's', tid: 'acme' }
    expect(store.isRevoked(ids)).toBe(false)

    // The subscriber's connection drops; on reconnect the reload fails 6 times (retried every
    // 100 ms here: out of touch for longer than maxStalenessMs, so isRevoked throws meanwhile).
    failLoads = 6
    const admin = track(new Redis(REDIS_URL))
    const line = String(await admin.client('LIST')).split('\n').find((l) => l.includes(` name=${name} `))
    await admin.call('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line ?? '')?.[1] ?? '-1')
    // Meanwhile another instance revokes something the copy must learn.
    const other = createRedisRevocationStore({ client: track(new Redis(REDIS_URL)), prefix })
    stores.push(other)
    await other.ready()
    await other.revoke('sub', 's')

    const started = Date.now()
    let threw = 0
    let answer: boolean | undefined
    while (Date.now() - started < 5_000) {
      try {
        answer = store.isRevoked(ids)
        if (answer && failLoads === 0) break
      } catch (e) {
        expect(e).toBeInstanceOf(StoreError)
        threw++
      }
      await new Promise((r) => setTimeout(r, 25))
    }
    expect(failLoads).toBe(0)
    expect(answer).toBe(true)
    expect(threw).toBeGreaterThan(0)
  })
})
