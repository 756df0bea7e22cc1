import { createRequire } from 'node:module'
import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import {
  deadLetterRecord,
  defaultDeadLetterTopic,
  hasIdctxHeaders,
  headerOccurrences,
  headerString,
  headerValues,
  IdctxHeader,
  withoutIdctxHeaders,
} from '../src/index.js'

describe('headerValues', () => {
  it('reads a Buffer (kafkajs), a string (other clients) and an array (repeated key)', () => {
    const b = Buffer.from('tok')
    expect(headerValues({ idctx: b }, 'idctx')).toEqual([b])
    expect(headerValues({ idctx: 'tok' }, 'idctx')).toEqual(['tok'])
    expect(headerValues({ idctx: [b, 'tok2'] }, 'idctx')).toEqual([b, 'tok2'])
  })

  it('has no values when headers or the key are absent', () => {
    expect(headerValues(undefined, 'idctx')).toEqual([])
    expect(headerValues(null, 'idctx')).toEqual([])
    expect(headerValues({}, 'idctx')).toEqual([])
    expect(headerValues({ idctx: undefined }, 'idctx')).toEqual([])
    expect(headerValues({ IDCTX: 'tok' }, 'idctx')).toEqual([])
  })

  it('drops non-values inside an array but keeps every real one (so two tokens stay two)', () => {
    expect(headerValues({ idctx: ['a', undefined as unknown as string, 'b'] }, 'idctx')).toEqual(['a', 'b'])
    expect(headerValues({ idctx: [] }, 'idctx')).toEqual([])
  })

  it('turns a plain Uint8Array into a Buffer over the same bytes', () => {
    const u = new Uint8Array([1, 2, 3]).subarray(1)
    const [v] = headerValues({ x: u as unknown as Buffer }, 'x')
    expect(Buffer.isBuffer(v)).toBe(true)
    expect([...(v as Buffer)]).toEqual([2, 3])
  })

  it('never reads inherited properties', () => {
    expect(headerValues({}, 'constructor')).toEqual([])
    expect(headerValues({}, '__proto__')).toEqual([])
  })
})

describe('headerOccurrences', () => {
  it('counts every occurrence whatever its value; an absent or undefined header has none', () => {
    const t = Buffer.from('t')
    expect(headerOccurrences({ idctx: [t, null as unknown as Buffer] }, 'idctx')).toEqual([t, null])
    expect(headerOccurrences({ idctx: [null as unknown as Buffer, t] }, 'idctx')).toEqual([null, t])
    expect(headerOccurrences({ idctx: null as unknown as Buffer }, 'idctx')).toEqual([null])
    expect(headerOccurrences({ idctx: [t, undefined as unknown as Buffer] }, 'idctx')).toEqual([t, undefined])
    expect(headerOccurrences({ idctx: undefined }, 'idctx')).toEqual([])
    expect(headerOccurrences({}, 'idctx')).toEqual([])
    expect(headerOccurrences(undefined, 'idctx')).toEqual([])
    expect(headerOccurrences({}, '__proto__')).toEqual([])
  })
})

describe('headerString', () => {
  it('decodes the first value as UTF-8', () => {
    expect(headerString({ r: Buffer.from('bad_signature') }, 'r')).toBe('bad_signature')
    expect(headerString({ r: ['first', 'second'] }, 'r')).toBe('first')
    expect(headerString({ r: Buffer.from('é', 'utf8') }, 'r')).toBe('é')
    expect(headerString(undefined, 'r')).toBeUndefined()
  })
})

describe('hasIdctxHeaders / withoutIdctxHeaders', () => {
  it('detects a token or proof header, whatever its value', () => {
    expect(hasIdctxHeaders({ idctx: 't' })).toBe(true)
    expect(hasIdctxHeaders({ 'idctx-proof': Buffer.from('0.2') })).toBe(true)
    expect(hasIdctxHeaders({ idctx: undefined })).toBe(true)
    expect(hasIdctxHeaders({ traceparent: 'x', 'idctx-reject-reason': 'missing' })).toBe(false)
    expect(hasIdctxHeaders(undefined)).toBe(false)
  })

  it('copies everything else, leaving the input untouched', () => {
    const input = { idctx: 't', 'idctx-proof': 'p', traceparent: 'tp', multi: ['a', 'b'], gone: undefined }
    const out = withoutIdctxHeaders(input)
    expect(out).toEqual({ traceparent: 'tp', multi: ['a', 'b'] })
    expect(input.idctx).toBe('t')
    expect(withoutIdctxHeaders(undefined)).toEqual({})
  })
})

