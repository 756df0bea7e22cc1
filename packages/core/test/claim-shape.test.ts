import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { batchClaimsSchema, claimsSchema } from '@idctx/core'
import { shapeBatchClaims, shapeClaims, type ShapeResult } from '../src/lib/verify/claim-shape.js'

// The verifier checks claim shapes with hand-written functions (zod cost ~1.5 µs per uncached
// token). zod's schemas remain the specification: over hostile payloads, both must accept the
// same payloads with the same output (members, values and order) and refuse the same ones naming
// the same first claim.

const MH = 'Xb3sD1m0pQw8e2TzK9fLr4aVn6cHy7uJ5iOgB0kE1sA'
const valid = {
  iss: 'orders',
  aud: 'shop',
  sub: 'u-1',
  tid: 'acme',
  txn: 't-1',
  jti: 'j-1',
  iat: 1_700_000_000,
  exp: 1_700_000_300,
  mh: MH,
}

/** Values at and around every boundary the schemas draw, and values of every JSON type. */
const edgeString = fc.oneof(
  fc.constantFrom('', 'a', 'x'.repeat(256), 'x'.repeat(257), 'x'.repeat(512), 'x'.repeat(513), 'y'.repeat(2048), 'y'.repeat(2049)),
  fc.constantFrom(MH, `${MH}=`, MH.slice(1), `${MH.slice(0, 42)}+`, '0123456789abcdef0123456789abcdef', '0123456789ABCDEF0123456789abcdef', '0123456789abcdef0123456789abcde'),
  fc.constantFrom('user', 'service', 'system', 'admin', 'User', '__proto__'),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
)
const edgeNumber = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 1.5, 2 ** 40, 2 ** 40 + 1, 2 ** 53, 2 ** 53 + 2, 1e300, -1e-300, 1_700_000_000),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
)
const actor: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ sub: fc.oneof(edgeString, edgeNumber) }),
    fc.record({ sub: edgeString, act: tie('node') }),
    fc.record({ sub: edgeString, act: tie('node') }, { requiredKeys: ['sub'] }),
    fc.record({ sub: edgeString, extra: fc.jsonValue() }),
    fc.constantFrom(null, [], [{ sub: 'a' }], 'orders', 1),
  ),
})).node
const rolesValue = fc.oneof(
  fc.array(edgeString, { maxLength: 4 }),
  fc.constantFrom(Array.from({ length: 64 }, () => 'r'), Array.from({ length: 65 }, () => 'r'), [1], [null], 'buyer', {}),
)
const anyValue = fc.oneof(edgeString, edgeNumber, fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, true, false, [], {}))

const CLAIM_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  iss: fc.oneof(edgeString, anyValue),
  aud: fc.oneof(edgeString, anyValue),
  sub: fc.oneof(edgeString, anyValue),
  tid: fc.oneof(edgeString, anyValue),
  txn: fc.oneof(edgeString, anyValue),
  jti: fc.oneof(edgeString, anyValue),
  iat: fc.oneof(edgeNumber, anyValue),
  exp: fc.oneof(edgeNumber, anyValue),
  nbf: fc.oneof(edgeNumber, anyValue),
  pty: fc.oneof(edgeString, anyValue),
  roles: fc.oneof(rolesValue, anyValue),
  scope: fc.oneof(edgeString, anyValue),
  act: fc.oneof(actor, anyValue),
  dst: fc.oneof(edgeString, anyValue),
  mh: fc.oneof(edgeString, anyValue),
  trc: fc.oneof(edgeString, anyValue),
}

/** A valid payload with some claims replaced, some removed, and foreign members added. */
const payload = fc
  .record({
    replaced: fc.dictionary(fc.constantFrom(...Object.keys(CLAIM_VALUES)), fc.constant(null), { maxKeys: 3 }),
    removed: fc.subarray(Object.keys(valid), { maxLength: 2 }),
    extra: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'n')), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
    seed: fc.array(fc.nat(), { minLength: 20, maxLength: 20 }),
  })
  .chain(({ replaced, removed, extra }) =>
    fc.record(Object.fromEntries(Object.keys(replaced).map((k) => [k, CLAIM_VALUES[k] as fc.Arbitrary<unknown>]))).map((values) => {
      // Built through JSON.parse, as the verifier sees payloads: own `__proto__` members included.
      const p: Record<string, unknown> = JSON.parse(JSON.stringify({ ...valid, ...values }))
      for (const k of removed) if (!(k in values)) delete p[k]
      for (const [k, v] of Object.entries(extra)) if (!(k in CLAIM_VALUES)) Object.defineProperty(p, k, { value: v, enumerable: true, writable: true, configurable: true })
      return p
    }),
  )

function agree<T>(ours: ShapeResult<T>, zod: { success: true; data: unknown } | { success: false; error: { issues: readonly { path: readonly PropertyKey[] }[] } }): void {
  if (zod.success) {
    expect(ours).toEqual({ ok: true, value: zod.data })
    // The same members in the same order: the claims are serialized (contexts, logs).
    expect(JSON.stringify((ours as { value: unknown }).value)).toBe(JSON.stringify(zod.data))
    expect(Object.keys((ours as { value: object }).value)).toEqual(Object.keys(zod.data as object))
  } else {
    expect(ours).toEqual({ ok: false, claim: String(zod.error.issues[0]?.path[0] ?? '') })
  }
}

describe('claim shapes: hand-written checks agree with the zod schemas', () => {
  it('a valid payload, with every optional claim', () => {
    const full = { ...valid, nbf: valid.iat, pty: 'user', roles: ['buyer'], scope: 'orders:write', act: { sub: 'orders', act: { sub: 'web' } }, dst: 'kafka:orders', trc: '0123456789abcdef0123456789abcdef' }
    agree(shapeClaims(full), claimsSchema.safeParse(full))
    expect(shapeClaims(full).ok).toBe(true)
  })

  it('single profile: hostile payloads (JSON values of every type, boundaries, foreign members)', () => {
    const outcomes = { accepted: 0, refused: 0 }
    fc.assert(
      fc.property(payload, (p) => {
        const zod = claimsSchema.safeParse(p)
        outcomes[zod.success ? 'accepted' : 'refused']++
        agree(shapeClaims(p), zod)
      }),
      { numRuns: 5000 },
    )
    // The generator reaches both sides of the rules.
    expect(outcomes.accepted).toBeGreaterThan(200)
    expect(outcomes.refused).toBeGreaterThan(200)
  })

  it('batch profile: hostile payloads', () => {
    fc.assert(
      fc.property(payload, (p) => {
        agree(shapeBatchClaims(p), batchClaimsSchema.safeParse(p))
      }),
      { numRuns: 3000 },
    )
  })

  it('agrees on values JSON cannot carry', () => {
    for (const bad of [{ ...valid, iat: Number.NaN }, { ...valid, exp: Infinity }, { ...valid, roles: new Array(3) }]) {
      agree(shapeClaims(bad), claimsSchema.safeParse(bad))
      expect(shapeClaims(bad).ok).toBe(false)
    }
    const inherited = { ...valid, act: Object.create({ sub: 'orders' }) as object }
    agree(shapeClaims(inherited), claimsSchema.safeParse(inherited))
  })
})
