import { createMemoryReplayStore, ReasonCode, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import type { Message } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { headerTexts, KafkaHarness, RecordingObserver, rejectReason, service, uniqueName, verifierFor, waitFor } from './helpers.js'

const h = new KafkaHarness('redeliver')
afterAll(() => h.close())

const orders = service('svc-orders')
const acme: IdentityContext = { sub: 'u-9', tid: 'acme', txn: 'txn-redelivery' }

describe('at-least-once redelivery and replay', () => {
  it('a consumer stopped mid-batch without committing, then restarted: every record reaches the handler or the DLQ; only a true replay is `replayed`', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('redeliver')
    const raw = await h.producer()
    const signing = wrapProducer(raw, { signer: orders.signer })

    // 24 signed records in 3 calls of 8 (one token each), with 6 unsigned ones in between.
    const all: string[] = []
    const rejectedKeys: string[] = []
    for (let call = 0; call < 3; call++) {
      const messages: Message[] = []
      for (let i = 0; i < 8; i++) messages.push({ key: `ok-${call}-${i}`, value: `v-${call}-${i}` })
      await signing.send({ topic, messages }, { context: acme })
      all.push(...messages.map((m) => m.key as string))
      for (let j = 0; j < 2; j++) {
        const key = `bad-${call}-${j}`
        await raw.send({ topic, messages: [{ key, value: key }] })
        all.push(key)
        rejectedKeys.push(key)
      }
    }

    // Both consumer instances share the replay store (in production: the Redis store).
    const replay = createMemoryReplayStore()
    const groupId = uniqueName('redeliver-g')

    // Instance 1 handles 12 records, resolves only the first 6, then is stopped while the batch is open.
    const firstSeen = new Set<string>()
    const observer1 = new RecordingObserver()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let reachedGate = false
    const first = wrapConsumer(h.consumer({ groupId }), {
      verifier: verifierFor([orders], { replay, observer: observer1 }),
      tenant: 'acme',
      observer: observer1,
      deadLetter: { producer: raw },
    })
    await first.connect()
    await first.subscribe({ topics: [topic], fromBeginning: true })
    await first.run({
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const m of batch.messages) {
          firstSeen.add(m.key?.toString() ?? '')
          if (firstSeen.size <= 6) resolveOffset(m.offset)
          if (firstSeen.size >= 12) {
            reachedGate = true
            await gate
            return
          }
        }
      },
    })
    await waitFor('instance 1 mid-batch', () => reachedGate)
    const stopping = first.disconnect()
    release()
    await stopping
    const committedByFirst = await h.committedOffset(groupId, topic)

    // Instance 2, same group, same replay store, a fresh verifier (another process).
    const secondSeen: string[] = []
    const observer2 = new RecordingObserver()
    const second = wrapConsumer(h.consumer({ groupId }), {
      verifier: verifierFor([orders], { replay, observer: observer2 }),
      tenant: 'acme',
      observer: observer2,
      deadLetter: { producer: raw },
    })
    await second.connect()
    await second.subscribe({ topics: [topic], fromBeginning: true })
    await second.run({ eachMessage: async ({ message }) => void secondSeen.push(message.key?.toString() ?? '') })
    await waitFor('the whole topic consumed', async () => (await h.committedOffset(groupId, topic)) === all.length)

    const handled = new Set([...firstSeen, ...secondSeen])
    const dead = await h.readAll(dlq)
    const deadKeys = new Set(dead.map((d) => d.key as string))
    // Partition of the produced records: handled xor dead-lettered, nothing lost.
    expect([...handled].filter((k) => deadKeys.has(k))).toEqual([])
    expect([...handled, ...deadKeys].sort()).toEqual([...all].sort())
    expect([...deadKeys].sort()).toEqual([...rejectedKeys].sort())
    // At-least-once: a rejected record redelivered to instance 2 may be dead-lettered again.
    expect(dead.length).toBeGreaterThanOrEqual(rejectedKeys.length)
    expect(new Set(dead.map((d) => rejectReason(d)))).toEqual(new Set([ReasonCode.Missing]))
    // Records handled but not committed by instance 1 were redelivered to instance 2 at the same
    // coordinates, and accepted: a redelivery is not a replay.
    expect(committedByFirst).toBe(6)
    const redelivered = secondSeen.filter((k) => firstSeen.has(k))
    expect(redelivered).toEqual(['ok-0-6', 'ok-0-7', 'ok-1-0', 'ok-1-1', 'ok-1-2', 'ok-1-3'])
    expect([...observer1.rejected, ...observer2.rejected].filter((r) => r.reason === ReasonCode.Replayed)).toEqual([])

    // A true replay: the same record (same key, value, headers) produced again lands at a new offset.
    const [original] = (await h.readAll(topic)).filter((r) => r.key === 'ok-1-3')
    const handledBefore = secondSeen.length
    expect([original?.key, original?.value, headerTexts(original?.headers, 'idctx')]).toEqual(['ok-1-3', 'v-1-3', [expect.any(String)]])
    await raw.send({ topic, messages: [{ key: original?.key ?? null, value: original?.value ?? null, headers: original?.headers ?? {} }] })
    await waitFor('the replay dead-lettered', () => observer2.dispositions.some((d) => d.reason === ReasonCode.Replayed))
    const replayed = (await h.readAll(dlq)).filter((d) => rejectReason(d) === ReasonCode.Replayed)
    expect(replayed.map((d) => [d.key, d.value])).toEqual([['ok-1-3', original?.value]])
    expect(replayed[0]?.headers['idctx-original-offset']?.toString()).toBe(String(all.length))
    expect(secondSeen).toHaveLength(handledBefore)
  })
})

