import { AsyncLocalStorage } from 'node:async_hooks'
import {
  createContextStore,
  createSigner,
  ReasonCode,
  runWithContext,
  SigningError,
  type DispositionEvent,
  type IdentityContext,
  type SignedEvent,
  type VerifiedContext,
} from '@idctx/core'
import type { IHeaders, Message, ProducerBatch, ProducerRecord } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { IdctxHeader, wrapConsumer, wrapProducer, type ProducerLike } from '../src/index.js'
import { AUDIENCE, FakeConsumer, key, messagePayload, record, verifier } from './fake-kafka.js'

const TOPIC = 'orders'
const user = (i: number): IdentityContext => ({ sub: `u-${i}`, tid: i % 2 === 0 ? 'acme' : 'globex', txn: `txn-${i}` })
const typOf = (token: unknown) => (JSON.parse(Buffer.from(String(token).split('.')[0] as string, 'base64url').toString()) as { typ: string }).typ

/** A producer that logs every client call in order, with what a Kafka instrumentation would see as its span. */
class LoggingProducer implements ProducerLike {
  readonly log: { op: string; record?: ProducerRecord; span: string | undefined }[] = []
  readonly spans = new AsyncLocalStorage<string>()
  /** Calls whose value is this text fail, as a broker error would. */
  failValue: string | undefined
  async send(record: ProducerRecord) {
    this.log.push({ op: 'send', record, span: this.spans.getStore() })
    if (record.messages.some((m) => m.value === this.failValue)) throw new Error('broker says no')
    return []
  }
  async sendBatch(batch: ProducerBatch) {
    for (const t of batch.topicMessages ?? []) this.log.push({ op: 'sendBatch', record: t, span: this.spans.getStore() })
    return []
  }
  async transaction() {
    const log = this.log
    const tx = {
      send: (r: ProducerRecord) => this.send(r),
      sendBatch: (b: ProducerBatch) => this.sendBatch(b),
      commit: async () => void log.push({ op: 'commit', span: undefined }),
      abort: async () => void log.push({ op: 'abort', span: undefined }),
      sendOffsets: async (_offsets: unknown) => void log.push({ op: 'sendOffsets', span: undefined }),
      isActive: () => true,
    }
    return tx
  }
  async disconnect() {
    this.log.push({ op: 'disconnect', span: undefined })
  }
  sentMessages(): Message[] {
    return this.log.flatMap((e) => e.record?.messages ?? [])
  }
}

function setup(options: { batchProfile?: boolean; maxBatchRecords?: number; traceparent?: () => string | undefined } = {}) {
  const signed: SignedEvent[] = []
  const signer = createSigner({ issuer: 'svc', audience: AUDIENCE, key, observer: { onSigned: (e) => signed.push(e) } })
  const raw = new LoggingProducer()
  const producer = wrapProducer(raw, { signer, ...options })
  return { raw, producer, signed }
}

/** Delivers the sent records to a wrapped consumer (offsets in send order) and collects verdicts. */
async function consume(messages: readonly Message[], edit?: (headers: IHeaders, i: number) => void, topic = TOPIC) {
  const fake = new FakeConsumer()
  const seen: { value: string; identity: VerifiedContext | undefined }[] = []
  const dispositions: DispositionEvent[] = []
  const consumer = wrapConsumer(fake, { verifier: verifier(), tenant: { any: true }, policy: 'skip', observer: { onDisposition: (e) => void dispositions.push(e) } })
  await consumer.run({
    eachMessage: async ({ message, identity }) => void seen.push({ value: String(message.value), identity }),
  })
  for (const [i, m] of messages.entries()) {
    const headers: IHeaders = {}
    for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = typeof v === 'string' ? Buffer.from(v) : (v as Buffer)
    edit?.(headers, i)
    await fake.eachMessage(messagePayload(topic, record(i, String(m.key), String(m.value), headers)))
  }
  return { seen, reasons: dispositions.map((d) => d.reason) }
}

