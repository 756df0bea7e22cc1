/**
 * `eachMessage` with `eachMessageVerify: 'batch'` (the default with kafkajs): the wrapper runs
 * kafkajs's own eachMessage loop as an eachBatch, verifying a fetched batch's records together —
 * one replay-store call per batch instead of one per record — with kafkajs's eachMessage
 * semantics: order, offsets resolved per record, a throwing handler redelivered from its record,
 * `pause()` stopping the loop after the record that paused.
 */
import { createMemoryReplayStore, ReasonCode, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import type { Message } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { countingStore, KafkaHarness, rejectReason, service, uniqueName, verifierFor, waitFor } from './helpers.js'

const h = new KafkaHarness('each-msg-batch')
afterAll(() => h.close())

const orders = service('svc-orders')
const acme: IdentityContext = { sub: 'u-7', tid: 'acme', txn: 'txn-each-message-batch' }


async function send(topic: string, n: number, prefix = 'm'): Promise<string[]> {
  const signing = wrapProducer(await h.producer(), { signer: orders.signer })
  const messages: Message[] = Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, value: `v-${i}` }))
  await signing.send({ topic, messages }, { context: acme })
  return messages.map((m) => m.key as string)
}

describe("eachMessage verified by fetched batch (eachMessageVerify: 'batch')", () => {
  it('100 records of one send: a few replay-store calls, not 100; all handled in order, each in its context', async () => {
    const topic = await h.createTopic('emb-count')
    const keys = await send(topic, 100)
    const replay = countingStore()
    const seen: { key: string; sub: string | undefined; offset: string }[] = []
    const consumer = wrapConsumer(h.consumer(), { verifier: verifierFor([orders], { replay }), tenant: 'acme', policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message, identity }) => {
        seen.push({ key: String(message.key), sub: identity.sub, offset: message.offset })
      },
    })
    await waitFor('100 records', () => seen.length >= 100)
    expect(seen.map((s) => s.key)).toEqual(keys)
    expect(seen.every((s) => s.sub === 'u-7')).toBe(true)
    expect(replay.calls.check).toBe(0)
    expect(replay.calls.entries).toBe(100)
    // kafkajs hands a partition's records over in a few fetched batches.
    expect(replay.calls.checkMany).toBeLessThanOrEqual(10)
  })

  it("'record' verifies each record just before its handler: one check per record", async () => {
    const topic = await h.createTopic('emb-record')
    await send(topic, 20)
    const replay = countingStore()
    let handled = 0
    const consumer = wrapConsumer(h.consumer(), { verifier: verifierFor([orders], { replay }), tenant: 'acme', policy: 'fail', eachMessageVerify: 'record' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async () => void handled++ })
    await waitFor('20 records', () => handled >= 20)
    expect(replay.calls).toEqual({ check: 20, checkMany: 0, entries: 20 })
  })

  it('a handler throwing on record 30 once: kafkajs redelivers from it, the earlier ones are not handled again, nothing is `replayed`', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('emb-throw')
    const keys = await send(topic, 60)
    const groupId = uniqueName('emb-throw-g')
    const handled: string[] = []
    let thrown = false
    const consumer = wrapConsumer(h.consumer({ groupId }), {
      verifier: verifierFor([orders], { replay: createMemoryReplayStore() }),
      tenant: 'acme',
      deadLetter: { producer: await h.producer() },
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => {
        const key = String(message.key)
        if (key === 'm-30' && !thrown) {
          thrown = true
          throw new Error('the handler failed once')
        }
        handled.push(key)
      },
    })
    await waitFor('60 records', () => handled.length >= 60)
    await consumer.stop()
    expect(handled).toEqual(keys)
    expect(await h.committedOffset(groupId, topic)).toBe(60)
    expect(await h.recordCount(dlq)).toBe(0)
  })

  it('pause() in the handler stops the loop after that record; resume goes on with the next', async () => {
    const topic = await h.createTopic('emb-pause')
    const keys = await send(topic, 40)
    const handled: string[] = []
    let paused = false
    let resume: (() => void) | undefined
    const consumer = wrapConsumer(h.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message, pause }) => {
        handled.push(String(message.key))
        if (message.key?.toString() === 'm-9' && !paused) {
          paused = true
          resume = pause()
        }
      },
    })
    await waitFor('the pause', () => paused)
    await new Promise((r) => setTimeout(r, 1_000))
    expect(handled).toEqual(keys.slice(0, 10))
    resume?.()
    await waitFor('40 records', () => handled.length >= 40)
    expect(handled).toEqual(keys)
  })

  it('rejected records among them are dead-lettered in place, before the next record is handled', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('emb-dlq')
    const raw = await h.producer()
    await send(topic, 5, 'a')
    await raw.send({ topic, messages: [{ key: 'unsigned', value: 'x' }] })
    await send(topic, 5, 'b')
    const events: string[] = []
    const dlqProducer = await h.producer()
    const consumer = wrapConsumer(h.consumer(), {
      verifier: verifierFor([orders]),
      tenant: 'acme',
      deadLetter: {
        producer: {
          send: async (record: Parameters<typeof dlqProducer.send>[0]) => {
            const r = await dlqProducer.send(record)
            events.push('dlq')
            return r
          },
        } as typeof dlqProducer,
      },
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void events.push(String(message.key)) })
    await waitFor('11 outcomes', () => events.length >= 11)
    expect(events).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'dlq', 'b-0', 'b-1', 'b-2', 'b-3', 'b-4'])
    const [dead] = await h.readAll(dlq)
    expect(dead?.key).toBe('unsigned')
    expect(rejectReason(dead as NonNullable<typeof dead>)).toBe(ReasonCode.Missing)
  })
})
