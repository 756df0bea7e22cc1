import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { canonicalJobData, SigningError } from '@idctx/core'
import { isPlainObject, signableData } from '@idctx/bullmq'
import { withoutCarrier } from '../src/job-data.js'

const jsonObject = fc.dictionary(fc.string(), fc.jsonValue()) as fc.Arbitrary<Record<string, unknown>>

describe('signable job data', () => {
  it('accepts any JSON object, and its canonical bytes survive the JSON round trip BullMQ makes', () => {
    fc.assert(
      fc.property(jsonObject, (data) => {
        fc.pre(!Object.prototype.hasOwnProperty.call(data, '__idctx'))
        expect(signableData(data)).toBe(data)
        expect(canonicalJobData(JSON.parse(JSON.stringify(data)) as Record<string, unknown>)).toBe(canonicalJobData(data))
      }),
    )
  })

  it('treats undefined as {} and drops undefined properties as JSON does', () => {
    expect(signableData(undefined)).toEqual({})
    const data = { a: 1, b: undefined }
    expect(signableData(data)).toBe(data)
    expect(canonicalJobData(data)).toBe(canonicalJobData(JSON.parse(JSON.stringify(data)) as Record<string, unknown>))
  })

  it('accepts null-prototype objects and refuses what JSON would change, naming the path but no value', () => {
    expect(signableData(Object.assign(Object.create(null) as object, { a: 1 }))).toEqual({ a: 1 })
    const cases: [unknown, RegExp][] = [
      [[1], /got an array/],
      [null, /got null/],
      [new Date(), /an instance of Date/],
      [{ a: { b: [{ c: new Set() }] } }, /data\.a\.b\[0\]\.c is an instance of Set/],
      [{ 'user@example.com': new Date(0) }, /data\[…\] is an instance of Date/],
      [{ n: -Infinity }, /non-finite/],
      [{ s: Symbol('x') }, /a symbol/],
      [{ __idctx: 'x' }, /reserved key/],
      [{ list: [undefined] }, /undefined/],
    ]
    for (const [data, message] of cases) {
      expect(() => signableData(data)).toThrow(SigningError)
      expect(() => signableData(data)).toThrow(message)
    }
    let message = ''
    try {
      signableData({ 'alice@example.com': { at: new Date() } })
    } catch (e) {
      message = (e as Error).message
    }
    expect(message).not.toContain('alice')
  })

  it('tells plain objects from the rest', () => {
    expect(isPlainObject({})).toBe(true)
    expect(isPlainObject(JSON.parse('{"a":1}'))).toBe(true)
    for (const v of [null, [], new Date(), new (class A {})(), 'x', 1, undefined]) expect(isPlainObject(v)).toBe(false)
  })

  it('gives the processor the data without the carrier, leaving the stored object alone', () => {
    const stored = { a: 1, __idctx: 't' }
    const clean = withoutCarrier(stored)
    expect(clean).toEqual({ a: 1 })
    expect(stored).toEqual({ a: 1, __idctx: 't' })
    const plain = { a: 1 }
    expect(withoutCarrier(plain)).toBe(plain)
  })
})
