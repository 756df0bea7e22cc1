import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { canonicalJobData, SigningError } from '@idctx/core'
import { isPlainObject, signableData } from '@idctx/bullmq'
import { signableCopy, withoutCarrier } from '../src/job-data.js'
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

describe('signableCopy: the check and the JSON round-trip copy in one walk', () => {
  const roundTrip = (d: unknown) => JSON.parse(JSON.stringify(d)) as unknown
  /** JSON-like values with the members JSON treats specially: undefined members, -0, __proto__, integer-like keys. */
  const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.string(),
      fc.constantFrom(0, -0, 1.5, -1e300, 2 ** 53 + 2, true, false, null, '\ud800', 'é'),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('__proto__', '0', '10', '2', 'constructor')), fc.oneof(tie('value'), fc.constant(undefined)), { maxKeys: 4 }),
    ),
  })).value
  const data = fc
    .dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('__proto__', '1', 'a')), fc.oneof(jsonish, fc.constant(undefined)), { maxKeys: 5 })
    .filter((d) => !Object.prototype.hasOwnProperty.call(d, '__idctx'))

  it('gives exactly JSON.parse(JSON.stringify(data)): members, order, prototypes', () => {
    fc.assert(
      fc.property(data, (d) => {
        const copy = signableCopy(d)
        const want = roundTrip(d)
        // toEqual, not toStrictEqual: the latter compares `.constructor`, which a member of that name replaces.
        expect(copy).toEqual(want)
        expect(JSON.stringify(copy)).toBe(JSON.stringify(d))
        expect(Object.is(copy, d)).toBe(false)
        // No member named __proto__ became a prototype.
        const walk = (v: unknown): void => {
          if (typeof v === 'number') expect(Object.is(v, -0)).toBe(false)
          if (v === null || typeof v !== 'object') return
          expect(Object.getPrototypeOf(v)).toBe(Array.isArray(v) ? Array.prototype : Object.prototype)
          for (const x of Object.values(v)) walk(x)
        }
        walk(copy)
      }),
      { numRuns: 3000 },
    )
  })

  it('a later change to the caller object does not reach the copy', () => {
    const d = { a: { b: [1, 2] } }
    const copy = signableCopy(d)
    d.a.b.push(3)
    expect(copy).toEqual({ a: { b: [1, 2] } })
  })

  it('refuses what signableData refuses, with the same message', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    for (const bad of [[1], new Date(), { at: new Date() }, { n: Number.NaN }, { f: () => 1 }, { l: [1, undefined] }, { __idctx: 't' }, cyclic, 'text', null]) {
      let want = ''
      try {
        signableData(bad)
      } catch (e) {
        want = (e as Error).message
      }
      expect(want).not.toBe('')
      expect(() => signableCopy(bad)).toThrow(want)
    }
    expect(signableCopy(undefined)).toEqual({})
  })
})
