/**
 * Redis restarted while records flow: a redis-server of this test's own (no persistence) is
 * stopped mid-stream and started again. Both stores throw while it is gone, the wrapped consumers
 * (eachMessage and eachBatch, one group) retry, and then: every genuine record is handled, none
 * reaches a handler unverified, nothing is dead-lettered.
 */
import { randomUUID } from 'node:crypto'
import { createSigner, createVerifier, generateKey, runWithContext, StoreError, type ReplayStore, type RevocationStore } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import { createRedisReplayStore, createRedisRevocationStore, type RedisRevocationStore } from '@idctx/redis'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { AUDIENCE, KafkaHarness, uniqueName, waitFor } from '../kafka/helpers.js'
import { redisServerMissing, startRedisServer, type RedisServer } from './servers.js'

const missing = redisServerMissing()
if (missing !== undefined) console.log(`[redis restart] skipped: ${missing}`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const CTX = { sub: 'u-42', tid: 'acme', txn: randomUUID(), pty: 'user' as const }

describe.skipIf(missing !== undefined)('Redis restarted mid-stream', () => {
  it('0 lost, 0 unverified delivered, 0 false rejects; both stores throw (retry) while Redis is gone', async () => {
    let server: RedisServer | undefined
    const h = new KafkaHarness('idctx-redis-restart')
    const clients: Redis[] = []
    const revocations: RedisRevocationStore[] = []
    let producing = true
    let stream: Promise<void> | undefined
    try {
      server = await startRedisServer()
      const { topic, dlq } = await h.createTopicWithDlq('redis-restart', 4)
      const key = generateKey('EdDSA', { kid: uniqueName('orders') })
      const wrapped = wrapProducer(await h.producer(), { signer: createSigner({ issuer: 'orders', audience: AUDIENCE, key }) })
      const dlqProducer = await h.producer()
      const groupId = uniqueName('redis-restart')
      const prefix = `test:${randomUUID()}`

      const handled = new Map<string, number>()
      let unverified = 0
      const thrown = { replay: 0, revocation: 0 }
      let handledAfterRestart = 0
      let restarted = false
      const onHandled = (key: string, identity: { sub: string; tid: string } | undefined) => {
        if (identity?.sub !== CTX.sub || identity.tid !== CTX.tid) unverified++
        handled.set(key, (handled.get(key) ?? 0) + 1)
        if (restarted) handledAfterRestart++
      }

      for (const variant of ['eachMessage', 'eachBatch'] as const) {
        // Commands fail fast while Redis is gone (no waiting in ioredis's queue): the stores throw.
        const client = new Redis(server.url, { maxRetriesPerRequest: 1 })
        client.on('error', () => {})
        clients.push(client)
        const replayStore = createRedisReplayStore({ client, prefix: `${prefix}:replay:` })
        const replay: ReplayStore = {
          check: (e) => Promise.resolve(replayStore.check(e)).catch((err: unknown) => (thrown.replay++, Promise.reject(err))),
          checkMany: (es) => Promise.resolve(replayStore.checkMany(es)).catch((err: unknown) => (thrown.replay++, Promise.reject(err))),
        }
        const revocationStore = createRedisRevocationStore({ client, prefix: `${prefix}:revocation`, maxStalenessMs: 500, resyncIntervalMs: 10_000 })
        revocations.push(revocationStore)
        await revocationStore.ready()
        const revocation: RevocationStore = {
          isRevoked(ids) {
            try {
              return revocationStore.isRevoked(ids)
            } catch (e) {
              thrown.revocation++
              expect(e).toBeInstanceOf(StoreError)
              throw e
            }
          },
        }
        const verifier = createVerifier({ audience: AUDIENCE, issuers: { orders: [key] }, replay, revocation })
        const consumer = h.consumer({ groupId, retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 30 } })
        await consumer.connect()
        await consumer.subscribe({ topics: [topic], fromBeginning: true })
        const idctx = wrapConsumer(consumer, { verifier, tenant: 'acme', deadLetter: { producer: dlqProducer } })
        if (variant === 'eachMessage') {
          await idctx.run({ eachMessage: async ({ message, identity }) => onHandled(String(message.key), identity) })
        } else {
          await idctx.run({ eachBatch: async ({ batch }) => batch.messages.forEach((m) => onHandled(String(m.key), m.identity)) })
        }
      }

      const genuine = new Set<string>()
      let n = 0
      stream = (async () => {
        while (producing) {
          const messages = Array.from({ length: 5 }, () => ({ key: `g-${n++}`, value: JSON.stringify({ n, tenant: 'acme' }) }))
          await runWithContext(CTX, () => wrapped.send({ topic, messages }))
          for (const m of messages) genuine.add(m.key)
          await sleep(25)
        }
      })()
      stream.catch(() => undefined) // awaited below

      await waitFor('records flowing', () => handled.size >= 100, 30_000)
      await server.stop()
      const down = performance.now()
      await sleep(2_000)
      await server.start()
      restarted = true
      const outageMs = performance.now() - down
      await sleep(2_000)
      producing = false
      await stream
      await waitFor('every genuine record to be handled', () => [...genuine].every((k) => handled.has(k)), 45_000)

      const lost = [...genuine].filter((k) => !handled.has(k))
      expect(lost).toEqual([])
      expect(unverified).toBe(0)
      expect(await h.recordCount(dlq)).toBe(0)
      // The outage did hit verification while records flowed, and processing resumed after it.
      expect(thrown.replay + thrown.revocation).toBeGreaterThan(0)
      expect(handledAfterRestart).toBeGreaterThan(0)
      // The deny-list copies are current again.
      for (const r of revocations) expect(r.isRevoked({ kid: 'k', jti: 'j', txn: 't', sub: 's', tid: 't' })).toBe(false)
      console.log(
        `[redis restart] Redis down ${Math.round(outageMs)} ms: ${genuine.size} genuine records, all handled (${[...handled.values()].filter((c) => c > 1).length} more than once), ` +
          `0 unverified, 0 dead-lettered; store errors (retried): replay ${thrown.replay}, deny-list ${thrown.revocation}`,
      )
    } finally {
      producing = false
      await stream?.catch(() => undefined)
      for (const r of revocations) await r.close()
      await h.close()
      for (const c of clients) c.disconnect()
      await server?.close()
    }
  })
})
