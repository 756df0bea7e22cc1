import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { bullmqDestination, bullmqLeaf, canonicalJobData, httpDestination, httpLeaf, kafkaDestination, kafkaLeaf, messageLeaf } from '@idctx/core'

const hex = (b: Buffer) => b.toString('hex')

describe('leaf: destinations', () => {
  it('spells Kafka and BullMQ destinations as in dst', () => {
    expect(kafkaDestination('orders')).toBe('kafka:orders')
    expect(bullmqDestination('invoices', 'invoice')).toBe('bullmq:invoices/invoice')
  })
})

describe('leaf: encoding', () => {
  it('is SHA-256 of 0x00, the domain tag and length-prefixed destination, key and value', () => {
    const u32 = (n: number) => {
      const b = Buffer.alloc(4)
      b.writeUInt32BE(n)
      return b
    }
    const expected = createHash('sha256')
      .update(Buffer.concat([
        Buffer.from([0]),
        Buffer.from('idctx-leaf-v1\0', 'latin1'),
        u32(12), Buffer.from('kafka:orders'),
        u32(1), Buffer.from('k'),
        u32(0xffffffff),
      ]))
      .digest()
    expect(hex(kafkaLeaf('orders', 'k', null))).toBe(hex(expected))
  })

  it('is 32 bytes and deterministic', () => {
    const a = kafkaLeaf('orders', 'k', Buffer.from('v'))
    expect(a).toHaveLength(32)
    expect(a.equals(kafkaLeaf('orders', 'k', Buffer.from('v')))).toBe(true)
  })

  it('takes strings as UTF-8 and Uint8Array views by their bytes', () => {
    const bytes = Buffer.from('{"é":1}', 'utf8')
    const backing = new Uint8Array(bytes.length + 8)
    backing.set(bytes, 4)
    const view = new Uint8Array(backing.buffer, 4, bytes.length)
    const s = kafkaLeaf('t', 'key', '{"é":1}')
    expect(kafkaLeaf('t', 'key', bytes).equals(s)).toBe(true)
    expect(kafkaLeaf('t', Buffer.from('key'), view).equals(s)).toBe(true)
    expect(kafkaLeaf('t', 'key', Buffer.from('{"é":1}', 'latin1')).equals(s)).toBe(false)
  })

  it('null and empty differ, for the key and for the value (a tombstone is not an empty value)', () => {
    const leaves = [
      kafkaLeaf('t', null, 'v'),
      kafkaLeaf('t', '', 'v'),
      kafkaLeaf('t', 'k', null),
      kafkaLeaf('t', 'k', ''),
      kafkaLeaf('t', null, null),
      kafkaLeaf('t', '', ''),
    ].map(hex)
    expect(new Set(leaves).size).toBe(leaves.length)
    expect(kafkaLeaf('t', undefined, 'v').equals(kafkaLeaf('t', null, 'v'))).toBe(true)
  })

  it('lengths keep field boundaries: moving bytes between fields changes the leaf', () => {
    const leaves = [
      messageLeaf('kafka:ab', 'c', 'd'),
      messageLeaf('kafka:a', 'bc', 'd'),
      messageLeaf('kafka:a', 'b', 'cd'),
      messageLeaf('kafka:abc', '', 'd'),
      messageLeaf('kafka:abcd', null, null),
    ].map(hex)
    expect(new Set(leaves).size).toBe(leaves.length)
  })

  it('Kafka and BullMQ leaves differ for the same name and bytes', () => {
    const data = { n: 1 }
    const json = canonicalJobData(data)
    expect(kafkaLeaf('q', null, json).equals(bullmqLeaf('q', 'job', data))).toBe(false)
    // even a topic spelled like the queue destination stays apart: the prefix is part of the leaf
    expect(kafkaLeaf('q/job', null, json).equals(bullmqLeaf('q', 'job', data))).toBe(false)
    expect(messageLeaf('bullmq:q/job', null, json).equals(bullmqLeaf('q', 'job', data))).toBe(true)
  })

  it('the destination is bound: another topic or job name gives another leaf', () => {
    expect(kafkaLeaf('a', 'k', 'v').equals(kafkaLeaf('b', 'k', 'v'))).toBe(false)
    expect(bullmqLeaf('q', 'a', { n: 1 }).equals(bullmqLeaf('q', 'b', { n: 1 }))).toBe(false)
    expect(bullmqLeaf('q', 'a', { n: 1 }).equals(bullmqLeaf('r', 'a', { n: 1 }))).toBe(false)
  })
})

