import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  batchClaimsSchema,
  claimsSchema,
  createVerifier,
  kafkaLeaf,
  SigningError,
  type IdctxKey,
  type IdctxObserver,
  type IdentityContext,
  type KeySource,
  type VerifyResult,
} from '@idctx/core'
import { canonicalJson } from '../src/lib/canonical-json.js'
import { shapeBatchClaims, shapeClaims, type ShapeResult } from '../src/lib/verify/claim-shape.js'
import { forgedBatch, validRecord } from './batch-fixtures.js'
import { corpus } from './corpus.js'
import { baseInput, baseOptions, DEST, forge, makeKeyring, ordersSigner, TOPIC } from './fixtures.js'

/** A plain Uint8Array copy (not a Buffer): the verifier takes any Uint8Array at run time. */
const plain = (b: Uint8Array): Buffer => new Uint8Array(b) as Buffer

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

describe('token check: the same verdict whether the key is at hand or a key source must be asked', () => {
  const ring = makeKeyring()
  const cases = corpus(ring)

  /**
   * Sources that know nothing until one of them is asked (remote JWKS before their first fetch);
   * then all know their keys (only the issuer a token names is asked, the others must still answer).
   */
  function learning(issuers: Record<string, unknown>): Record<string, KeySource> {
    let learned = false
    const source = (keys: readonly IdctxKey[]): KeySource => ({
      get: (kid) => (learned ? keys.find((k) => k.kid === kid) : undefined),
      resolve: async (kid) => {
        await Promise.resolve()
        learned = true
        return keys.find((k) => k.kid === kid)
      },
    })
    return Object.fromEntries(Object.entries(issuers).map(([iss, keys]) => [iss, source(keys as IdctxKey[])]))
  }

  const events = (): { list: unknown[]; observer: IdctxObserver } => {
    const list: unknown[] = []
    const keep = (e: { durationMs?: number }) => list.push({ ...e, durationMs: 0 })
    return { list, observer: { onRejected: keep, onVerified: keep } }
  }
  const outcome = (r: VerifyResult) => (r.ok ? 'ok' : r.error.reason)

  it('every corpus case: static keys (sync), a key source that must be asked (async), verifyMany, bytes', async () => {
    let compared = 0
    for (const c of cases) {
      const options = baseOptions(ring, c.options)
      const issuers = options.issuers as Record<string, unknown>
      if (!Object.values(issuers).every((v) => Array.isArray(v))) continue
      const sync = events()
      const viaSync = await createVerifier({ ...options, observer: sync.observer }).verify(c.input)
      const asked = events()
      const viaAsk = await createVerifier({ ...options, issuers: learning(issuers), observer: asked.observer }).verify(c.input)
      expect([c.name, outcome(viaAsk)]).toEqual([c.name, outcome(viaSync)])
      expect(asked.list).toEqual(sync.list)
      const many = await createVerifier(options).verifyMany([c.input, c.input])
      expect([c.name, many.map(outcome)]).toEqual([c.name, [outcome(viaSync), outcome(viaSync)]])
      const raw = c.input.tokens?.[0]
      if (typeof raw === 'string' && c.input.tokens?.length === 1) {
        const bytes = Buffer.from(raw, 'utf8')
        const v = createVerifier(options)
        const first = await v.verify({ ...c.input, tokens: [bytes] })
        const again = await v.verify({ ...c.input, tokens: [plain(bytes)] })
        expect([c.name, outcome(first), outcome(again)]).toEqual([c.name, outcome(viaSync), outcome(viaSync)])
      }
      compared++
    }
    expect(compared).toBeGreaterThan(cases.length / 2)
  })
})

