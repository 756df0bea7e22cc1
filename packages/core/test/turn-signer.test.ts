import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import {
  createSigner,
  createTurnSigner,
  createVerifier,
  kafkaLeaf,
  SigningError,
  type IdentityContext,
  type MessageBinding,
  type SignedCall,
  type SignedEvent,
  type VerifyResult,
} from '@idctx/core'
import { AUD, baseOptions, clock, DEST, ISS, makeKeyring, TOPIC } from './fixtures.js'
import { ALICE, BOB } from './batch-fixtures.js'

const ring = makeKeyring()
const reasonOf = (r: VerifyResult) => (r.ok ? 'ok' : r.error.reason)
const msg = (i: number): MessageBinding => ({ destination: DEST, leaf: kafkaLeaf(TOPIC, `k${i}`, `v${i}`) })
const user = (i: number): IdentityContext => ({ sub: `u-${i}`, tid: i % 2 === 0 ? 'acme' : 'globex', txn: `txn-${i}` })
const typOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()) as { typ: string }).typ

function setup(extra: { maxMessages?: number } = {}) {
  const signed: SignedEvent[] = []
  const signer = createSigner({ issuer: ISS, audience: AUD, key: ring.EdDSA, clock, observer: { onSigned: (e) => signed.push(e) } })
  return { signer, signed, turn: createTurnSigner(signer, extra) }
}

/** Verifies call `i`'s messages (`messages` of `call`) with their carriers. */
async function verifyCall(result: SignedCall, messages: readonly MessageBinding[], tenant: string) {
  const verifier = createVerifier(baseOptions(ring))
  return Promise.all(
    messages.map((m, j) =>
      verifier.verify({
        tokens: [result.token],
        proof: result.proofs[j],
        contextRecord: result.contextRecord === undefined ? [] : [result.contextRecord],
        destination: m.destination,
        leaf: m.leaf,
        expectedTenant: tenant,
      }),
    ),
  )
}

