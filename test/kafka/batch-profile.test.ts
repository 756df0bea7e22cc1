import { ReasonCode, runWithContext, type IdentityContext, type SignedEvent, type VerifiedContext } from '@idctx/core'
import { IdctxHeader, wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import type { IHeaders } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { headerTexts, KafkaHarness, RecordingObserver, rejectReason, service, verifierFor, waitFor, type ReadRecord } from './helpers.js'

const h = new KafkaHarness('bp')
afterAll(() => h.close())

const user = (i: number): IdentityContext => ({ sub: `u-${i}`, tid: i % 3 === 0 ? 'globex' : 'acme', txn: `txn-${i}`, roles: [`role-${i}`] })
const typOf = (token: string | undefined) => (JSON.parse(Buffer.from(String(token).split('.')[0] ?? '', 'base64url').toString()) as { typ: string }).typ

/** A signing service whose signatures are counted. */
function countingService(issuer: string) {
  const signed: SignedEvent[] = []
  const s = service(issuer, { observer: { onSigned: (e) => signed.push(e) } })
  return { ...s, signed }
}

interface Seen {
  readonly key: string
  readonly identity: VerifiedContext
}

/** Copies of read records as raw messages (for re-producing them, tampered, with a plain producer). */
function asMessage(r: ReadRecord, headers: IHeaders) {
  return { key: r.key, value: r.value, headers }
}

describe('batch profile over a real broker: one signature per event-loop turn', () => {
  it('16 sends of 16 users in one turn: one signature; every record verified with its own user; a record under another record\'s context record is binding_mismatch', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('bp-16')
    const orders = countingService('svc-orders')
    const raw = await h.producer()
    const producer = wrapProducer(raw, { signer: orders.signer })

    await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        runWithContext(user(i), () => producer.send({ topic, messages: [{ key: `k-${i}`, value: JSON.stringify({ n: i }) }] })),
      ),
    )
    expect(orders.signed).toHaveLength(1)
    expect(orders.signed[0]).toMatchObject({ profile: 'batch', count: 16, contexts: 16 })

    // What the broker holds: every record with idctx (one shared token), idctx-ctx and idctx-proof.
    const stored = await h.readAll(topic)
    expect(stored).toHaveLength(16)
    const tokens = new Set(stored.map((r) => headerTexts(r.headers, IdctxHeader.Token)[0]))
    expect(tokens.size).toBe(1)
    expect(typOf([...tokens][0])).toBe('idctx-batch+jwt')
    for (const r of stored) {
      expect(headerTexts(r.headers, IdctxHeader.Context)).toHaveLength(1)
      expect(headerTexts(r.headers, IdctxHeader.Proof)).toHaveLength(1)
    }

    // Attacks with a plain producer: record 0 under record 1's context record; record 2 under
    // record 3's context record and proof; record 4 without its context record.
    const byKey = new Map(stored.map((r) => [r.key, r]))
    const r0 = byKey.get('k-0') as ReadRecord
    const r1 = byKey.get('k-1') as ReadRecord
    const r2 = byKey.get('k-2') as ReadRecord
    const r3 = byKey.get('k-3') as ReadRecord
    const r4 = byKey.get('k-4') as ReadRecord
    const text = (r: ReadRecord, name: string) => headerTexts(r.headers, name)[0] as string
    await raw.send({
      topic,
      messages: [
        asMessage(r0, { idctx: text(r0, IdctxHeader.Token), 'idctx-proof': text(r0, IdctxHeader.Proof), 'idctx-ctx': text(r1, IdctxHeader.Context), 'x-case': 'record-under-other-context' }),
        asMessage(r2, { idctx: text(r2, IdctxHeader.Token), 'idctx-proof': text(r3, IdctxHeader.Proof), 'idctx-ctx': text(r3, IdctxHeader.Context), 'x-case': 'record-under-other-context-and-proof' }),
        asMessage(r4, { idctx: text(r4, IdctxHeader.Token), 'idctx-proof': text(r4, IdctxHeader.Proof), 'x-case': 'record-without-context' }),
      ],
    })

    const observer = new RecordingObserver()
    const seen: Seen[] = []
    const consumer = wrapConsumer(h.consumer(), {
      verifier: verifierFor([orders], { observer }),
      tenant: ['acme', 'globex'],
      observer,
      deadLetter: { producer: await h.producer() },
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message, identity }) => void seen.push({ key: String(message.key), identity }) })
    await waitFor('16 verified records and 3 dead letters', () => seen.length >= 16 && observer.dispositions.length >= 3)

    expect(seen.map((s) => s.key).sort()).toEqual(Array.from({ length: 16 }, (_, i) => `k-${i}`).sort())
    for (const s of seen) {
      const i = Number(s.key.slice(2))
      expect({ key: s.key, sub: s.identity.sub, tid: s.identity.tid, txn: s.identity.txn, roles: s.identity.roles }).toEqual({
        key: s.key,
        sub: `u-${i}`,
        tid: user(i).tid,
        txn: `txn-${i}`,
        roles: [`role-${i}`],
      })
      expect(s.identity.claims).toMatchObject({ iss: 'svc-orders', sub: `u-${i}`, act: { sub: 'svc-orders' } })
    }
    const dead = await h.readAll(dlq)
    expect(dead.map((d) => [headerTexts(d.headers, 'x-case')[0], rejectReason(d)]).sort()).toEqual([
      ['record-under-other-context', ReasonCode.BindingMismatch],
      ['record-under-other-context-and-proof', ReasonCode.BindingMismatch],
      ['record-without-context', ReasonCode.Malformed],
    ])
    // the dead-letter copies keep the original carriers, idctx-ctx included
    expect(dead.filter((d) => headerTexts(d.headers, IdctxHeader.Context).length === 1)).toHaveLength(2)
  })

  it('eachBatch: the records of a turn verify with their own users (one replay round trip per fetched batch)', async () => {
    const topic = await h.createTopic('bp-each-batch')
    const orders = countingService('svc-orders')
    const producer = wrapProducer(await h.producer(), { signer: orders.signer })
    await Promise.all(Array.from({ length: 8 }, (_, i) => producer.send({ topic, messages: [{ key: `k-${i}`, value: `v-${i}` }] }, { context: user(i) })))
    expect(orders.signed).toHaveLength(1)

    const seen: Seen[] = []
    const consumer = wrapConsumer(h.consumer(), { verifier: verifierFor([orders]), tenant: { any: true }, policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) if (m.identity !== undefined) seen.push({ key: String(m.key), identity: m.identity })
      },
    })
    await waitFor('8 records', () => seen.length >= 8)
    // (Sorted: kafkajs itself may store concurrent sends out of call order — plain kafkajs does too.)
    expect(seen.map((s) => [s.key, s.identity.sub, s.identity.txn]).sort()).toEqual(Array.from({ length: 8 }, (_, i) => [`k-${i}`, `u-${i}`, `txn-${i}`]))
  })

  it('16 loops of sends in flight: far fewer signatures than sends, every record its own user', async () => {
    const topic = await h.createTopic('bp-inflight')
    const orders = countingService('svc-orders')
    const producer = wrapProducer(await h.producer(), { signer: orders.signer })
    const rounds = 10
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        for (let k = 0; k < rounds; k++) {
          await runWithContext(user(i), () => producer.send({ topic, messages: [{ key: `k-${i}-${k}`, value: `v-${i}-${k}` }] }))
        }
      }),
    )
    const sends = 16 * rounds
    // How many sends shared each signature (logged for the report; the exact number depends on timing).
    console.info(`[batch profile] ${sends} sends in flight 16 at a time: ${orders.signed.length} signatures, ${(sends / orders.signed.length).toFixed(1)} sends per signature`)
    expect(orders.signed.reduce((n, e) => n + e.count, 0)).toBe(sends)
    expect(orders.signed.length).toBeLessThan(sends / 2)

    const seen: Seen[] = []
    const consumer = wrapConsumer(h.consumer(), { verifier: verifierFor([orders]), tenant: { any: true }, policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message, identity }) => void seen.push({ key: String(message.key), identity }) })
    await waitFor(`${sends} records`, () => seen.length >= sends)
    for (const s of seen) expect(s.identity.sub).toBe(`u-${s.key.split('-')[1]}`)
  })

  it('a bad call in a turn fails alone; the others are signed together and arrive verified', async () => {
    const topic = await h.createTopic('bp-bad-call')
    const orders = countingService('svc-orders')
    const producer = wrapProducer(await h.producer(), { signer: orders.signer })
    const outcomes = await Promise.allSettled([
      producer.send({ topic, messages: [{ key: 'good-1', value: 'v' }] }, { context: user(1) }),
      producer.send({ topic, messages: [{ key: 'bad-value', value: 42 as never }] }, { context: user(2) }),
      producer.send({ topic, messages: [{ key: 'bad-context', value: 'v' }] }, { context: { sub: 'u', tid: '', txn: 't' } }),
      producer.send({ topic, messages: [{ key: 'bad-headers', value: 'v', headers: { 'idctx-ctx': 'forwarded' } }] }, { context: user(3) }),
      producer.send({ topic, messages: [{ key: 'good-2', value: 'v' }] }, { context: user(4) }),
    ])
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'sent' : (o.reason as Error).name))).toEqual(['sent', 'TypeError', 'SigningError', 'SigningError', 'sent'])
    expect(orders.signed).toHaveLength(1)
    expect(orders.signed[0]?.count).toBe(2)

    const seen: Seen[] = []
    const consumer = wrapConsumer(h.consumer(), { verifier: verifierFor([orders]), tenant: { any: true }, policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message, identity }) => void seen.push({ key: String(message.key), identity }) })
    await waitFor('2 records', () => seen.length >= 2)
    expect(seen.map((s) => [s.key, s.identity.sub]).sort()).toEqual([
      ['good-1', 'u-1'],
      ['good-2', 'u-4'],
    ])
    expect(await h.recordCount(topic)).toBe(2)
  })

  it('transactions: sends of one turn in a transaction share a token and are flushed before commit; an aborted turn never arrives', async () => {
    const topic = await h.createTopic('bp-tx')
    const orders = countingService('svc-orders')
    const producer = wrapProducer(await h.producer({ transactionalId: `tx-${topic}`, idempotent: true, maxInFlightRequests: 1 }), { signer: orders.signer })

    const committed = await producer.transaction()
    // Not awaited: commit itself flushes the turn and waits for these sends.
    const sends = [0, 1, 2].map((i) => committed.send({ topic, messages: [{ key: `c-${i}`, value: `v-${i}` }] }, { context: user(i) }))
    await committed.commit()
    await Promise.all(sends)
    expect(orders.signed).toHaveLength(1)
    expect(orders.signed[0]).toMatchObject({ profile: 'batch', count: 3 })

    const aborted = await producer.transaction()
    const lost = [3, 4].map((i) => aborted.send({ topic, messages: [{ key: `a-${i}`, value: `v-${i}` }] }, { context: user(i) }))
    await aborted.abort()
    await Promise.all(lost)

    const marker = await producer.transaction()
    await marker.send({ topic, messages: [{ key: 'marker', value: 'end' }] }, { context: user(5) })
    await marker.commit()

    const seen: Seen[] = []
    const consumer = wrapConsumer(h.consumer({ readUncommitted: false }), { verifier: verifierFor([orders]), tenant: { any: true }, policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message, identity }) => void seen.push({ key: String(message.key), identity }) })
    await waitFor('the marker', () => seen.some((s) => s.key === 'marker'))
    expect(seen.map((s) => [s.key, s.identity.sub, s.identity.txn]).sort()).toEqual([
      ['c-0', 'u-0', 'txn-0'],
      ['c-1', 'u-1', 'txn-1'],
      ['c-2', 'u-2', 'txn-2'],
      ['marker', 'u-5', 'txn-5'],
    ])
  })

  it('batchProfile: false — one signature per send, the single profile on every record', async () => {
    const topic = await h.createTopic('bp-off')
    const orders = countingService('svc-orders')
    const producer = wrapProducer(await h.producer(), { signer: orders.signer, batchProfile: false })
    await Promise.all(Array.from({ length: 4 }, (_, i) => producer.send({ topic, messages: [{ key: `k-${i}`, value: 'v' }] }, { context: user(i) })))
    expect(orders.signed.map((e) => e.profile)).toEqual(['single', 'single', 'single', 'single'])
    const stored = await h.readAll(topic)
    for (const r of stored) expect(Object.keys(r.headers)).toEqual([IdctxHeader.Token])
  })
})
