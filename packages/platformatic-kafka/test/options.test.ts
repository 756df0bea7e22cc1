import { ConfigError, createSigner, createVerifier, generateKey, ReasonCode } from '@idctx/core'
import { describe, expect, it } from 'vitest'
import { deadLetterMessage, headerOccurrences, headerString, wrapConsumer, wrapProducer, type ConsumerLike, type ProducerLike } from '../src/index.js'

// No client is connected here: a stand-in object is enough to check options and pure helpers.
const key = generateKey('EdDSA', { kid: 'k1' })
const signer = createSigner({ issuer: 'svc', audience: 'aud', key })
const verifier = createVerifier({ audience: 'aud', issuers: { svc: [key] } })
const producer: ProducerLike = { send: async () => ({}) }
const consumer: ConsumerLike = { consume: async () => ({}) as never }

function issuesOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => i.path)
    throw e
  }
  return []
}

describe('wrapConsumer options', () => {
  it('needs a verifier, a tenant and, for dead-letter, a plain producer; unknown keys are refused', () => {
    expect(issuesOf(() => wrapConsumer(consumer, {} as never))).toEqual(['verifier', 'tenant', 'deadLetter'])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip' }))).toEqual([])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'drop' as never }))).toEqual(['policy'])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip', replay: {} } as never))).toEqual(['replay'])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip', redriveGraceSeconds: -1 }))).toEqual(['redriveGraceSeconds'])
    const signing = wrapProducer(producer, { signer })
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', deadLetter: { producer: signing as never } }))).toEqual(['deadLetter.producer'])
  })

  it('refuses a schema registry and the callback form of consume', async () => {
    const c = wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip' })
    await expect(c.consume({ topics: ['t'], registry: {} as never })).rejects.toBeInstanceOf(ConfigError)
    await expect((c.consume as (...a: unknown[]) => Promise<unknown>)({ topics: ['t'] }, () => undefined)).rejects.toBeInstanceOf(TypeError)
  })
})

describe('wrapProducer', () => {
  it('refuses unknown options and a wrong headerType', () => {
    expect(issuesOf(() => wrapProducer(producer, { signer, issuer: 'x' } as never))).toEqual(['issuer'])
    expect(issuesOf(() => wrapProducer(producer, { signer, headerType: 'json' as never }))).toEqual(['headerType'])
  })

  it('signs copies: the caller keeps its Map, the sent message gets Buffer carriers (or strings with headerType string)', async () => {
    const sent: { messages: { headers: Map<unknown, unknown> | Record<string, unknown> }[] }[] = []
    const tap: ProducerLike = { send: async (o) => (sent.push(o as never), {}) }
    const headers = new Map([[Buffer.from('x'), Buffer.from('1')]])
    await wrapProducer(tap, { signer, batchProfile: false }).send({ messages: [{ topic: 't', value: Buffer.from('v'), headers }] }, { context: { sub: 's', tid: 't', txn: 'x' } })
    expect(headers.size).toBe(1)
    const out = sent[0]?.messages[0]?.headers as Map<unknown, unknown>
    expect([...out.keys()].map(String)).toEqual(['x', 'idctx'])
    expect(Buffer.isBuffer([...out.values()][1])).toBe(true)
    await wrapProducer(tap, { signer, batchProfile: false, headerType: 'string' }).send({ messages: [{ topic: 't', value: 'v', headers: { x: '1' } }] } as never, { context: { sub: 's', tid: 't', txn: 'x' } })
    expect(typeof (sent[1]?.messages[0]?.headers as Record<string, unknown>).idctx).toBe('string')
  })

  it('rejects a message that already carries idctx, and a value it cannot bind', async () => {
    const p = wrapProducer(producer, { signer })
    const context = { sub: 's', tid: 't', txn: 'x' }
    await expect(p.send({ messages: [{ topic: 't', headers: new Map([[Buffer.from('idctx'), Buffer.from('t')]]) }] }, { context })).rejects.toMatchObject({ code: 'ERR_IDCTX_SIGNING' })
    await expect(p.send({ messages: [{ topic: 't', value: { a: 1 } as never }] }, { context })).rejects.toBeInstanceOf(TypeError)
  })
})

describe('headers and dead-letter copies over a Map of Buffers', () => {
  it('counts a header repeated under distinct Buffer keys as two occurrences', () => {
    const h = new Map([
      [Buffer.from('idctx'), Buffer.from('a')],
      [Buffer.from('idctx'), Buffer.from('b')],
    ])
    expect(headerOccurrences(h, 'idctx').map(String)).toEqual(['a', 'b'])
    expect(headerString(h, 'idctx')).toBe('a')
  })

  it('keeps every occurrence in the dead-letter copy and notes a null value', () => {
    const copy = deadLetterMessage('t.idctx-dlq', {
      topic: 't',
      partition: 0,
      offset: '7',
      reason: ReasonCode.Duplicate,
      record: { key: Buffer.from('k'), value: null, headers: [[Buffer.from('idctx'), Buffer.from('tok')], [Buffer.from('idctx'), null]] },
    })
    const entries = [...(copy.headers as Map<Buffer, Buffer>)].map(([k, v]) => [k.toString(), v.toString()])
    expect(entries).toEqual([
      ['idctx', 'tok'],
      ['idctx', ''],
      ['idctx-reject-reason', 'duplicate'],
      ['idctx-original-topic', 't'],
      ['idctx-original-partition', '0'],
      ['idctx-original-offset', '7'],
      ['idctx-replaced-values', '[{"name":"idctx","index":1,"type":"null"}]'],
    ])
    expect(copy.key?.toString()).toBe('k')
    expect(copy.value).toBeUndefined()
  })
})