describe('wrapProducer: one signature per event-loop turn', () => {
  it('16 sends of 16 users in one turn: one token; every record verifies with its own user', async () => {
    const { raw, producer, signed } = setup()
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => runWithContext(user(i), () => producer.send({ topic: TOPIC, messages: [{ key: `k${i}`, value: `v${i}` }] }))),
    )
    expect(signed).toHaveLength(1)
    expect(signed[0]).toMatchObject({ profile: 'batch', count: 16, contexts: 16, destinations: [`kafka:${TOPIC}`] })
    const sent = raw.sentMessages()
    expect(sent.map((m) => m.value)).toEqual(Array.from({ length: 16 }, (_, i) => `v${i}`))
    for (const m of sent) {
      expect(Object.keys(m.headers ?? {}).sort()).toEqual([IdctxHeader.Token, IdctxHeader.Context, IdctxHeader.Proof].sort())
      expect(typOf(m.headers?.[IdctxHeader.Token])).toBe('idctx-batch+jwt')
    }
    const { seen, reasons } = await consume(sent)
    expect(reasons).toEqual([])
    expect(seen.map((s) => [s.value, s.identity?.sub, s.identity?.tid, s.identity?.txn])).toEqual(
      Array.from({ length: 16 }, (_, i) => [`v${i}`, `u-${i}`, user(i).tid, `txn-${i}`]),
    )
  })

  it('sends what was signed when send was called, whatever the caller does with its objects before the turn ends', async () => {
    for (const batchProfile of [true, false]) {
      const { raw, producer } = setup({ batchProfile })
      const messages: Message[] = [{ key: 'a', value: 'original', headers: { keep: 'me' } }]
      const other = producer.send({ topic: TOPIC, messages: [{ key: 'o', value: 'other' }] }, { context: user(2) })
      const sent = producer.send({ topic: TOPIC, messages }, { context: user(1) })
      // The caller reuses its objects at once: a new value, a new header, one more message.
      ;(messages[0] as Message).value = 'changed'
      ;((messages[0] as Message).headers as Record<string, string>).extra = 'x'
      messages.push({ key: 'b', value: 'pushed' })
      await Promise.all([other, sent])
      const out = raw.sentMessages()
      expect(out.map((m) => String(m.value))).toEqual(['other', 'original'])
      expect(out[1]?.headers?.keep).toBe('me')
      expect(out[1]?.headers?.extra).toBeUndefined()
      const { seen, reasons } = await consume(out)
      expect(reasons).toEqual([])
      expect(seen.map((x) => [x.value, x.identity?.sub])).toEqual([['other', 'u-2'], ['original', 'u-1']])
    }
  })

  it('a send alone in its turn emits the single profile, exactly as before (no idctx-ctx, no proof)', async () => {
    const { raw, producer, signed } = setup()
    await producer.send({ topic: TOPIC, messages: [{ key: 'k', value: 'v' }] }, { context: user(1) })
    const [m] = raw.sentMessages()
    expect(Object.keys(m?.headers ?? {})).toEqual([IdctxHeader.Token])
    expect(typOf(m?.headers?.[IdctxHeader.Token])).toBe('idctx+jwt')
    expect(signed.map((e) => e.profile)).toEqual(['single'])
    const { seen } = await consume(raw.sentMessages())
    expect(seen[0]?.identity?.sub).toBe('u-1')
  })

  it('batchProfile: false signs every call at once with its own token', async () => {
    const { raw, producer, signed } = setup({ batchProfile: false })
    const p = Promise.all(Array.from({ length: 4 }, (_, i) => producer.send({ topic: TOPIC, messages: [{ value: `v${i}` }] }, { context: user(i) })))
    // signed before the call returns: nothing waits for the end of the turn
    expect(signed).toHaveLength(4)
    await p
    expect(raw.sentMessages().every((m) => Object.keys(m.headers ?? {}).length === 1)).toBe(true)
  })

  it('sendBatch and send of one turn share the token; records keep their order per call, calls per producer', async () => {
    const { raw, producer, signed } = setup()
    await Promise.all([
      producer.sendBatch({ topicMessages: [{ topic: TOPIC, messages: [{ value: 'a1' }, { value: 'a2' }] }, { topic: 'payments', messages: [{ value: 'a3' }] }] }, { context: user(0) }),
      producer.send({ topic: TOPIC, messages: [{ value: 'b1' }] }, { context: user(1) }),
      producer.send({ topic: TOPIC, messages: [{ value: 'c1' }, { value: 'c2' }] }, { context: user(2) }),
    ])
    expect(signed).toHaveLength(1)
    expect(raw.log.map((e) => `${e.op}:${e.record?.messages.map((m) => m.value).join(',')}`)).toEqual(['sendBatch:a1,a2', 'sendBatch:a3', 'send:b1', 'send:c1,c2'])
    const ctx = raw.sentMessages().map((m) => m.headers?.[IdctxHeader.Context])
    expect(ctx[0]).toBe(ctx[1])
    expect(ctx[0]).toBe(ctx[2])
    expect(ctx[3]).not.toBe(ctx[0])
    expect(ctx[4]).toBe(ctx[5])
  })

  it('a bad call fails alone, before signing; the rest of the turn is signed and sent', async () => {
    const { raw, producer, signed } = setup()
    const outcomes = await Promise.allSettled([
      producer.send({ topic: TOPIC, messages: [{ value: 'ok-1' }] }, { context: user(1) }),
      producer.send({ topic: TOPIC, messages: [{ value: 42 as never }] }, { context: user(2) }),
      producer.send({ topic: TOPIC, messages: [{ value: 'v', headers: { [IdctxHeader.Context]: 'forwarded' } }] }, { context: user(3) }),
      producer.send({ topic: TOPIC, messages: [{ value: 'v' }] }, { context: { sub: '', tid: 'acme', txn: 't' } }),
      producer.send({ topic: TOPIC, messages: [{ value: 'v' }] }),
      producer.send({ topic: TOPIC, messages: [{ value: 'ok-2' }] }, { context: user(4) }),
    ])
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'sent' : (o.reason as Error).name))).toEqual(['sent', 'TypeError', 'SigningError', 'SigningError', 'SigningError', 'sent'])
    expect(signed).toHaveLength(1)
    expect(signed[0]?.count).toBe(2)
    expect(raw.sentMessages().map((m) => m.value)).toEqual(['ok-1', 'ok-2'])
  })

  it('a broker error fails its own call only', async () => {
    const { raw, producer } = setup()
    raw.failValue = 'boom'
    const outcomes = await Promise.allSettled(['a', 'boom', 'c'].map((value, i) => producer.send({ topic: TOPIC, messages: [{ value }] }, { context: user(i) })))
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
  })

  it('an unsigned call keeps its place behind the signed calls made before it', async () => {
    const { raw, producer } = setup()
    await Promise.all([
      producer.send({ topic: TOPIC, messages: [{ value: '1' }] }, { context: user(1) }),
      producer.send({ topic: TOPIC, messages: [{ value: '2' }] }, { unsigned: true }),
      producer.send({ topic: TOPIC, messages: [{ value: '3' }] }, { context: user(3) }),
      producer.sendBatch({}, { context: user(4) }),
    ])
    expect(raw.log.map((e) => e.record?.messages[0]?.value ?? e.op)).toEqual(['1', '2', '3'])
    expect(raw.sentMessages()[1]?.headers).toBeUndefined()
  })

  it('the client is called from each caller\'s own async context (a Kafka instrumentation sees the caller\'s span)', async () => {
    const { raw, producer } = setup()
    await Promise.all(Array.from({ length: 5 }, (_, i) => raw.spans.run(`span-${i}`, () => producer.send({ topic: TOPIC, messages: [{ value: `v${i}` }] }, { context: user(i) }))))
    expect(raw.log.map((e) => e.span)).toEqual(['span-0', 'span-1', 'span-2', 'span-3', 'span-4'])
  })

  it('traceparent and trc are read when the call is made', async () => {
    let current = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const signer = createSigner({ issuer: 'svc', audience: AUDIENCE, key, traceId: () => current.split('-')[1] })
    const raw = new LoggingProducer()
    const producer = wrapProducer(raw, { signer, traceparent: () => current })
    const first = producer.send({ topic: TOPIC, messages: [{ value: 'a' }] }, { context: user(1) })
    const firstTrace = current
    current = '00-11111111111111111111111111111111-b7ad6b7169203331-01'
    const second = producer.send({ topic: TOPIC, messages: [{ value: 'b' }] }, { context: user(2) })
    await Promise.all([first, second])
    const [a, b] = raw.sentMessages()
    expect(a?.headers?.traceparent).toBe(firstTrace)
    expect(b?.headers?.traceparent).toBe(current)
    expect(JSON.parse(String(a?.headers?.[IdctxHeader.Context])).trc).toBe('0af7651916cd43dd8448eb211c80319c')
    expect(JSON.parse(String(b?.headers?.[IdctxHeader.Context])).trc).toBe('11111111111111111111111111111111')
  })

  it('maxBatchRecords: a turn above the cap is signed in several tokens', async () => {
    const { producer, signed } = setup({ maxBatchRecords: 4 })
    await Promise.all(Array.from({ length: 10 }, (_, i) => producer.send({ topic: TOPIC, messages: [{ value: `v${i}` }] }, { context: user(i) })))
    expect(signed.map((e) => e.count)).toEqual([4, 4, 2])
  })

  it('a transaction flushes before commit and sendOffsets: its records are signed and sent first', async () => {
    const { raw, producer, signed } = setup()
    const tx = await producer.transaction()
    const sends = [0, 1, 2].map((i) => tx.send({ topic: TOPIC, messages: [{ value: `t${i}` }] }, { context: user(i) }))
    await tx.sendOffsets({ consumerGroupId: 'g', topics: [] })
    const more = tx.send({ topic: TOPIC, messages: [{ value: 't3' }] }, { context: user(3) })
    await tx.commit()
    await Promise.all([...sends, more])
    expect(raw.log.map((e) => e.record?.messages[0]?.value ?? e.op)).toEqual(['t0', 't1', 't2', 'sendOffsets', 't3', 'commit'])
    expect(signed.map((e) => e.profile)).toEqual(['batch', 'single'])
  })

  it('a transaction and the producer share a turn; abort also waits for the transaction\'s sends', async () => {
    const { raw, producer, signed } = setup()
    const tx = await producer.transaction()
    const calls = [tx.send({ topic: TOPIC, messages: [{ value: 'tx' }] }, { context: user(1) }), producer.send({ topic: TOPIC, messages: [{ value: 'plain' }] }, { context: user(2) })]
    await tx.abort()
    await Promise.all(calls)
    expect(raw.log.map((e) => e.record?.messages[0]?.value ?? e.op)).toEqual(['tx', 'plain', 'abort'])
    expect(signed).toHaveLength(1)
  })

  it('disconnect waits for the calls made before it', async () => {
    const { raw, producer } = setup()
    const p = producer.send({ topic: TOPIC, messages: [{ value: 'last' }] }, { context: user(1) })
    await producer.disconnect()
    await p
    expect(raw.log.map((e) => e.record?.messages[0]?.value ?? e.op)).toEqual(['last', 'disconnect'])
  })

  it('a wrapped consumer handler forwarding for many records in one turn: one token, each its own identity', async () => {
    const store = createContextStore()
    const { raw, producer, signed } = setup()
    const forward = wrapProducer(raw, { signer: createSigner({ issuer: 'svc', audience: AUDIENCE, key, observer: { onSigned: (e) => signed.push(e) } }), contextStore: store })
    await Promise.all([0, 1, 2].map((i) => producer.send({ topic: TOPIC, messages: [{ key: `k${i}`, value: `v${i}` }] }, { context: user(i) })))
    const fake = new FakeConsumer()
    const consumer = wrapConsumer(fake, { verifier: verifier(), tenant: { any: true }, policy: 'fail', contextStore: store })
    await consumer.run({
      eachMessage: async ({ message }) => {
        await forward.send({ topic: 'next', messages: [{ key: `f${String(message.key)}`, value: `fwd-${String(message.value)}` }] })
      },
    })
    const incoming = raw.sentMessages()
    await Promise.all(incoming.map((m, i) => fake.eachMessage(messagePayload(TOPIC, record(i, String(m.key), String(m.value), m.headers as IHeaders)))))
    expect(signed.map((e) => e.profile)).toEqual(['batch', 'batch'])
    const forwarded = raw.sentMessages().slice(3)
    const { seen } = await consume(forwarded, undefined, 'next')
    expect(seen.map((s) => [s.value, s.identity?.sub, s.identity?.claims.act])).toEqual([0, 1, 2].map((i) => [`fwd-v${i}`, `u-${i}`, { sub: 'svc', act: { sub: 'svc' } }]))
  })
})

