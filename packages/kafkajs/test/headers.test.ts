import { describe, expect, it } from 'vitest'
import {
  deadLetterRecord,
  defaultDeadLetterTopic,
  hasIdctxHeaders,
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