describe('bytes reused while they repeat: token text and context records', () => {
  const ring = makeKeyring()

  it('a record buffer changed in place after verification is read again, never taken for the last one', async () => {
    const recA = validRecord('u-aaaa')
    const recB = validRecord('u-bbbb')
    expect(Buffer.byteLength(recA)).toBe(Buffer.byteLength(recB))
    const batch = forgedBatch(ring, [recA, recB])
    const verifier = createVerifier(baseOptions(ring))
    const buf = Buffer.from(recA)
    const first = await verifier.verify(batch.input(0, { contextRecord: [buf] }))
    expect(first.ok && first.claims.sub).toBe('u-aaaa')
    // The same buffer, now holding the other user's record: its own leaf and proof verify it as that user.
    Buffer.from(recB).copy(buf)
    const second = await verifier.verify(batch.input(1, { contextRecord: [buf] }))
    expect(second.ok && second.claims.sub).toBe('u-bbbb')
    // And the changed bytes on the first message's leaf and proof: binding_mismatch, not user a.
    const third = await verifier.verify(batch.input(0, { contextRecord: [plain(buf)] }))
    expect(third.ok ? 'ok' : third.error.reason).toBe('binding_mismatch')
    // A view into a larger buffer, at an offset: its own bytes, not the buffer's.
    const big = Buffer.concat([Buffer.from('xx'), Buffer.from(recA), Buffer.from('yy')])
    const view = new Uint8Array(big.buffer, big.byteOffset + 2, Buffer.byteLength(recA))
    const fourth = await verifier.verify(batch.input(0, { contextRecord: [view as Buffer] }))
    expect(fourth.ok && fourth.claims.sub).toBe('u-aaaa')
  })

  it('a record refused once is refused again from equal bytes, and after clearCache', async () => {
    const bad = `${validRecord('u-1').slice(0, -1)} }`
    const batch = forgedBatch(ring, [bad, validRecord('u-2')])
    const verifier = createVerifier(baseOptions(ring))
    const reason = async () => {
      const r = await verifier.verify(batch.input(0, { contextRecord: [Buffer.from(bad)] }))
      return r.ok ? 'ok' : r.error.reason
    }
    expect(await reason()).toBe('malformed')
    expect(await reason()).toBe('malformed')
    verifier.clearCache()
    expect(await reason()).toBe('malformed')
  })

  it('a token buffer changed in place after verification is decoded again', async () => {
    const verifier = createVerifier(baseOptions(ring))
    const good = forge(ring)
    // A byte of the signature flipped in place: never the verdict of the bytes before.
    const buf = Buffer.from(good)
    expect((await verifier.verify(baseInput(buf))).ok).toBe(true)
    buf[buf.length - 5] = buf[buf.length - 5] === 0x41 ? 0x42 : 0x41
    const flipped = await verifier.verify(baseInput(buf))
    expect(flipped.ok ? 'ok' : flipped.error.reason).toBe('bad_signature')
  })
})

describe('observer facts never leak between verifications sharing one token check', () => {
  const ring = makeKeyring()

  it('a waiting batch message reports its own record, not the leader\'s, with a key source that must be asked', async () => {
    const batch = forgedBatch(ring, [validRecord('u-lead', 'acme'), validRecord('u-wait', 'globex')])
    let learned = false
    const source: KeySource = {
      get: (kid) => (learned && kid === ring.EdDSA.kid ? ring.EdDSA : undefined),
      resolve: async (kid) => {
        await new Promise((r) => setTimeout(r, 5))
        learned = true
        return kid === ring.EdDSA.kid ? ring.EdDSA : undefined
      },
    }
    const rejected: { sub?: string | undefined; tid?: string | undefined; reason: string }[] = []
    const verifier = createVerifier({ ...baseOptions(ring), issuers: { orders: source }, observer: { onRejected: (e) => rejected.push({ sub: e.sub, tid: e.tid, reason: e.reason }) } })
    const [lead, wait] = await Promise.all([
      verifier.verify(batch.input(0, { expectedTenant: 'acme' })),
      verifier.verify(batch.input(1, { expectedTenant: 'acme' })),
    ])
    expect(lead.ok).toBe(true)
    expect(wait.ok ? 'ok' : wait.error.reason).toBe('tenant_mismatch')
    expect(rejected).toEqual([{ sub: 'u-wait', tid: 'globex', reason: 'tenant_mismatch' }])
  })
})