describe('deadLetterRecord', () => {
  const message = {
    key: Buffer.from('k'),
    value: Buffer.from('v'),
    timestamp: '1700000000000',
    attributes: 0,
    offset: '42',
    headers: { idctx: Buffer.from('tok'), dup: [Buffer.from('1'), Buffer.from('2')], traceparent: Buffer.from('tp') },
  }

  it('keeps key, value and every header, adds the reason and the original coordinates', () => {
    const r = deadLetterRecord({ topic: 'orders', partition: 3, message, reason: 'binding_mismatch' })
    expect(r.key).toBe(message.key)
    expect(r.value).toBe(message.value)
    expect(r.headers).toEqual({
      ...message.headers,
      [IdctxHeader.RejectReason]: 'binding_mismatch',
      [IdctxHeader.OriginalTopic]: 'orders',
      [IdctxHeader.OriginalPartition]: '3',
      [IdctxHeader.OriginalOffset]: '42',
    })
    expect(r).not.toHaveProperty('timestamp')
    expect(message.headers).not.toHaveProperty(IdctxHeader.RejectReason)
  })

  it('handles records without headers (other clients give undefined) and tombstones', () => {
    const bare = { key: null, value: null, timestamp: '0', attributes: 0, offset: '0', headers: undefined as unknown as Record<string, Buffer> }
    const r = deadLetterRecord({ topic: 't', partition: 0, message: bare, reason: 'missing' })
    expect(r.key).toBeNull()
    expect(r.value).toBeNull()
    expect(Object.keys(r.headers ?? {}).sort()).toEqual([
      IdctxHeader.OriginalOffset,
      IdctxHeader.OriginalPartition,
      IdctxHeader.OriginalTopic,
      IdctxHeader.RejectReason,
    ].sort())
  })

  it('names the default dead-letter topic after the source topic', () => {
    expect(defaultDeadLetterTopic('orders')).toBe('orders.idctx-dlq')
  })
})

// kafkajs's own record encoder and decoder (not part of its public API; kafkajs 2.2.4 is pinned):
// what its producer would write for a record, and what its consumer would read back.
const kafkajsRequire = createRequire(createRequire(import.meta.url).resolve('kafkajs'))
const encodeRecord = kafkajsRequire('./src/protocol/recordBatch/record/v0/index.js') as (r: Message) => { buffer: Buffer }
const decodeRecord = kafkajsRequire('./src/protocol/recordBatch/record/v0/decoder.js') as (
  d: unknown,
  ctx: { firstOffset: string; firstTimestamp: string },
) => KafkaMessage
const Decoder = kafkajsRequire('./src/protocol/decoder.js') as new (b: Buffer) => { readVarInt(): number }

function throughKafkajs(m: Message): KafkaMessage {
  const decoder = new Decoder(encodeRecord(m).buffer)
  decoder.readVarInt() // the record's length
  return decodeRecord(decoder, { firstOffset: '0', firstTimestamp: '0' })
}

