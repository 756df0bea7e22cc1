import { describe, it, expect } from 'vitest'
import { SigningError } from '@idctx/core'
import { signableData } from '@idctx/bullmq'
import { signableCopy } from '../src/job-data.js'
import { thrownBy } from './util.js'

// signableCopy must give exactly JSON.parse(JSON.stringify(data)) — what BullMQ stores and the
// worker reads back — or refuse, with signableData's message. These inputs make JSON.stringify
// see something other than the members the walk copies: a toJSON method it calls, an array
// whose length changes while it is read, elements read more than once.

const roundTrip = (d: unknown): unknown => JSON.parse(JSON.stringify(d)) as unknown

/** Builds the same data twice (getters are stateful): the copy of one equals the round trip of the other, or both checks refuse alike. */
function agreesWithJson(make: () => unknown): void {
  const refused = thrownBy(() => signableData(make()))
  const copied = thrownBy(() => signableCopy(make()))
  if (refused !== undefined) {
    expect(refused).toBeInstanceOf(SigningError)
    expect(copied).toEqual(refused)
    return
  }
  expect(copied).toBeUndefined()
  const copy = signableCopy(make())
  expect(copy).toStrictEqual(roundTrip(make()))
}

describe('signableCopy red team: what JSON.stringify sees is what is copied', () => {
  const hint = '; use plain objects, arrays, strings, finite numbers, booleans and null'

  it('refuses an array with a toJSON method (JSON would store what it returns), as signableData does', () => {
    const make = () => {
      const lines: unknown[] = [1, 2]
      Object.defineProperty(lines, 'toJSON', { value: () => 'replaced', enumerable: false })
      return { lines }
    }
    agreesWithJson(make)
    expect(thrownBy(() => signableCopy(make()))).toEqual(new SigningError(`job data is not signable: data.lines has a toJSON method${hint}`))
  })

  it('refuses an Array subclass with a toJSON method', () => {
    class Lines extends Array<number> {
      toJSON(): unknown {
        return { total: this.length }
      }
    }
    agreesWithJson(() => ({ lines: Lines.from([1, 2]) }))
    expect(() => signableCopy({ lines: Lines.from([1, 2]) })).toThrow(SigningError)
  })

  it('refuses an object whose toJSON is inherited or comes from a proxy trap', () => {
    const viaProxy = () => ({ p: new Proxy({ a: 1 }, { get: (t, k) => (k === 'toJSON' ? () => 'replaced' : (t as Record<PropertyKey, unknown>)[k]) }) })
    agreesWithJson(viaProxy)
    expect(() => signableCopy(viaProxy())).toThrow(SigningError)
    const top = () => new Proxy({ a: 1 }, { get: (t, k) => (k === 'toJSON' ? () => ({ b: 2 }) : (t as Record<PropertyKey, unknown>)[k]) })
    agreesWithJson(top)
    expect(() => signableCopy(top())).toThrow(SigningError)
  })

  it('an array growing while it is read: the copy stops at the length JSON read', () => {
    agreesWithJson(() => {
      const a: unknown[] = [1]
      Object.defineProperty(a, 0, {
        get() {
          if (a.length < 3) a.push(9)
          return 1
        },
        enumerable: true,
        configurable: true,
      })
      return { a }
    })
  })

  it('an array shrinking while it is read: refused (JSON would store null), never a copy with holes', () => {
    const make = () => {
      const a: unknown[] = [1, 2, 3]
      Object.defineProperty(a, 0, {
        get() {
          a.length = 1
          return 1
        },
        enumerable: true,
        configurable: true,
      })
      return { a }
    }
    agreesWithJson(make)
    expect(thrownBy(() => signableCopy(make()))).toEqual(new SigningError('job data is not signable: data.a[1] is undefined (JSON would store null)'))
  })

  it('reads each array element once, as JSON.stringify does', () => {
    let reads = 0
    const a: unknown[] = []
    Object.defineProperty(a, 0, {
      get() {
        reads++
        return reads === 1 ? 'x' : undefined
      },
      enumerable: true,
      configurable: true,
    })
    expect(signableCopy({ a })).toEqual({ a: ['x'] })
    expect(reads).toBe(1)
  })
})