describe('wrapConsumer: batch-profile carriers', () => {
  async function turnOfThree() {
    const { raw, producer } = setup()
    await Promise.all([0, 1, 2].map((i) => producer.send({ topic: TOPIC, messages: [{ key: `k${i}`, value: `v${i}` }] }, { context: user(i) })))
    return raw.sentMessages()
  }

  it('a record moved under another record\'s context record (and proof) is binding_mismatch', async () => {
    const sent = await turnOfThree()
    const { reasons, seen } = await consume(sent, (h, i) => {
      if (i === 0) {
        h[IdctxHeader.Context] = Buffer.from(String(sent[1]?.headers?.[IdctxHeader.Context]))
      }
      if (i === 2) {
        h[IdctxHeader.Context] = Buffer.from(String(sent[1]?.headers?.[IdctxHeader.Context]))
        h[IdctxHeader.Proof] = Buffer.from(String(sent[1]?.headers?.[IdctxHeader.Proof]))
      }
    })
    expect(reasons).toEqual([ReasonCode.BindingMismatch, ReasonCode.BindingMismatch])
    expect(seen.map((s) => s.identity?.sub)).toEqual(['u-1'])
  })

  it('counts every idctx-ctx occurrence: none with a batch token and one with a single token are malformed, two are duplicate', async () => {
    const sent = await turnOfThree()
    const { raw, producer } = setup()
    await producer.send({ topic: TOPIC, messages: [{ key: 'k3', value: 'v3' }] }, { context: user(3) })
    const single = raw.sentMessages()
    const { reasons } = await consume([...sent, ...single], (h, i) => {
      if (i === 0) delete h[IdctxHeader.Context]
      if (i === 1) h[IdctxHeader.Context] = [h[IdctxHeader.Context] as Buffer, null as unknown as Buffer]
      if (i === 2) h[IdctxHeader.Context] = null as unknown as Buffer
      if (i === 3) h[IdctxHeader.Context] = Buffer.from(String(sent[0]?.headers?.[IdctxHeader.Context]))
    })
    expect(reasons).toEqual(['malformed', 'duplicate', 'malformed', 'malformed'])
  })

  it('the record\'s own tenant is checked against the consumer\'s', async () => {
    const sent = await turnOfThree()
    const fake = new FakeConsumer()
    const reasons: string[] = []
    const seen: string[] = []
    const consumer = wrapConsumer(fake, { verifier: verifier(), tenant: 'acme', policy: 'skip', observer: { onDisposition: (e) => void reasons.push(e.reason) } })
    await consumer.run({ eachMessage: async ({ identity }) => void seen.push(identity.sub) })
    for (const [i, m] of sent.entries()) await fake.eachMessage(messagePayload(TOPIC, record(i, String(m.key), String(m.value), m.headers as IHeaders)))
    expect(seen).toEqual(['u-0', 'u-2'])
    expect(reasons).toEqual(['tenant_mismatch'])
  })
})

it('a SigningError names no value of the context', async () => {
  const { producer } = setup()
  const e = await producer.send({ topic: TOPIC, messages: [{ value: 'v' }] }, { context: { sub: 'secret-user', tid: '', txn: 't' } }).catch((x: unknown) => x)
  expect(e).toBeInstanceOf(SigningError)
  expect(String((e as Error).message)).not.toContain('secret-user')
})