describe('leaf: BullMQ canonical job data (RFC 8785)', () => {
  it('is independent of key order, at every depth', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'é' } }
    const b = { a: { c: 'é', d: [1, { x: 1, y: 2 }] }, b: 1 }
    expect(canonicalJobData(a)).toBe('{"a":{"c":"é","d":[1,{"x":1,"y":2}]},"b":1}')
    expect(bullmqLeaf('q', 'j', a).equals(bullmqLeaf('q', 'j', b))).toBe(true)
  })

  it('keeps array order', () => {
    expect(bullmqLeaf('q', 'j', { a: [1, 2] }).equals(bullmqLeaf('q', 'j', { a: [2, 1] }))).toBe(false)
  })

  it('excludes the reserved __idctx field, whatever it holds', () => {
    const data = { total: 3, tenant: 'acme' }
    expect(canonicalJobData({ ...data, __idctx: 'eyJ.token.sig' })).toBe(canonicalJobData(data))
    expect(bullmqLeaf('q', 'j', { __idctx: 'x', ...data }).equals(bullmqLeaf('q', 'j', data))).toBe(true)
    expect(bullmqLeaf('q', 'j', { ...data, __idctx: { nested: true } }).equals(bullmqLeaf('q', 'j', data))).toBe(true)
    // only the top-level reserved key is excluded
    expect(bullmqLeaf('q', 'j', { ...data, inner: { __idctx: 'x' } }).equals(bullmqLeaf('q', 'j', { ...data, inner: {} }))).toBe(false)
  })

  it('does not mutate the job data', () => {
    const data = { b: 1, a: 2, __idctx: 't' }
    canonicalJobData(data)
    expect(data).toEqual({ b: 1, a: 2, __idctx: 't' })
  })

  it('supports another reserved key', () => {
    expect(canonicalJobData({ a: 1, _ctx: 'x' }, '_ctx')).toBe('{"a":1}')
  })

  it('normalises numbers as JSON does (1.0 and 1 are the same JSON number)', () => {
    expect(canonicalJobData({ n: 1.0, m: 1e21, z: -0 })).toBe('{"m":1e+21,"n":1,"z":0}')
  })

  it('equals the canonical form of what the consumer reads back after a JSON round trip', () => {
    const data: Record<string, unknown> = {
      when: new Date(0),
      skip: undefined,
      fn: () => 1,
      nan: Number.NaN,
      inf: Number.POSITIVE_INFINITY,
      nested: { fn: () => 2, list: [1, undefined, () => 3, Number.NaN], map: new Map([[1, 2]]) },
    }
    const roundTrip = JSON.parse(JSON.stringify(data)) as Record<string, unknown>
    expect(canonicalJobData(data)).toBe(canonicalJobData(roundTrip))
    expect(canonicalJobData(data)).toBe('{"inf":null,"nan":null,"nested":{"list":[1,null,null,null],"map":{}},"when":"1970-01-01T00:00:00.000Z"}')
    expect(bullmqLeaf('q', 'j', data).equals(bullmqLeaf('q', 'j', roundTrip))).toBe(true)
  })

  it('refuses data that is not representable as JSON with a TypeError', () => {
    expect(() => canonicalJobData({ n: 1n })).toThrow(TypeError)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => canonicalJobData(cyclic)).toThrow(TypeError)
  })
})

describe('leaf: HTTP requests', () => {
  it('spells the destination as method, authority and path; lower-cases the authority', () => {
    expect(httpDestination('POST', 'Orders.Internal:8443', '/orders')).toBe('http:POST orders.internal:8443/orders')
  })

  it('percent-encodes what could end a part, keeps escapes the client made', () => {
    expect(httpDestination('GET', 'a', '/x y/%2F/%zz/é')).toBe('http:GET a/x%20y/%2F/%25zz/%C3%A9')
  })

  it('refuses a method that is not a token, userinfo, a relative path, a destination over 512 bytes', () => {
    expect(() => httpDestination('PO ST', 'a', '/')).toThrow(TypeError)
    expect(() => httpDestination('GET', 'user@a', '/')).toThrow(TypeError)
    expect(() => httpDestination('GET', 'a/b', '/')).toThrow(TypeError)
    expect(() => httpDestination('GET', 'a', 'x')).toThrow(TypeError)
    expect(() => httpDestination('GET', 'a', `/${'x'.repeat(600)}`)).toThrow(TypeError)
  })

  it('binds method, authority, path, query and body: changing any one changes the leaf', () => {
    const base = hex(httpLeaf('POST', 'orders', '/orders?a=1', Buffer.from('{}')))
    const variants = [
      httpLeaf('PUT', 'orders', '/orders?a=1', Buffer.from('{}')),
      httpLeaf('POST', 'billing', '/orders?a=1', Buffer.from('{}')),
      httpLeaf('POST', 'orders', '/refunds?a=1', Buffer.from('{}')),
      httpLeaf('POST', 'orders', '/orders?a=2', Buffer.from('{}')),
      httpLeaf('POST', 'orders', '/orders?a=1', Buffer.from('{ }')),
      // the query moved into the path is another request
      httpLeaf('POST', 'orders', '/orders%3Fa=1', Buffer.from('{}')),
    ].map(hex)
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1)
  })

  it('is the message leaf of the destination, the query as key and the body as value', () => {
    expect(hex(httpLeaf('GET', 'a', '/p?q=1#frag', null))).toBe(hex(messageLeaf('http:GET a/p', 'q=1', '')))
    // no body and an empty body, no query and an empty one, are the same on the wire
    expect(hex(httpLeaf('GET', 'a', '/p', null))).toBe(hex(httpLeaf('GET', 'a', '/p?', '')))
  })
})
