/**
 * Trust hardening: inputs and options that once made `verify` throw, fail open or bend an
 * identity. Each case names the exact reason code or error class.
 */
import { describe, it, expect } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import {
  bullmqDestination,
  bullmqLeaf,
  bullmqSchedulerLeaf,
  ConfigError,
  createContextStore,
  createMemoryReplayStore,
  createMemoryRevocationStore,
  createSigner,
  createVerifier,
  encodeDestinationComponent,
  exportPrivateJwk,
  kafkaDestination,
  kafkaLeaf,
  SigningError,
  type VerifyInput,
  type VerifyResult,
} from '@idctx/core'
import { AUD, baseInput, baseOptions, clock, CONTEXT, DEST, forge, ISS, LEAF, makeKeyring, NOW, NOW_MS, ordersSigner, TOPIC } from './fixtures.js'

const ring = makeKeyring()
const reasonOf = (r: VerifyResult) => (r.ok ? 'ok' : r.error.reason)

describe('hardening: carrier values an adapter may hand over', () => {
  const verifier = createVerifier(baseOptions(ring))
  const cases: [string, unknown][] = [
    ['a number', 123],
    ['null', null],
    ['undefined', undefined],
    ['an object', { token: forge(ring) }],
    ['an array', [forge(ring)]],
  ]
  it.each(cases)('tokens: [%s] is malformed, not a TypeError', async (_name, value) => {
    const r = await verifier.verify({ ...baseInput(''), tokens: [value] as unknown as string[] })
    expect(reasonOf(r)).toBe('malformed')
  })

  it('tokens that is not a list is malformed (a string would otherwise count its characters)', async () => {
    const r = await verifier.verify({ ...baseInput(''), tokens: forge(ring) as unknown as string[] })
    expect(reasonOf(r)).toBe('malformed')
  })

  it('a proof that is neither text nor bytes fails the binding', async () => {
    const r = await verifier.verify(baseInput(forge(ring), { proof: 42 as unknown as string }))
    expect(reasonOf(r)).toBe('binding_mismatch')
  })

  it('a Uint8Array token (not a Buffer) is read as bytes', async () => {
    const t = Buffer.from(forge(ring))
    const r = await verifier.verify(baseInput(new Uint8Array(t.buffer, t.byteOffset, t.byteLength) as Buffer))
    expect(reasonOf(r)).toBe('ok')
  })
})

