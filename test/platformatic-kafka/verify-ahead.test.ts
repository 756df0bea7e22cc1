import { createMemoryReplayStore, currentContext, runWithContext, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/platformatic-kafka'
import { afterAll, describe, expect, it } from 'vitest'
import { countingStore, KafkaHarness, service, verifierFor, waitFor } from '../kafka/helpers.js'
import { PlatformaticClients } from './helpers.js'

// The verified stream verifies the messages the client already holds together, with one
// replay-store call (one round trip for @idctx/redis), instead of one call per message.

const h = new KafkaHarness('pk-ahead')
const pk = new PlatformaticClients()
afterAll(async () => {
  await pk.close()
  await h.close()
})

const orders = service('svc-orders')


describe('@platformatic/kafka: messages the client holds are verified together', () => {
  it('200 messages of 4 users: a few replay-store calls, not 200; each handled in order inside its own identity', async () => {
    const topic = await h.createTopic('pk-ahead')
    const producer = wrapProducer(pk.producer(), { signer: orders.signer })
    const users: IdentityContext[] = Array.from({ length: 4 }, (_, u) => ({ sub: `u-${u}`, tid: 'acme', txn: `txn-${u}` }))
    // Four sends in one turn from four users: one batch-profile token, each message its user's record.
    await Promise.all(
      users.map((user, u) =>
        runWithContext(user, () => producer.send({ messages: Array.from({ length: 50 }, (_, i) => ({ topic, key: Buffer.from(`${u}-${i}`), value: Buffer.from(`v-${u}-${i}`) })) })),
      ),
    )
    const replay = countingStore()
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders], { replay }), tenant: 'acme', policy: 'fail' })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: { key: string; sub: string; current: string | undefined }[] = []
    const done = stream.process((m) => void seen.push({ key: m.key.toString(), sub: m.identity.sub, current: currentContext()?.sub }))
    await waitFor('200 messages', () => seen.length >= 200)
    await stream.close()
    await done
    // The partition keeps the sends' order; each message carries its sender's identity.
    expect(seen).toHaveLength(200)
    for (const s of seen) {
      const u = s.key.split('-')[0]
      expect(s.sub).toBe(`u-${u}`)
      expect(s.current).toBe(`u-${u}`)
    }
    expect(seen.filter((s) => s.key.startsWith('0-')).map((s) => s.key)).toEqual(Array.from({ length: 50 }, (_, i) => `0-${i}`))
    expect(replay.calls.check).toBe(0)
    expect(replay.calls.entries).toBe(200)
    expect(replay.calls.checkMany).toBeLessThanOrEqual(20)
  })

  it('a copy of a record fetched beside its original is replayed, the original handled once', async () => {
    const topic = await h.createTopic('pk-ahead-copy')
    const producer = wrapProducer(pk.producer(), { signer: orders.signer })
    await runWithContext({ sub: 'u-9', tid: 'acme', txn: 'txn-9' }, () =>
      producer.send({ messages: [{ topic, key: Buffer.from('a'), value: Buffer.from('v-a') }, { topic, key: Buffer.from('b'), value: Buffer.from('v-b') }] }),
    )
    // The attacker re-sends the first record as it is, headers and all, right behind it.
    const [first] = await h.readAll(topic)
    const raw = await h.producer()
    await raw.send({ topic, messages: [{ key: first!.key, value: first!.value, headers: first!.headers }] })
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders], { replay: createMemoryReplayStore() }), tenant: 'acme', policy: 'skip' })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    const done = stream.process((m) => void seen.push(m.key.toString()))
    await waitFor('2 messages', () => seen.length >= 2)
    await new Promise((r) => setTimeout(r, 300))
    await stream.close()
    await done
    expect(seen).toEqual(['a', 'b'])
  })
})