describe('two identical records of one send are two messages', () => {
  it.each(['eachMessage', 'eachBatch'] as const)('%s: both handled, neither replayed; a copy of either at a new offset is `replayed`', async (mode) => {
    const { topic, dlq } = await h.createTopicWithDlq(`twins-${mode}`)
    const raw = await h.producer()
    // Same topic, key and value: the same leaf twice under one token, told apart by their proofs.
    await wrapProducer(raw, { signer: orders.signer }).send(
      { topic, messages: [{ key: 'twin', value: 'same' }, { key: 'twin', value: 'same' }] },
      { context: acme },
    )
    const observer = new RecordingObserver()
    const handled: string[] = []
    const consumer = wrapConsumer(h.consumer(), {
      verifier: verifierFor([orders], { replay: createMemoryReplayStore(), observer }),
      tenant: 'acme',
      observer,
      deadLetter: { producer: raw },
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    if (mode === 'eachMessage') {
      await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.offset) })
    } else {
      await consumer.run({ eachBatch: async ({ batch }) => void handled.push(...batch.messages.map((m) => m.offset)) })
    }
    await waitFor('both twins handled', () => handled.length + observer.dispositions.length >= 2)
    expect(handled).toEqual(['0', '1'])
    expect(observer.rejected).toEqual([])
    expect(observer.verified).toBe(2)

    // Each twin copied with its own headers (token and proof) to new offsets: both are replays.
    const originals = await h.readAll(topic)
    expect(originals.map((r) => [r.offset, r.key, r.value, headerTexts(r.headers, 'idctx-proof').length])).toEqual([
      ['0', 'twin', 'same', 1],
      ['1', 'twin', 'same', 1],
    ])
    expect(headerTexts(originals[0]?.headers, 'idctx-proof')).not.toEqual(headerTexts(originals[1]?.headers, 'idctx-proof'))
    await raw.send({ topic, messages: [...originals].reverse().map((r) => ({ key: r.key, value: r.value, headers: r.headers })) })
    await waitFor('both copies dead-lettered', () => observer.dispositions.length >= 2)
    expect(observer.dispositions.map((d) => [d.reason, d.coordinates])).toEqual([
      [ReasonCode.Replayed, `${topic}/0/2`],
      [ReasonCode.Replayed, `${topic}/0/3`],
    ])
    const dead = await h.readAll(dlq)
    expect(dead.map((d) => [rejectReason(d), headerTexts(d.headers, 'idctx-original-offset')[0], headerTexts(d.headers, 'idctx-proof')[0]])).toEqual([
      [ReasonCode.Replayed, '2', headerTexts(originals[1]?.headers, 'idctx-proof')[0]],
      [ReasonCode.Replayed, '3', headerTexts(originals[0]?.headers, 'idctx-proof')[0]],
    ])
    expect(handled).toEqual(['0', '1'])
  })
})
