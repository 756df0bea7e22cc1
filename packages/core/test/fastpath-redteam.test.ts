import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { batchClaimsSchema, claimsSchema, kafkaLeaf, SigningError, type IdentityContext } from '@idctx/core'
import { canonicalJson } from '../src/lib/canonical-json.js'
import { shapeBatchClaims, shapeClaims, type ShapeResult } from '../src/lib/verify/claim-shape.js'
import { DEST, makeKeyring, ordersSigner, TOPIC } from './fixtures.js'

/** The error `fn` throws, or undefined when it returns. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

// Red-team tests of the verify and sign fast paths (hand-written claim shapes, caches, direct
// record text): each holds a fast path to its reference on inputs the existing tests left out.

const MH = 'Xb3sD1m0pQw8e2TzK9fLr4aVn6cHy7uJ5iOgB0kE1sA'
const valid: Record<string, unknown> = { iss: 'orders', aud: 'shop', sub: 'u-1', tid: 'acme', txn: 't-1', jti: 'j-1', iat: 1_700_000_000, exp: 1_700_000_300, mh: MH }

/** The zod result in the shape of ours: the claims, or the first claim at fault. */
function zodResult(r: { success: true; data: unknown } | { success: false; error: { issues: readonly { path: readonly PropertyKey[] }[] } }): ShapeResult<unknown> {
  return r.success ? { ok: true, value: r.data } : { ok: false, claim: String(r.error.issues[0]?.path[0] ?? '') }
}

/** Same verdict, same members (own keys, recursively, in order), same values. */
function sameShape(ours: ShapeResult<unknown>, zod: ShapeResult<unknown>): void {
  expect(ours.ok).toBe(zod.ok)
  if (!ours.ok || !zod.ok) return expect(ours).toEqual(zod)
  const keys = (v: unknown): unknown => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v).map(([k, x]) => [k, keys(x)]) : v)
  expect(keys(ours.value)).toStrictEqual(keys(zod.value))
}

describe('claim shapes: presence as zod reads it (`in`, for-in), not only own members', () => {
  it('an actor with an explicit act: undefined keeps the member, as zod does', () => {
    const p = { ...valid, act: { sub: 'orders', act: undefined } }
    sameShape(shapeClaims(p), zodResult(claimsSchema.safeParse(p)))
  })

  it('an optional claim inherited from the prototype is in the output, as zod has it', () => {
    const p = Object.assign(Object.create({ nbf: 1_700_000_000, scope: 'orders:read' }) as object, valid) as Record<string, unknown>
    sameShape(shapeClaims(p), zodResult(claimsSchema.safeParse(p)))
    const b = Object.assign(Object.create({ dst: 'kafka:orders' }) as object, valid) as Record<string, unknown>
    sameShape(shapeBatchClaims(b), zodResult(batchClaimsSchema.safeParse(b)))
  })

  it('an actor with an inherited enumerable member is refused, as zod.strict() refuses it', () => {
    const act = Object.assign(Object.create({ role: 'admin' }) as object, { sub: 'orders' })
    const p = { ...valid, act }
    sameShape(shapeClaims(p), zodResult(claimsSchema.safeParse(p)))
  })

  it('members split between the object and its prototype, some explicitly undefined', () => {
    const claimValue = fc.oneof(
      fc.constantFrom(undefined, 'user', 'x', '', 1_700_000_000, -0, 2 ** 40, null, ['r'], [], MH, '0123456789abcdef0123456789abcdef'),
      fc.constantFrom({ sub: 'a' }, { sub: 'a', act: undefined }, { sub: 'a', act: { sub: 'b' } }),
    )
    const names = ['nbf', 'pty', 'roles', 'scope', 'act', 'dst', 'trc', 'iat', 'exp']
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names), claimValue, { maxKeys: 4 }), fc.dictionary(fc.constantFrom(...names), claimValue, { maxKeys: 4 }), (own, inherited) => {
        const p = Object.assign(Object.create(inherited) as object, valid, own) as Record<string, unknown>
        sameShape(shapeClaims(p), zodResult(claimsSchema.safeParse(p)))
        sameShape(shapeBatchClaims(p), zodResult(batchClaimsSchema.safeParse(p)))
      }),
      { numRuns: 2000 },
    )
  })
})

describe('context record text: a roles array JSON would not write as its elements', () => {
  const ring = makeKeyring()
  const leaves = [kafkaLeaf(TOPIC, 'k1', '{"n":1}'), kafkaLeaf(TOPIC, 'k2', '{"n":2}')]
  const withToJSON = (): IdentityContext => {
    const roles = ['clerk']
    Object.defineProperty(roles, 'toJSON', { value: () => ['admin'], enumerable: false })
    return { sub: 'u-1', tid: 'acme', txn: 't-1', roles }
  }

  it('the record written equals canonicalJson of the same members, or the context is refused', () => {
    const signer = ordersSigner(ring.EdDSA)
    const c = withToJSON()
    const e = thrownBy(() => signer.signBatch([{ context: c, messages: leaves.map((leaf) => ({ destination: DEST, leaf })) }]))
    if (e === undefined) {
      const record = signer.signBatch([{ context: c, messages: leaves.map((leaf) => ({ destination: DEST, leaf })) }]).calls[0]?.contextRecord as string
      const parsed = JSON.parse(record) as Record<string, unknown>
      expect(record).toBe(canonicalJson({ ...parsed, roles: c.roles }))
    } else {
      expect(e).toBeInstanceOf(SigningError)
    }
  })

  it('the single profile and the batch profile refuse it alike (never roles the check did not see)', () => {
    const signer = ordersSigner(ring.EdDSA)
    expect(thrownBy(() => signer.sign(withToJSON(), [{ destination: DEST, leaf: leaves[0] as Buffer }]))).toEqual(
      new SigningError('the identity context is not signable: roles must be an array of strings JSON writes as they are (it has a toJSON method)'),
    )
    expect(thrownBy(() => signer.prepare(withToJSON()))).toBeInstanceOf(SigningError)
    class Roles extends Array<string> {
      toJSON(): unknown {
        return ['admin']
      }
    }
    expect(thrownBy(() => signer.sign({ sub: 'u-1', tid: 'acme', txn: 't-1', roles: Roles.from(['clerk']) }, [{ destination: DEST, leaf: leaves[0] as Buffer }]))).toBeInstanceOf(SigningError)
  })
})