describe('deadLetterRecord: always encodable by kafkajs, nothing kept silently', () => {
  const base = { key: Buffer.from('k'), value: Buffer.from('v'), timestamp: '0', attributes: 0, offset: '7' }
  const t = Buffer.from('tok')
  const odd = (v: unknown) => v as Buffer

  it('the kind: null alone, null and undefined in arrays, numbers, booleans, nested arrays, objects, Uint8Array, __proto__', () => {
    const headers: Record<string, unknown> = {
      idctx: [t, null],
      'idctx-proof': [null, Buffer.from('0.2.x')],
      nil: null,
      gap: [Buffer.from('a'), undefined, Buffer.from('b')],
      num: 42,
      flags: [true, 1.5],
      nested: [[Buffer.from('x')], Buffer.from('y')],
      obj: { a: 1 },
      u8: new Uint8Array([104, 105]),
      text: 'plain',
      gone: undefined,
    }
    Object.defineProperty(headers, '__proto__', { value: Buffer.from('p'), enumerable: true, configurable: true, writable: true })
    const message = { ...base, headers: headers as IHeaders }
    // kafkajs refuses the original as it is (this is what kept a partition stuck).
    expect(() => encodeRecord(message)).toThrow()

    const dlq = deadLetterRecord({ topic: 'orders', partition: 1, message, reason: 'duplicate' })
    const back = throughKafkajs(dlq)
    const text = (name: string) => {
      const all = headerOccurrences(back.headers, name) as Buffer[]
      const v = Object.prototype.hasOwnProperty.call(back.headers, name) ? (back.headers as Record<string, unknown>)[name] : undefined
      if (all.length === 0) return undefined
      return Array.isArray(v) && !(name === '__proto__' && all.length === 1) ? all.map((x) => x.toString()) : (all[0] as Buffer).toString()
    }
    expect(text('idctx')).toEqual(['tok', ''])
    expect(text('idctx-proof')).toEqual(['', '0.2.x'])
    expect(text('nil')).toBe('')
    expect(text('gap')).toEqual(['a', '', 'b'])
    expect(text('num')).toBe('42')
    expect(text('flags')).toEqual(['true', '1.5'])
    expect(text('nested')).toEqual(['', 'y'])
    expect(text('obj')).toBe('')
    expect(text('u8')).toBe('hi')
    expect(text('text')).toBe('plain')
    expect(text('gone')).toBeUndefined()
    expect(text('__proto__')).toBe('p')
    expect(text(IdctxHeader.RejectReason)).toBe('duplicate')
    expect(text(IdctxHeader.OriginalOffset)).toBe('7')
    expect(JSON.parse(text(IdctxHeader.ReplacedValues) as string)).toEqual([
      { name: 'idctx', index: 1, type: 'null' },
      { name: 'idctx-proof', index: 0, type: 'null' },
      { name: 'nil', index: 0, type: 'null' },
      { name: 'gap', index: 1, type: 'undefined' },
      { name: 'num', index: 0, type: 'number' },
      { name: 'flags', index: 0, type: 'boolean' },
      { name: 'flags', index: 1, type: 'number' },
      { name: 'nested', index: 0, type: 'array' },
      { name: 'obj', index: 0, type: 'object' },
    ])
    // The consumed record is not modified.
    expect(headers.idctx).toEqual([t, null])
  })

  it('headers named like Object.prototype members: kafkajs decodes them as [member, value]; the copy has the value alone', () => {
    const consumed = throughKafkajs({ ...base, headers: { toString: 'x', constructor: ['a', 'b'], idctx: t } })
    // The decoding quirk this handles:
    expect(consumed.headers?.toString).toEqual([Object.prototype.toString, Buffer.from('x')])
    expect(headerOccurrences(consumed.headers, 'toString')).toEqual([Buffer.from('x')])
    expect(headerOccurrences(consumed.headers, 'constructor')).toEqual([Buffer.from('a'), Buffer.from('b')])
    const dlq = deadLetterRecord({ topic: 'o', partition: 0, message: consumed, reason: 'bad_signature' })
    expect(dlq.headers?.toString).toEqual(Buffer.from('x'))
    expect(dlq.headers?.constructor).toEqual([Buffer.from('a'), Buffer.from('b')])
    expect(dlq.headers).not.toHaveProperty(IdctxHeader.ReplacedValues)
    const back = throughKafkajs(dlq)
    expect(headerOccurrences(back.headers, 'toString')).toEqual([Buffer.from('x')])
    expect(headerOccurrences(back.headers, 'constructor')).toEqual([Buffer.from('a'), Buffer.from('b')])
  })

  it('a record that went through kafkajs with null header values (as another client can send them) is encodable again', () => {
    const consumed = { ...base, headers: { idctx: [t, odd(null)], 'idctx-proof': odd(null) } }
    const back = throughKafkajs(deadLetterRecord({ topic: 'o', partition: 0, message: consumed, reason: 'duplicate' }))
    expect(back.headers?.idctx).toEqual([t, Buffer.alloc(0)])
    expect(JSON.parse(String(back.headers?.[IdctxHeader.ReplacedValues]))).toEqual([
      { name: 'idctx', index: 1, type: 'null' },
      { name: 'idctx-proof', index: 0, type: 'null' },
    ])
  })

  it('no idctx-replaced-values when every value was bytes or text; forged dead-letter headers are replaced', () => {
    const message = {
      ...base,
      headers: { a: t, [IdctxHeader.ReplacedValues]: Buffer.from('[]'), [IdctxHeader.RejectReason]: Buffer.from('forged') },
    }
    const r = deadLetterRecord({ topic: 'o', partition: 0, message, reason: 'missing' })
    expect(Object.keys(r.headers ?? {}).sort()).toEqual(
      ['a', IdctxHeader.RejectReason, IdctxHeader.OriginalTopic, IdctxHeader.OriginalPartition, IdctxHeader.OriginalOffset].sort(),
    )
    expect(r.headers?.[IdctxHeader.RejectReason]).toBe('missing')
  })
})

describe('withoutIdctxHeaders: the forwarded copy is sendable by kafkajs', () => {
  it('drops values kafkajs cannot send and the decoding artifact of Object.prototype names; keeps every byte and text value', () => {
    const consumed = throughKafkajs({
      key: 'k',
      value: 'v',
      headers: { idctx: 't', toString: 'x', constructor: ['c1', 'c2'], traceparent: 'tp' },
    })
    const edited = { ...consumed.headers, nil: null, gap: ['a', null, 'b'], num: 3, u8: new Uint8Array([104, 105]) } as unknown as IHeaders
    const out = withoutIdctxHeaders(edited)
    expect(out).toEqual({
      toString: Buffer.from('x'),
      constructor: [Buffer.from('c1'), Buffer.from('c2')],
      traceparent: Buffer.from('tp'),
      gap: ['a', 'b'],
      u8: Buffer.from('hi'),
    })
    const back = throughKafkajs({ key: 'k', value: 'v', headers: out })
    expect(headerOccurrences(back.headers, 'toString')).toEqual([Buffer.from('x')])
    expect(headerOccurrences(back.headers, 'gap')).toEqual([Buffer.from('a'), Buffer.from('b')])
    expect(headerOccurrences(back.headers, 'idctx')).toEqual([])
  })
})