describe('turn signer: one signature per event-loop turn', () => {
  it('16 calls of 16 users in one turn: one token, each message verifies with its own user', async () => {
    const { turn, signed } = setup()
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => turn.sign({ context: user(i), messages: [msg(i)] })))
    expect(signed).toHaveLength(1)
    expect(signed[0]).toMatchObject({ profile: 'batch', count: 16, contexts: 16 })
    expect(new Set(results.map((r) => r.token)).size).toBe(1)
    for (const [i, r] of results.entries()) {
      expect(r.profile).toBe('batch')
      const [v] = await verifyCall(r, [msg(i)], user(i).tid)
      expect(v?.ok && [v.context.sub, v.context.tid, v.context.txn]).toEqual([`u-${i}`, user(i).tid, `txn-${i}`])
    }
  })

  it('a call alone in its turn is signed with the single profile: one self-contained idctx+jwt', async () => {
    const { turn, signed } = setup()
    const r = await turn.sign({ context: ALICE, messages: [msg(1)] })
    expect(r).toMatchObject({ profile: 'single', contextRecord: undefined, proofs: [undefined] })
    expect(typOf(r.token)).toBe('idctx+jwt')
    expect(signed.map((e) => e.profile)).toEqual(['single'])
    const [v] = await verifyCall(r, [msg(1)], 'acme')
    expect(v?.ok && v.context.sub).toBe('u-alice')
    // a lone call of several messages: single profile with proofs, as Signer.sign gives
    const many = await turn.sign({ context: ALICE, messages: [msg(1), msg(2)] })
    expect(many.profile).toBe('single')
    expect(many.proofs.every((p) => typeof p === 'string')).toBe(true)
    expect((await verifyCall(many, [msg(1), msg(2)], 'acme')).map(reasonOf)).toEqual(['ok', 'ok'])
  })

  it('calls group only with the same lifetime and notBefore', async () => {
    const { turn, signed } = setup()
    const rs = await Promise.all([
      turn.sign({ context: ALICE, messages: [msg(1)] }),
      turn.sign({ context: BOB, messages: [msg(2)], lifetimeSeconds: 600 }),
      turn.sign({ context: BOB, messages: [msg(3)] }),
      turn.sign({ context: ALICE, messages: [msg(4)], lifetimeSeconds: 600 }),
      turn.sign({ context: ALICE, messages: [msg(5)], notBefore: 1_800_000_100 }),
    ])
    expect(signed).toHaveLength(3)
    expect(rs[0]?.token).toBe(rs[2]?.token)
    expect(rs[1]?.token).toBe(rs[3]?.token)
    expect(rs[0]?.token).not.toBe(rs[1]?.token)
    expect(rs[4]?.profile).toBe('single')
    expect(rs[1]!.exp - rs[0]!.exp).toBe(300)
  })

  it('results resolve in call order, barriers included', async () => {
    const { turn } = setup()
    const order: string[] = []
    const calls = [
      turn.sign({ context: ALICE, messages: [msg(1)], lifetimeSeconds: 60 }).then(() => order.push('a')),
      turn.barrier().then(() => order.push('barrier')),
      turn.sign({ context: BOB, messages: [msg(2)] }).then(() => order.push('b')),
      turn.sign({ context: ALICE, messages: [msg(3)], lifetimeSeconds: 60 }).then(() => order.push('c')),
    ]
    await Promise.all(calls)
    expect(order).toEqual(['a', 'barrier', 'b', 'c'])
    // nothing pending: a barrier resolves at once
    expect(turn.pending).toBe(0)
    await turn.barrier()
  })

  it('the size cap flushes at once and never splits a call', async () => {
    const { turn, signed } = setup({ maxMessages: 4 })
    const p1 = turn.sign({ context: ALICE, messages: [msg(1), msg(2)] })
    const p2 = turn.sign({ context: BOB, messages: [msg(3), msg(4)] })
    // the cap is reached: signed synchronously
    expect(signed).toHaveLength(1)
    const p3 = turn.sign({ context: BOB, messages: [msg(5), msg(6), msg(7), msg(8), msg(9)] })
    expect(signed).toHaveLength(2)
    const p4 = turn.sign({ context: ALICE, messages: [msg(10)] })
    expect(turn.pending).toBe(1)
    const [r1, r2, r3, r4] = await Promise.all([p1, p2, p3, p4])
    expect(r1?.token).toBe(r2?.token)
    expect([r1?.profile, r3?.profile, r4?.profile]).toEqual(['batch', 'single', 'single'])
    expect(signed.map((e) => e.count)).toEqual([4, 5, 1])
  })

  it('a bad call throws when it is made and the rest of the turn is signed without it', async () => {
    const { turn, signed } = setup()
    const good = turn.sign({ context: ALICE, messages: [msg(1)] })
    expect(() => turn.sign({ context: { sub: '', tid: 'acme', txn: 't' }, messages: [msg(2)] })).toThrow(SigningError)
    expect(() => turn.sign({ context: ALICE, messages: [] })).toThrow(TypeError)
    expect(() => turn.sign({ context: ALICE, messages: [{ destination: DEST, leaf: Buffer.alloc(3) }] })).toThrow(TypeError)
    const other = turn.sign({ context: BOB, messages: [msg(3)] })
    const [a, b] = await Promise.all([good, other])
    expect(signed).toHaveLength(1)
    expect(a?.token).toBe(b?.token)
  })

  it('a group the signer refuses rejects alone (a lifetime above the cap)', async () => {
    const { turn } = setup()
    const bad1 = turn.sign({ context: ALICE, messages: [msg(1)], lifetimeSeconds: 5000 })
    const bad2 = turn.sign({ context: BOB, messages: [msg(2)], lifetimeSeconds: 5000 })
    const good1 = turn.sign({ context: ALICE, messages: [msg(3)] })
    const good2 = turn.sign({ context: BOB, messages: [msg(4)] })
    await expect(bad1).rejects.toBeInstanceOf(SigningError)
    await expect(bad2).rejects.toBeInstanceOf(SigningError)
    expect((await good1).token).toBe((await good2).token)
  })

  it('a context too large for a record is signed alone, with the single profile', async () => {
    const { turn, signed } = setup()
    const roles = Array.from({ length: 64 }, (_, i) => `role-${i}-${'x'.repeat(40)}`)
    const [big, a, b] = await Promise.all([
      turn.sign({ context: { ...ALICE, roles }, messages: [msg(1)] }),
      turn.sign({ context: ALICE, messages: [msg(2)] }),
      turn.sign({ context: BOB, messages: [msg(3)] }),
    ])
    expect([big?.profile, a?.profile, b?.profile]).toEqual(['single', 'batch', 'batch'])
    expect(signed).toHaveLength(2)
  })

  it('flush() signs what is pending now', async () => {
    const { turn, signed } = setup()
    const p = turn.sign({ context: ALICE, messages: [msg(1)] })
    const q = turn.sign({ context: BOB, messages: [msg(2)] })
    expect(turn.pending).toBe(2)
    turn.flush()
    expect(signed).toHaveLength(1)
    expect(turn.pending).toBe(0)
    expect((await p).token).toBe((await q).token)
  })

  it('calls made in later turns get later tokens', async () => {
    const { turn, signed } = setup()
    const a = turn.sign({ context: ALICE, messages: [msg(1)] })
    await new Promise((r) => setImmediate(r))
    const b = turn.sign({ context: BOB, messages: [msg(2)] })
    expect((await a).token).not.toBe((await b).token)
    expect(signed.map((e) => e.profile)).toEqual(['single', 'single'])
  })

  it('refuses a bad cap and a non-signer', () => {
    const { signer } = setup()
    expect(() => createTurnSigner(signer, { maxMessages: 1 })).toThrow(TypeError)
    expect(() => createTurnSigner({} as never)).toThrow(TypeError)
  })

  it('property: any mix of calls, lifetimes and caps: each call verifies with its own context, one token per group', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ user: fc.nat({ max: 5 }), size: fc.integer({ min: 1, max: 4 }), long: fc.boolean() }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 2, max: 9 }),
        async (calls, maxMessages) => {
          const { turn } = setup({ maxMessages })
          let n = 0
          const plan = calls.map((c) => ({ context: user(c.user), messages: Array.from({ length: c.size }, () => msg(n++)), lifetime: c.long ? 600 : undefined }))
          const results = await Promise.all(plan.map((p) => turn.sign({ context: p.context, messages: p.messages, lifetimeSeconds: p.lifetime })))
          for (const [i, r] of results.entries()) {
            const p = plan[i]!
            const verified = await verifyCall(r, p.messages, p.context.tid)
            for (const v of verified) expect(v.ok && v.context.sub).toBe(p.context.sub)
            expect(r.profile === 'batch').toBe(results.filter((o) => o.token === r.token).length > 1)
          }
        },
      ),
      { numRuns: 60 },
    )
  })
})
