import { createContextStore, SigningError, type IdentityContext, type VerifiedContext } from '@idctx/core'
import { wrapConsumer, wrapProducer, type IdctxBatchMessage } from '@idctx/kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { headerTexts, KafkaHarness, service, verifierFor, waitFor } from './helpers.js'

const h = new KafkaHarness('rt')
afterAll(() => h.close())

const orders = service('svc-orders')
const billing = service('svc-billing')
const user: IdentityContext = { sub: 'u-42', tid: 'acme', txn: 'txn-round-trip', roles: ['buyer'], scope: 'orders:write' }

interface Seen {
  key: string
  identity: VerifiedContext
  current: unknown
}

describe('kafkajs round trip', () => {
  it('eachMessage: the handler sees the identity, runs in it, and a produce from it carries the context on', async () => {
    const [source, next] = (await h.createTopics('rt-msg', 2)) as [string, string]
    const store = createContextStore()
    const ordersProducer = wrapProducer(await h.producer(), { signer: orders.signer, contextStore: store })
    const billingProducer = wrapProducer(await h.producer(), { signer: billing.signer, contextStore: store })
    const verifier = verifierFor([orders, billing])

    const messages = [
      { key: 'o-1', value: JSON.stringify({ n: 1 }), headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } },
      { key: 'o-2', value: Buffer.from(JSON.stringify({ n: 2 })) },
    ]
    const frozenHeaders = { ...messages[0]?.headers }
    await store.run(user, () => ordersProducer.send({ topic: source, messages }))
    // The caller's objects were copied, not changed.
    expect(messages[0]?.headers).toEqual(frozenHeaders)
    expect(messages[1]).not.toHaveProperty('headers')

    const seen: Seen[] = []
    const first = wrapConsumer(h.consumer(), { verifier, tenant: 'acme', policy: 'fail', contextStore: store })
    await first.connect()
    await first.subscribe({ topics: [source], fromBeginning: true })
    await first.run({
      eachMessage: async ({ message, identity }) => {
        const key = message.key?.toString() ?? ''
        seen.push({ key, identity, current: store.current() })
        await billingProducer.send({ topic: next, messages: [{ key, value: `billed ${key}` }] })
      },
    })

    const forwarded: Seen[] = []
    const second = wrapConsumer(h.consumer(), { verifier, tenant: ['acme', 'globex'], policy: 'fail', contextStore: store })
    await second.connect()
    await second.subscribe({ topics: [next], fromBeginning: true })
    await second.run({
      eachMessage: async ({ message, identity }) => {
        forwarded.push({ key: message.key?.toString() ?? '', identity, current: store.current() })
      },
    })
    await waitFor('two forwarded records', () => forwarded.length === 2)

    expect(seen.map((s) => s.key).sort()).toEqual(['o-1', 'o-2'])
    for (const s of seen) {
      expect(s.current).toBe(s.identity)
      expect(s.identity).toMatchObject({ sub: 'u-42', tid: 'acme', txn: 'txn-round-trip', roles: ['buyer'], scope: 'orders:write' })
      expect(s.identity.claims.iss).toBe('svc-orders')
      expect(s.identity.claims.act).toEqual({ sub: 'svc-orders' })
      expect(s.identity.destination).toBe(`kafka:${source}`)
    }
    // One send call, one token: both records carry the same one.
    expect(seen[0]?.identity.tokenSha256).toBe(seen[1]?.identity.tokenSha256)

    for (const f of forwarded) {
      expect(f.current).toBe(f.identity)
      expect(f.identity).toMatchObject({ sub: 'u-42', tid: 'acme', txn: 'txn-round-trip', roles: ['buyer'], scope: 'orders:write' })
      expect(f.identity.claims.iss).toBe('svc-billing')
      expect(f.identity.claims.act).toEqual({ sub: 'svc-billing', act: { sub: 'svc-orders' } })
      expect(f.identity.claims.dst).toBe(`kafka:${next}`)
      expect(f.identity.claims.jti).not.toBe(seen[0]?.identity.claims.jti)
    }
  })

  it('eachBatch: every message carries its identity and runInContext carries it on', async () => {
    const [source, next] = (await h.createTopics('rt-batch', 2)) as [string, string]
    const store = createContextStore()
    const ordersProducer = wrapProducer(await h.producer(), { signer: orders.signer, contextStore: store })
    const billingProducer = wrapProducer(await h.producer(), { signer: billing.signer, contextStore: store })
    const verifier = verifierFor([orders, billing])

    // Two calls with two different users: one batch, two contexts.
    await ordersProducer.send({ topic: source, messages: [{ key: 'a-1', value: 'a1' }, { key: 'a-2', value: 'a2' }] }, { context: user })
    await ordersProducer.send({ topic: source, messages: [{ key: 'b-1', value: 'b1' }] }, { context: { sub: 'u-7', tid: 'acme', txn: 'txn-b' } })

    const inBatch: IdctxBatchMessage<'dead-letter'>[] = []
    let outside: unknown = 'unset'
    const consumer = wrapConsumer(h.consumer(), { verifier, tenant: 'acme', contextStore: store, deadLetter: { producer: await h.producer() } })
    await consumer.connect()
    await consumer.subscribe({ topics: [source], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch, runInContext, resolveOffset, heartbeat }) => {
        outside = store.current()
        for (const message of batch.messages) {
          inBatch.push(message)
          await runInContext(message, () =>
            billingProducer.send({ topic: next, messages: [{ key: message.key, value: `billed ${message.key?.toString()}` }] }),
          )
          resolveOffset(message.offset)
          await heartbeat()
        }
      },
    })

    const forwarded = new Map<string, VerifiedContext>()
    const reader = wrapConsumer(h.consumer(), { verifier, tenant: 'acme', policy: 'fail', contextStore: store })
    await reader.connect()
    await reader.subscribe({ topics: [next], fromBeginning: true })
    await reader.run({
      eachMessage: async ({ message, identity }) => {
        forwarded.set(message.key?.toString() ?? '', identity)
      },
    })
    await waitFor('three forwarded records', () => forwarded.size === 3)

    expect(outside).toBeUndefined()
    expect(inBatch.map((m) => [m.key?.toString(), m.identity.sub, m.identity.txn])).toEqual([
      ['a-1', 'u-42', 'txn-round-trip'],
      ['a-2', 'u-42', 'txn-round-trip'],
      ['b-1', 'u-7', 'txn-b'],
    ])
    expect(forwarded.get('a-2')).toMatchObject({ sub: 'u-42', tid: 'acme', txn: 'txn-round-trip' })
    expect(forwarded.get('b-1')).toMatchObject({ sub: 'u-7', tid: 'acme', txn: 'txn-b' })
    for (const identity of forwarded.values()) {
      expect(identity.claims.act).toEqual({ sub: 'svc-billing', act: { sub: 'svc-orders' } })
    }
  })

  it('sendBatch across two topics: one token, a proof on every record, both topics verify', async () => {
    const [a, b] = (await h.createTopics('rt-sb', 2)) as [string, string]
    const producer = wrapProducer(await h.producer(), { signer: orders.signer })
    const verifier = verifierFor([orders])
    await producer.sendBatch(
      {
        topicMessages: [
          { topic: a, messages: [{ key: 'k1', value: 'v1' }, { key: 'k2', value: 'v2' }] },
          { topic: b, messages: [{ key: 'k3', value: 'v3', headers: { keep: 'me' } }] },
        ],
      },
      { context: user },
    )

    const got: { topic: string; identity: VerifiedContext; token: string[]; proof: string[]; keep: string[] }[] = []
    const consumer = wrapConsumer(h.consumer(), { verifier, tenant: 'acme', policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [a, b], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ topic, message, identity }) => {
        got.push({
          topic,
          identity,
          token: headerTexts(message.headers, 'idctx'),
          proof: headerTexts(message.headers, 'idctx-proof'),
          keep: headerTexts(message.headers, 'keep'),
        })
      },
    })
    await waitFor('three records', () => got.length === 3)

    expect(got.filter((g) => g.topic === a)).toHaveLength(2)
    expect(got.filter((g) => g.topic === b)).toHaveLength(1)
    expect(new Set(got.map((g) => g.token[0])).size).toBe(1)
    for (const g of got) {
      expect(g.token).toHaveLength(1)
      expect(g.proof).toHaveLength(1)
      expect(g.proof[0]).toMatch(/^[0-2]\.3\./)
      expect(g.identity.claims.dst).toBeUndefined()
      expect(g.identity.destination).toBe(`kafka:${g.topic}`)
    }
    expect(new Set(got.map((g) => g.proof[0]?.split('.')[0]))).toEqual(new Set(['0', '1', '2']))
    expect(got.find((g) => g.topic === b)?.keep).toEqual(['me'])
  })

  it('traceparent option: added to records without one, never overwriting the caller\'s', async () => {
    const [topic] = (await h.createTopics('rt-tp', 1)) as [string]
    const current = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const callers = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const producer = wrapProducer(await h.producer(), { signer: orders.signer, traceparent: () => current })
    await producer.send(
      { topic, messages: [{ key: 'a', value: '1' }, { key: 'b', value: '2', headers: { traceparent: callers } }] },
      { context: user },
    )
    const seen = new Map<string, string[]>()
    // What the verifier reported for each record, in record order (one partition).
    const verified: (string | undefined)[] = []
    const consumer = wrapConsumer(h.consumer(), {
      verifier: verifierFor([orders], { observer: { onVerified: (e) => void verified.push(e.traceparent) } }),
      tenant: 'acme',
      policy: 'fail',
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.set(String(message.key), headerTexts(message.headers, 'traceparent'))
      },
    })
    await waitFor('two records', () => seen.size === 2)
    expect(seen.get('a')).toEqual([current])
    expect(seen.get('b')).toEqual([callers])
    expect(verified).toEqual([current, callers])
  })

  it('transactions: a committed send arrives verified, an aborted one never arrives under read_committed', async () => {
    const topic = await h.createTopic('rt-tx')
    const producer = wrapProducer(
      await h.producer({ transactionalId: `tx-${topic}`, idempotent: true, maxInFlightRequests: 1 }),
      { signer: orders.signer },
    )
    const verifier = verifierFor([orders])

    const committed = await producer.transaction()
    await committed.send({ topic, messages: [{ key: 'tx-commit-1', value: 'c1' }] }, { context: user })
    await committed.sendBatch({ topicMessages: [{ topic, messages: [{ key: 'tx-commit-2', value: 'c2' }, { key: 'tx-commit-3', value: 'c3' }] }] }, { context: user })
    expect(committed.isActive()).toBe(true)
    await committed.commit()

    const aborted = await producer.transaction()
    await aborted.send({ topic, messages: [{ key: 'tx-abort', value: 'x' }] }, { context: user })
    await aborted.abort()

    const marker = await producer.transaction()
    await marker.send({ topic, messages: [{ key: 'tx-marker', value: 'm' }] }, { context: user })
    await marker.commit()

    const keys: string[] = []
    const subs: string[] = []
    const consumer = wrapConsumer(h.consumer({ readUncommitted: false }), { verifier, tenant: 'acme', policy: 'fail' })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message, identity }) => {
        // Asserted below: an expect() thrown in a handler only makes kafkajs retry the record.
        subs.push(identity.sub)
        keys.push(message.key?.toString() ?? '')
      },
    })
    await waitFor('the marker record', () => keys.includes('tx-marker'))
    expect(keys).toEqual(['tx-commit-1', 'tx-commit-2', 'tx-commit-3', 'tx-marker'])
    expect(subs).toEqual(['u-42', 'u-42', 'u-42', 'u-42'])
  })

  it('refuses to sign without a context, or over an existing idctx header', async () => {
    const topic = await h.createTopic('rt-refuse')
    const producer = wrapProducer(await h.producer(), { signer: orders.signer })
    await expect(producer.send({ topic, messages: [{ value: 'x' }] })).rejects.toBeInstanceOf(SigningError)
    const forwarded = { value: 'x', headers: { idctx: 'eyJ.from.upstream', traceparent: 'tp' } }
    await expect(producer.send({ topic, messages: [forwarded] }, { context: user })).rejects.toThrow(/already has an idctx/)
    await expect(
      producer.sendBatch({ topicMessages: [{ topic, messages: [{ value: 'y', headers: { 'idctx-proof': '0.2' } }] }] }, { context: user }),
    ).rejects.toBeInstanceOf(SigningError)
    expect(await h.recordCount(topic)).toBe(0)

    const lenient = wrapProducer(await h.producer(), { signer: orders.signer, requireContext: false })
    await lenient.send({ topic, messages: [{ value: 'no context' }] })
    await producer.send({ topic, messages: [{ value: 'explicitly unsigned' }] }, { unsigned: true })
    const records = await h.readAll(topic)
    expect(records.map((r) => [r.value, headerTexts(r.headers, 'idctx')])).toEqual([
      ['no context', []],
      ['explicitly unsigned', []],
    ])
  })
})
