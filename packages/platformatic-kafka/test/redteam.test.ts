import { ConfigError, createSigner, createVerifier, generateKey, runWithContext, SigningError, type IdentityContext } from '@idctx/core'
import { describe, expect, it } from 'vitest'
import { headerOccurrences, headerString, wrapConsumer, wrapProducer, type ConsumerLike, type ProducerLike } from '../src/index.js'

// Producer-side hostile inputs, against a stand-in producer that records what it was given.
const key = generateKey('EdDSA', { kid: 'k1' })
const signer = createSigner({ issuer: 'svc', audience: 'aud', key })
const verifier = createVerifier({ audience: 'aud', issuers: { svc: [key] } })
const ctx: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 't-1' }
const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const other = '00-11111111111111111111111111111111-2222222222222222-01'

function recording() {
  const sent: { messages: { topic: string; headers?: unknown }[] }[] = []
  const producer: ProducerLike = {
    send: async (o) => {
      sent.push(o as never)
      return {}
    },
  }
  return { sent, producer }
}

describe('@idctx/platformatic-kafka producer red team', () => {
  it('never overwrites a traceparent the message has (Map with Buffer or string key, object)', async () => {
    const { sent, producer } = recording()
    const p = wrapProducer(producer, { signer, traceparent: () => other, batchProfile: false })
    await p.send(
      {
        messages: [
          { topic: 'a', value: 'x', headers: new Map([[Buffer.from('traceparent'), Buffer.from(tp)]]) },
          { topic: 'a', value: 'y', headers: new Map([['traceparent', tp]]) },
          { topic: 'b', value: 'z', headers: { traceparent: tp } },
          { topic: 'c', value: 'w' },
        ],
      },
      { context: ctx },
    )
    const out = sent[0]?.messages ?? []
    expect(out.map((m) => headerOccurrences(m.headers as never, 'traceparent').map((v) => String(v)))).toEqual([[tp], [tp], [tp], [other]])
    // One token for every topic of the call, each with its proof.
    expect(new Set(out.map((m) => headerString(m.headers as never, 'idctx'))).size).toBe(1)
    expect(out.every((m) => headerString(m.headers as never, 'idctx-proof') !== undefined)).toBe(true)
  })

  it('refuses carriers under every key type the client serializes (Buffer, Uint8Array, string, object), leaves case variants alone', async () => {
    const { producer } = recording()
    const p = wrapProducer(producer, { signer, batchProfile: false })
    for (const headers of [
      new Map([[Buffer.from('idctx'), Buffer.from('t')]]),
      new Map([[new Uint8Array(Buffer.from('idctx-proof')), Buffer.from('t')]]),
      new Map([['idctx-ctx', 't']]),
      { idctx: 't' },
      { 'idctx-ctx': null },
    ]) {
      await expect(p.send({ messages: [{ topic: 'a', value: 'v', headers: headers as never }] }, { context: ctx })).rejects.toBeInstanceOf(SigningError)
    }
    await expect(p.send({ messages: [{ topic: 'a', value: 'v', headers: { IDCTX: 'x' } }] }, { context: ctx })).resolves.toBeDefined()
  })

  it('never mutates the caller: messages, arrays, header Maps and objects are unchanged after the send', async () => {
    const { producer } = recording()
    const p = wrapProducer(producer, { signer, traceparent: () => tp })
    const map = new Map([[Buffer.from('x'), Buffer.from('1')]])
    const obj = { y: '2' }
    const messages = [
      { topic: 'a', value: 'v', headers: map },
      { topic: 'b', value: 'w', headers: obj },
    ]
    const frozen = Object.freeze(messages.map((m) => Object.freeze(m)))
    await runWithContext(ctx, () => p.send({ messages: frozen as never }))
    expect(map.size).toBe(1)
    expect(obj).toEqual({ y: '2' })
    expect(messages.map((m) => Object.keys(m))).toEqual([
      ['topic', 'value', 'headers'],
      ['topic', 'value', 'headers'],
    ])
  })

  it('refuses a consumer option that would drop an unreadable record unverified (onCorruptedMessage)', async () => {
    const consumer: ConsumerLike = { consume: async () => ({}) as never }
    const c = wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip' })
    await expect(c.consume({ topics: ['a'], onCorruptedMessage: () => false } as never)).rejects.toBeInstanceOf(ConfigError)
  })
})