describe('hardening: numbers are finite and in range, or the call fails with a typed error', () => {
  it('expiryGraceSeconds NaN throws ConfigError instead of turning expiry and replay off', async () => {
    const replay = createMemoryReplayStore({ clock })
    const verifier = createVerifier(baseOptions(ring, { replay, maxExpiryGraceSeconds: 600 }))
    const expired = forge(ring, { claimsPatch: { iat: NOW - 400, exp: NOW - 100 } })
    for (const grace of [Number.NaN, Number.POSITIVE_INFINITY, -1, '30' as unknown as number]) {
      await expect(verifier.verify(baseInput(expired, { expiryGraceSeconds: grace, coordinates: 'orders/0/1' }))).rejects.toThrow(ConfigError)
    }
    // Nothing reached the replay store, and the honest path still says expired.
    expect(replay.size).toBe(0)
    expect(reasonOf(await verifier.verify(baseInput(expired)))).toBe('expired')
  })

  it('the replay store remembers a message up to exp + maxExpiryGraceSeconds, whatever grace its first delivery asked', async () => {
    let now = NOW_MS
    const replay = createMemoryReplayStore({ clock: () => now })
    const verifier = createVerifier(baseOptions(ring, { replay, clock: () => now, maxExpiryGraceSeconds: 600, cacheSize: 0 }))
    const token = forge(ring, { claimsPatch: { iat: NOW - 10, exp: NOW + 60 } })
    // First delivery, before exp, with no grace.
    expect(reasonOf(await verifier.verify(baseInput(token, { coordinates: 'orders/0/1' })))).toBe('ok')
    // 5 minutes after exp (past exp + clock tolerance, within the largest grace): a copy asking for
    // the grace at other coordinates is a replay, not a first delivery.
    now = (NOW + 60 + 300) * 1000
    expect(reasonOf(await verifier.verify(baseInput(token, { coordinates: 'orders/0/9', expiryGraceSeconds: 600 })))).toBe('replayed')
    // The first delivery again, at its own coordinates, with the grace: a redelivery.
    expect(reasonOf(await verifier.verify(baseInput(token, { coordinates: 'orders/0/1', expiryGraceSeconds: 600 })))).toBe('ok')
    // Without the grace it is simply expired.
    expect(reasonOf(await verifier.verify(baseInput(token, { coordinates: 'orders/0/9' })))).toBe('expired')
  })

  it('a clock that returns NaN throws (retry) instead of accepting an expired token', async () => {
    const verifier = createVerifier(baseOptions(ring, { clock: () => Number.NaN }))
    const expired = forge(ring, { claimsPatch: { iat: NOW - 400, exp: NOW - 100 } })
    await expect(verifier.verify(baseInput(expired))).rejects.toThrow(ConfigError)
  })

  it('a signer clock that returns NaN throws SigningError', () => {
    const signer = createSigner({ issuer: ISS, audience: AUD, key: ring.EdDSA, clock: () => Number.NaN })
    expect(() => signer.sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])).toThrow(SigningError)
  })

  it.each([
    ['NaN', Number.NaN],
    ['fractional', 1.5],
    ['negative', -1],
  ])('notBefore %s is refused by the signer', (_name, nbf) => {
    expect(() => ordersSigner(ring.EdDSA).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }], { notBefore: nbf })).toThrow(SigningError)
  })

  it.each([
    ['clockToleranceSeconds', Number.NaN],
    ['maxLifetimeSeconds', Number.POSITIVE_INFINITY],
    ['maxTokenBytes', 1.5],
    ['cacheSize', -1],
  ])('verifier option %s = %s is a ConfigError naming it', (name, value) => {
    const e = catchError(() => createVerifier(baseOptions(ring, { [name]: value })))
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues.map((i) => i.path)).toEqual([name])
  })
})

describe('hardening: header member names never reach error.claim unescaped', () => {
  const verifier = createVerifier(baseOptions(ring))
  it.each([
    ['a newline', 'x\ninjected: true'],
    ['an ANSI escape', '\u001b[31mred'],
    ['a very long name', 'n'.repeat(1000)],
    ['an empty name', ''],
  ])('%s', async (_name, member) => {
    const r = await verifier.verify(baseInput(forge(ring, { headerPatch: { [member]: 1 } })))
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.error.reason).toBe('header_not_allowed')
    expect(r.error.claim).toMatch(/^[\x21-\x7e]{1,32}$/)
    expect(r.error.message).not.toContain(member.slice(0, 8) === '' ? '\u0000' : member.slice(0, 8))
  })
})

