import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { canonicalJobData, SigningError } from '@idctx/core'
import { isPlainObject, signableData } from '@idctx/bullmq'
import { withoutCarrier } from '../src/job-data.js'
import { thrownBy } from './util.js'

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
    const hint = '; use plain objects, arrays, strings, finite numbers, booleans and null'
    const cases: [unknown, string][] = [
      [[1], 'job data must be a plain object, got an array'],
      [null, 'job data must be a plain object, got null'],
      [new Date(), 'job data must be a plain object, got an instance of Date'],
      [{ a: { b: [{ c: new Set() }] } }, `job data is not signable: data.a.b[0].c is an instance of Set${hint}`],
      [{ 'user@example.com': new Date(0) }, `job data is not signable: data[…] is an instance of Date${hint}`],
      [{ n: -Infinity }, `job data is not signable: data.n is a non-finite number${hint}`],
      [{ s: Symbol('x') }, `job data is not signable: data.s is a symbol${hint}`],
      [{ __idctx: 'x' }, 'job data already has the reserved key __idctx'],
      [{ list: [undefined] }, 'job data is not signable: data.list[0] is undefined (JSON would store null)'],
    ]
    expect(cases.map(([data]) => thrownBy(() => signableData(data)))).toEqual(cases.map(([, message]) => new SigningError(message)))
    for (const [data] of cases) expect(() => signableData(data)).toThrow(SigningError)
    // A key that holds personal data is never echoed, nor is any value.
    const e = thrownBy(() => signableData({ 'alice@example.com': { at: new Date('2026-01-02T03:04:05Z') } }))
    expect(e).toBeInstanceOf(SigningError)
    expect((e as Error).message).toBe(`job data is not signable: data[…].at is an instance of Date${hint}`)
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
