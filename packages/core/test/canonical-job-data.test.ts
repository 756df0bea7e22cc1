import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import canonicalize from 'canonicalize'
import { canonicalJobData } from '@idctx/core'

/**
 * The definition canonicalJobData must match byte for byte: copy the data without the reserved
 * key, JSON round trip it as BullMQ does, then RFC 8785 `canonicalize`. (This was the
 * implementation before the single-pass serializer.)
 */
function reference(data: Record<string, unknown>, reservedKey = '__idctx'): string {
  let source = data
  if (Object.prototype.hasOwnProperty.call(data, reservedKey)) {
    const { [reservedKey]: _omit, ...rest } = data
    source = rest
  }
  const stored = JSON.stringify(source) as string | undefined
  if (stored === undefined) throw new TypeError('job data is not representable as JSON')
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)(JSON.parse(stored))
  if (text === undefined) throw new TypeError('job data is not representable as JSON')
  return text
}

type Outcome = { text: string } | { thrown: string }

function outcome(f: () => string): Outcome {
  try {
    return { text: f() }
  } catch (e) {
    return { thrown: (e as Error).constructor.name }
  }
}

const agree = (data: Record<string, unknown>, reservedKey?: string) => {
  expect(outcome(() => canonicalJobData(data, reservedKey))).toEqual(outcome(() => reference(data, reservedKey)))
}

const key = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('__proto__', 'toJSON', '__idctx', '', '0', '10', '9', 'constructor'))

const oddLeaf = fc.oneof(
  fc.constantFrom(undefined, null, Number.NaN, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e21, 5e-324, Number.MAX_VALUE),
  fc.func(fc.integer()),
  fc.constant(Symbol('s')),
  fc.double(),
  fc.string({ unit: 'binary' }),
  fc.date(),
  fc.integer().map((n) => ({ toJSON: (k: string) => `${k}:${n}` })),
  fc.constant({ toJSON: () => undefined }),
  fc.constantFrom(Object(1.5), Object('boxed'), Object(false), Object(Symbol('b'))),
)

const { value: rich } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, oddLeaf, fc.jsonValue(), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(key, tie('value'), { maxKeys: 6 }),
}))

describe('canonicalJobData equals canonicalize(JSON round trip)', () => {
  it('for JSON values with any keys', () => {
    fc.assert(
      fc.property(fc.dictionary(key, fc.jsonValue({ stringUnit: 'binary' })), (data) => agree(data)),
      { numRuns: 1000 },
    )
  })

  it('for data with undefined, functions, symbols, NaN, -0, Infinity, dates, toJSON and boxed values', () => {
    fc.assert(
      fc.property(fc.dictionary(key, rich, { maxKeys: 8 }), (data) => agree(data)),
      { numRuns: 2000 },
    )
  })

  it('for fast-check anything (boxed, null prototype, sparse arrays, BigInt, maps, typed arrays)', () => {
    const anything = fc.anything({
      key,
      stringUnit: 'binary',
      withBoxedValues: true,
      withNullPrototype: true,
      withSparseArray: true,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withObjectString: true,
    })
    fc.assert(
      fc.property(fc.dictionary(key, anything), (data) => agree(data)),
      { numRuns: 1000 },
    )
  })

  it('with the reserved key present, under any reserved key name', () => {
    fc.assert(
      fc.property(fc.dictionary(key, rich, { maxKeys: 6 }), key, rich, (data, reserved, carried) => {
        agree({ ...data, __idctx: carried })
        agree({ ...data, [reserved]: carried }, reserved)
      }),
      { numRuns: 1000 },
    )
  })

  it('for the corner cases of JSON.stringify', () => {
    class WithToJSON {
      constructor(readonly n: number) {}
      toJSON(k: string) {
        return { k, n: this.n }
      }
    }
    const getters = Object.defineProperties({}, {
      b: { enumerable: true, get: () => 2 },
      a: { enumerable: true, get: () => undefined },
      hidden: { enumerable: false, value: 1 },
    }) as Record<string, unknown>
    const sym = Object(Symbol('x')) as Record<string, unknown>
    sym.inside = 1
    const holes: unknown[] = [1]
    holes[3] = 2
    const cases: Record<string, unknown>[] = [
      {},
      { z: 1, a: 2, '\u00e9': 3, 'e\u0301': 4, '\ud800': 5, '\udc00\ud800': 6, '𝄞': 7, '\uffff': 8, 10: 9, 9: 10 },
      JSON.parse('{"__proto__": {"x": 1}, "a": [1, {"__proto__": null}]}') as Record<string, unknown>,
      { w: new WithToJSON(3), list: [new WithToJSON(4)] },
      new WithToJSON(5) as unknown as Record<string, unknown>,
      Object.assign(new WithToJSON(6), { __idctx: 't' }) as unknown as Record<string, unknown>,
      { toJSON: () => ({ replaced: true }) },
      { toJSON: () => ({ replaced: true }), __idctx: 't' },
      { toJSON(this: unknown) { return this }, a: 1, __idctx: 't' },
      { toJSON: 1, a: { toJSON: 'x' } },
      getters,
      Object.assign(Object.create(getters) as object, { own: 1 }) as Record<string, unknown>,
      { sym, holes, nested: [[[], {}], [undefined, () => 1, Symbol('q')]] },
      { n: [0, -0, 1e-7, 1e21, 123456789012345680000, 0.1 + 0.2, -1e-300] },
      Object.assign([1, 2], { __idctx: 't' }) as unknown as Record<string, unknown>,
      Object.assign(Object('ab') as object, { __idctx: 't', x: 1 }) as Record<string, unknown>,
      Object.assign(Object.create(null) as object, { b: 1, a: null }) as Record<string, unknown>,
      { big: 1n },
      { boxedBig: Object(1n) },
      { d: new Date(0), bad: new Date(Number.NaN) },
    ]
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const cyclicBehindReserved: Record<string, unknown> = { __idctx: 't' }
    cyclicBehindReserved.inner = { back: cyclicBehindReserved }
    const shared = { s: 1 }
    cases.push(cyclic, cyclicBehindReserved, { a: shared, b: [shared, shared] })
    for (const data of cases) agree(data)
    agree({ a: 1, _ctx: 'x' }, '_ctx')
  })
})