describe('hardening: destinations are injective (percent-encoded components)', () => {
  it('queue billing / name refund/x and queue billing/refund / name x differ', () => {
    expect(bullmqDestination('billing', 'refund/x')).toBe('bullmq:billing/refund%2Fx')
    expect(bullmqDestination('billing/refund', 'x')).toBe('bullmq:billing%2Frefund/x')
    expect(bullmqLeaf('billing', 'refund/x', { a: 1 }).equals(bullmqLeaf('billing/refund', 'x', { a: 1 }))).toBe(false)
  })

  it('%, unicode and lone surrogates are encoded; unreserved characters are kept', () => {
    expect(encodeDestinationComponent('a-b.c_d~e')).toBe('a-b.c_d~e')
    expect(encodeDestinationComponent('50%')).toBe('50%25')
    expect(encodeDestinationComponent('%2F')).toBe('%252F')
    expect(encodeDestinationComponent("!*'()")).toBe('%21%2A%27%28%29')
    expect(encodeDestinationComponent('é')).toBe('%C3%A9')
    expect(encodeDestinationComponent('\ud800')).toBe('%EF%BF%BD')
    expect(encodeDestinationComponent('a\nb')).toBe('a%0Ab')
    expect(kafkaDestination('orders.v2')).toBe('kafka:orders.v2')
  })

  it('a job signed for billing + refund/x is binding_mismatch on billing/refund + x', async () => {
    const data = { amount: 5 }
    const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, [{ destination: bullmqDestination('billing', 'refund/x'), leaf: bullmqLeaf('billing', 'refund/x', data) }])
    const verifier = createVerifier(baseOptions(ring))
    const moved: VerifyInput = {
      tokens: [signed.token],
      destination: bullmqDestination('billing/refund', 'x'),
      leaf: bullmqLeaf('billing/refund', 'x', data),
      expectedTenant: 'acme',
    }
    expect(reasonOf(await verifier.verify(moved))).toBe('binding_mismatch')
    const home: VerifyInput = { ...moved, destination: bullmqDestination('billing', 'refund/x'), leaf: bullmqLeaf('billing', 'refund/x', data) }
    expect(reasonOf(await verifier.verify(home))).toBe('ok')
  })

  it('the scheduler leaf differs from the job leaf and from another scheduler id', () => {
    const d = { kind: 'daily' }
    const a = bullmqSchedulerLeaf('reports', 'nightly', 'report', d)
    expect(a.equals(bullmqLeaf('reports', 'report', d))).toBe(false)
    expect(a.equals(bullmqSchedulerLeaf('reports', 'nightly2', 'report', d))).toBe(false)
    expect(a.equals(bullmqSchedulerLeaf('reports', 'nightly', 'report', { kind: 'weekly' }))).toBe(false)
  })
})

describe('hardening: ACL patterns that can never match are refused', () => {
  it.each([
    ['a raw slash inside a job name', 'bullmq:billing/refund/x'],
    ['no scheme', 'orders'],
    ['a star in the middle', 'kafka:or*ders'],
    ['a star in the middle of another scheme', 'http:orders/*/x'],
    ['an exact bullmq pattern without a name', 'bullmq:billing'],
    ['a lower-case percent escape', 'bullmq:billing/refund%2fx'],
    ['a space', 'kafka:my orders'],
    ['an empty exact topic', 'kafka:'],
  ])('%s', (_name, pattern) => {
    const e = catchError(() => createVerifier(baseOptions(ring, { producerAcl: { orders: { destinations: [pattern] } } })))
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues[0]?.path).toBe('producerAcl.orders.destinations.0')
    expect((e as ConfigError).issues[0]?.message).toMatch(/^can never match/)
  })

  it.each(['kafka:*', 'bullmq:*', 'bullmq:billing/*', 'bullmq:billing/refund%2Fx', 'kafka:orders', '*', 'bull*', 'http:orders/POST /orders', 'http:orders/*'])('%s is accepted', (pattern) => {
    expect(() => createVerifier(baseOptions(ring, { producerAcl: { orders: { destinations: [pattern] } } }))).not.toThrow()
  })

  it('an ACL entry for an issuer that is not trusted is refused', () => {
    const e = catchError(() => createVerifier(baseOptions(ring, { producerAcl: { payments: { destinations: ['kafka:*'] } } })))
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues).toEqual([{ path: 'producerAcl.payments', message: expect.stringMatching(/not a trusted issuer/) }])
  })
})

describe('hardening: misconfiguration fails at construction, with the fix', () => {
  it('a misspelt option (replayStore) is a ConfigError pointing at replay', () => {
    const e = catchError(() => createVerifier({ ...baseOptions(ring), replayStore: createMemoryReplayStore() } as never))
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues).toEqual([{ path: 'replayStore', message: "unknown option 'replayStore'; did you mean 'replay'?" }])
  })

  it('an unknown option without a close match lists the known ones', () => {
    const e = catchError(() => createSigner({ issuer: ISS, audience: AUD, key: ring.EdDSA, zzzzzzzzzzzz: 1 } as never))
    expect((e as ConfigError).issues[0]?.message).toMatch(/^unknown option 'zzzzzzzzzzzz'; known options are issuer, audience, key/)
  })

  it('issuers: { orders: key } (a single key) names the path and the fix', () => {
    const e = catchError(() => createVerifier({ audience: AUD, issuers: { orders: ring.EdDSA as never } }))
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues[0]?.path).toBe('issuers.orders')
    expect((e as ConfigError).message).toContain('[key]')
  })

  it('no trusted issuer at all is refused', () => {
    expect(() => createVerifier({ audience: AUD, issuers: {} })).toThrow(ConfigError)
  })

  it('a node:crypto KeyObject or a private JWK given to the signer says how to import it', () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    for (const key of [privateKey, exportPrivateJwk(ring.EdDSA)]) {
      const e = catchError(() => createSigner({ issuer: ISS, audience: AUD, key: key as never }))
      expect(e).toBeInstanceOf(ConfigError)
      expect((e as ConfigError).issues[0]?.path).toBe('key')
      expect((e as ConfigError).message).toMatch(/importPem\(\).*importJwk\(\)/)
    }
  })

  it.each([
    ['without txn', { sub: 'u-1', tid: 'acme' }],
    ['with an empty sub', { sub: '', tid: 'acme', txn: 't' }],
    ['with an empty tid', { sub: 'u-1', tid: '', txn: 't' }],
    ['with a numeric txn', { sub: 'u-1', tid: 'acme', txn: 7 }],
    ['with an unknown pty', { sub: 'u-1', tid: 'acme', txn: 't', pty: 'root' }],
    ['with roles that are not strings', { sub: 'u-1', tid: 'acme', txn: 't', roles: [1] }],
    ['with a malformed act', { sub: 'u-1', tid: 'acme', txn: 't', act: { sub: '' } }],
    ['null', null],
  ])('a context %s is refused by the signer, not by the consumer', (_name, context) => {
    expect(() => ordersSigner(ring.EdDSA).sign(context as never, [{ destination: DEST, leaf: LEAF }])).toThrow(SigningError)
  })
})

describe('hardening: replay is keyed by (jti, leaf position)', () => {
  const records = [
    { key: 'k', value: Buffer.from('same') },
    { key: 'k', value: Buffer.from('same') },
    { key: 'other', value: Buffer.from('x') },
  ]
  const leaves = records.map((r) => kafkaLeaf(TOPIC, r.key, r.value))
  const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
  const input = (i: number, coordinates: string, proof = signed.proofs[i]): VerifyInput => ({
    tokens: [signed.token],
    proof,
    destination: DEST,
    leaf: leaves[i] as Buffer,
    expectedTenant: 'acme',
    coordinates,
  })

  it('two identical records of one batch are two messages; a copy of either elsewhere is replayed', async () => {
    const verifier = createVerifier(baseOptions(ring, { replay: createMemoryReplayStore({ clock }) }))
    expect(reasonOf(await verifier.verify(input(0, 'orders/0/10')))).toBe('ok')
    expect(reasonOf(await verifier.verify(input(1, 'orders/0/11')))).toBe('ok')
    expect(reasonOf(await verifier.verify(input(0, 'orders/0/10')))).toBe('ok') // redelivery
    expect(reasonOf(await verifier.verify(input(0, 'orders/0/99')))).toBe('replayed')
    expect(reasonOf(await verifier.verify(input(1, 'orders/1/3')))).toBe('replayed')
  })

  it('a proof rewritten to another index and size that still verifies is still the same message', async () => {
    // Leaf 6 of 7 and leaf 3 of 4 take the same two left turns: the rewritten proof verifies, and
    // must not open a second replay slot.
    const seven = Array.from({ length: 7 }, (_, i) => kafkaLeaf(TOPIC, `k${i}`, `v${i}`))
    const s = ordersSigner(ring.EdDSA).sign(CONTEXT, seven.map((leaf) => ({ destination: DEST, leaf })))
    const proof = s.proofs[6] as string
    const rewritten = proof.replace(/^6\.7\./, '3.4.')
    expect(rewritten).not.toBe(proof)
    const verifier = createVerifier(baseOptions(ring, { replay: createMemoryReplayStore({ clock }) }))
    const at = (p: string, coordinates: string): VerifyInput => ({ tokens: [s.token], proof: p, destination: DEST, leaf: seven[6] as Buffer, expectedTenant: 'acme', coordinates })
    expect(reasonOf(await verifier.verify(at(proof, 'orders/0/6')))).toBe('ok')
    expect(reasonOf(await verifier.verify(at(rewritten, 'orders/2/6')))).toBe('replayed')
  })

  it('firstDelivery: an earlier sighting at the same coordinates is a replay', async () => {
    const verifier = createVerifier(baseOptions(ring, { replay: createMemoryReplayStore({ clock }) }))
    const t = forge(ring)
    expect(reasonOf(await verifier.verify(baseInput(t, { coordinates: 'q/job-1', firstDelivery: true })))).toBe('ok')
    expect(reasonOf(await verifier.verify(baseInput(t, { coordinates: 'q/job-1' })))).toBe('ok') // a retry
    expect(reasonOf(await verifier.verify(baseInput(t, { coordinates: 'q/job-1', firstDelivery: true })))).toBe('replayed')
  })
})

describe('hardening: grants and message tokens never stand in for each other', () => {
  const data = { kind: 'daily' }
  const leaf = bullmqSchedulerLeaf('reports', 'nightly', 'report', data)
  const destination = bullmqDestination('reports', 'report')
  const input = (token: string): VerifyInput => ({ tokens: [token], destination, leaf, expectedTenant: 'acme', coordinates: 'reports/repeat:nightly:1' })

  it('a grant verifies with verifyGrant and is wrong_typ as a message token, cached or not', async () => {
    const grant = ordersSigner(ring.EdDSA).signGrant(CONTEXT, { destination, leaf })
    const verifier = createVerifier(baseOptions(ring))
    expect(reasonOf(await verifier.verify(input(grant.token)))).toBe('wrong_typ')
    expect(reasonOf(await verifier.verifyGrant(input(grant.token)))).toBe('ok')
    expect(reasonOf(await verifier.verify(input(grant.token)))).toBe('wrong_typ')
  })

  it('a message token is wrong_typ as a grant, cached or not', async () => {
    const token = ordersSigner(ring.EdDSA).sign(CONTEXT, [{ destination, leaf }]).token
    const verifier = createVerifier(baseOptions(ring))
    expect(reasonOf(await verifier.verifyGrant(input(token)))).toBe('wrong_typ')
    expect(reasonOf(await verifier.verify(input(token)))).toBe('ok')
    expect(reasonOf(await verifier.verifyGrant(input(token)))).toBe('wrong_typ')
  })

  it('a grant has its own lifetime cap, both on the signer and the verifier', async () => {
    const signer = createSigner({ issuer: ISS, audience: AUD, key: ring.EdDSA, clock, maxGrantLifetimeSeconds: 30 * 86_400 })
    const long = signer.signGrant(CONTEXT, { destination, leaf }, { lifetimeSeconds: 10 * 86_400 })
    expect(reasonOf(await createVerifier(baseOptions(ring)).verifyGrant(input(long.token)))).toBe('lifetime_exceeded')
    expect(reasonOf(await createVerifier(baseOptions(ring, { maxGrantLifetimeSeconds: 10 * 86_400 })).verifyGrant(input(long.token)))).toBe('ok')
    expect(() => ordersSigner(ring.EdDSA).signGrant(CONTEXT, { destination, leaf }, { lifetimeSeconds: 8 * 86_400 })).toThrow(SigningError)
  })

  it('an expired grant is expired, a revoked one revoked, and a grant has no replay step', async () => {
    const later = () => (NOW + 2 * 86_400) * 1000
    const grant = ordersSigner(ring.EdDSA).signGrant(CONTEXT, { destination, leaf })
    expect(reasonOf(await createVerifier(baseOptions(ring, { clock: later })).verifyGrant(input(grant.token)))).toBe('expired')
    const revocation = createMemoryRevocationStore({ clock })
    revocation.revoke('jti', grant.jti)
    expect(reasonOf(await createVerifier(baseOptions(ring, { revocation })).verifyGrant(input(grant.token)))).toBe('revoked')
    const replay = createMemoryReplayStore({ clock })
    const verifier = createVerifier(baseOptions(ring, { replay }))
    expect(reasonOf(await verifier.verifyGrant({ ...input(grant.token), coordinates: 'reports/repeat:nightly:1' }))).toBe('ok')
    expect(reasonOf(await verifier.verifyGrant({ ...input(grant.token), coordinates: 'reports/repeat:nightly:2' }))).toBe('ok')
    expect(replay.size).toBe(0)
  })
})

describe('hardening: ContextStore.exit', () => {
  it('runs with no context inside a foreign one, and restores it afterwards', async () => {
    const store = createContextStore()
    const seen: unknown[] = []
    await store.run({ sub: 'x', tid: 'acme', txn: 'x' }, async () => {
      await store.exit(async () => {
        await Promise.resolve()
        seen.push(store.current())
      })
      seen.push(store.current()?.sub)
    })
    expect(seen).toEqual([undefined, 'x'])
  })
})

function catchError(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

describe('hardening: in-memory store options and entries', () => {
  it.each([
    ['maxEntries NaN', { maxEntries: Number.NaN }],
    ['maxEntries 0', { maxEntries: 0 }],
    ['a misspelt option', { maxEntry: 10 }],
    ['a clock that is not a function', { clock: 5 }],
  ])('%s is a ConfigError for both stores', (_name, options) => {
    expect(() => createMemoryReplayStore(options as never)).toThrow(ConfigError)
    expect(() => createMemoryRevocationStore(options as never)).toThrow(ConfigError)
  })

  it('revoke refuses an unknown kind, an empty value and a NaN expiry', () => {
    const store = createMemoryRevocationStore({ clock })
    expect(() => store.revoke('email' as never, 'x')).toThrow(TypeError)
    expect(() => store.revoke('jti', '')).toThrow(TypeError)
    expect(() => store.revoke('jti', 'j1', Number.NaN)).toThrow(TypeError)
    expect(store.size).toBe(0)
  })
})

describe('verifyMany: one replay-store call per batch, same verdicts as verify', () => {
  const leaves = ['a', 'b', 'c'].map((v) => kafkaLeaf(TOPIC, 'k', v))
  const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
  const input = (i: number, coordinates: string, extra: Partial<VerifyInput> = {}): VerifyInput => ({
    tokens: [signed.token],
    proof: signed.proofs[i],
    destination: DEST,
    leaf: leaves[i] as Buffer,
    expectedTenant: 'acme',
    coordinates,
    ...extra,
  })

  it('gives verify’s verdicts in order, a later copy in the batch is replayed, and the store is called once', async () => {
    const memory = createMemoryReplayStore({ clock })
    let calls = 0
    const replay = {
      check: () => {
        throw new Error('check must not be called when checkMany exists')
      },
      checkMany: (entries: Parameters<NonNullable<typeof memory.checkMany>>[0]) => {
        calls++
        return memory.checkMany!(entries)
      },
    }
    const verifier = createVerifier(baseOptions(ring, { replay }))
    const results = await verifier.verifyMany([
      input(0, 'orders/0/1'),
      input(1, 'orders/0/2'),
      input(2, 'orders/0/3', { expectedTenant: 'globex' }),
      input(0, 'orders/0/9'),
      input(1, 'orders/0/2'),
    ])
    expect(results.map(reasonOf)).toEqual(['ok', 'ok', 'tenant_mismatch', 'replayed', 'ok'])
    expect(calls).toBe(1)
    // The verdicts are remembered like verify's.
    expect(reasonOf(await createVerifier(baseOptions(ring, { replay: memory })).verify(input(1, 'orders/5/5')))).toBe('replayed')
  })

  it('without checkMany, check runs once per message in order', async () => {
    const seen: string[] = []
    const memory = createMemoryReplayStore({ clock })
    const verifier = createVerifier(baseOptions(ring, { replay: { check: (e) => (seen.push(e.coordinates), memory.check(e)) } }))
    const results = await verifier.verifyMany([input(0, 'x/0/1'), input(0, 'x/0/2')])
    expect(results.map(reasonOf)).toEqual(['ok', 'replayed'])
    expect(seen).toEqual(['x/0/1', 'x/0/2'])
  })

  it('a store that fails makes verifyMany throw (retry), not reject', async () => {
    const verifier = createVerifier(baseOptions(ring, { replay: { check: () => 'first', checkMany: async () => Promise.reject(new Error('redis down')) } }))
    await expect(verifier.verifyMany([input(0, 'x/0/1')])).rejects.toThrow('redis down')
  })
})

describe('performance guards that must not change verdicts', () => {
  it('single flight: 50 concurrent verifications of one uncached token check its signature once', async () => {
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: [ring.EdDSA] }, clock })
    const leaves = Array.from({ length: 50 }, (_, i) => kafkaLeaf(TOPIC, `k${i}`, `v${i}`))
    const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
    const results = await Promise.all(
      leaves.map((leaf, i) => verifier.verify({ tokens: [signed.token], proof: signed.proofs[i], destination: DEST, leaf, expectedTenant: 'acme' })),
    )
    expect(results.map(reasonOf)).toEqual(Array(50).fill('ok'))
    expect(results.filter((r) => r.ok && !r.cached)).toHaveLength(1)
    // A failing token: every verification gets the same verdict and the same token hash.
    const bad = forge(ring, { claimsPatch: { aud: 'other' } })
    const failed = await Promise.all(Array.from({ length: 5 }, () => verifier.verify(baseInput(bad))))
    expect(failed.map(reasonOf)).toEqual(Array(5).fill('wrong_audience'))
    expect(new Set(failed.map((r) => r.tokenSha256)).size).toBe(1)
  })

  it('single flight with a key source that must be asked: one resolve, one signature check, for 50 waiting verifications', async () => {
    let resolves = 0
    let learned = false
    const source = {
      get: (kid: string) => (learned && kid === ring.EdDSA.kid ? ring.EdDSA : undefined),
      resolve: async (kid: string) => {
        resolves++
        await new Promise((r) => setTimeout(r, 20))
        learned = true
        return kid === ring.EdDSA.kid ? ring.EdDSA : undefined
      },
    }
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: source }, clock })
    const leaves = Array.from({ length: 50 }, (_, i) => kafkaLeaf(TOPIC, `k${i}`, `v${i}`))
    const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
    const results = await Promise.all(
      leaves.map((leaf, i) => verifier.verify({ tokens: [signed.token], proof: signed.proofs[i], destination: DEST, leaf, expectedTenant: 'acme' })),
    )
    expect(results.map(reasonOf)).toEqual(Array(50).fill('ok'))
    expect(resolves).toBe(1)
    // Every waiter reports the token's hash and kid, from the one check they shared.
    expect(new Set(results.map((r) => r.tokenSha256)).size).toBe(1)
    expect(results.filter((r) => r.ok && !r.cached)).toHaveLength(50)
  })

  it('a grant and a message token with the same text are never confused by the single flight', async () => {
    const verifier = createVerifier(baseOptions(ring))
    const t = forge(ring)
    const [asMessage, asGrant] = await Promise.all([verifier.verify(baseInput(t)), verifier.verifyGrant(baseInput(t))])
    expect([reasonOf(asMessage), reasonOf(asGrant)]).toEqual(['ok', 'wrong_typ'])
  })
})
