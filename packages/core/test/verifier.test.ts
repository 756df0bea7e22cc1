import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import {
  bullmqLeaf,
  createSigner,
  createVerifier,
  kafkaLeaf,
  toJwks,
  type MessageBinding,
} from '@idctx/core'
import { ALGS, AUD, baseInput, baseOptions, clock, CONTEXT, DEST, ISS, LEAF, makeKeyring, NOW, ordersSigner, TOPIC } from './fixtures.js'

const ring = makeKeyring()
const one: MessageBinding[] = [{ destination: DEST, leaf: LEAF }]

describe('verifier: one message, every algorithm', () => {
  it.each(ALGS.map((a) => [a]))('%s: verifies and returns claims, context and tokenSha256', async (alg) => {
    const signed = ordersSigner(ring[alg]).sign({ ...CONTEXT, roles: ['clerk'], scope: 'orders:write' }, one)
    const verifier = createVerifier(baseOptions(ring))
    const r = await verifier.verify(baseInput(signed.token))
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.cached).toBe(false)
    expect(r.tokenSha256).toBe(signed.tokenSha256)
    expect(r.tokenSha256).toBe(createHash('sha256').update(signed.token).digest('hex'))
    expect(r.claims).toMatchObject({ iss: ISS, aud: AUD, sub: 'u-42', tid: 'acme', txn: 'txn-1', jti: signed.jti, dst: DEST })
    expect(r.context).toMatchObject({
      sub: 'u-42',
      tid: 'acme',
      txn: 'txn-1',
      roles: ['clerk'],
      scope: 'orders:write',
      act: { sub: ISS },
      destination: DEST,
      tokenSha256: signed.tokenSha256,
    })
    expect(r.context.claims).toBe(r.claims)
  })

  it('the default algorithms are EdDSA, ES256 and RS256', async () => {
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: [ring.EdDSA, ring.ES256, ring.RS256] }, clock })
    for (const alg of ['EdDSA', 'ES256', 'RS256'] as const) {
      expect((await verifier.verify(baseInput(ordersSigner(ring[alg]).sign(CONTEXT, one).token))).ok).toBe(true)
    }
  })

  it('takes a JWKS document as an issuer key source', async () => {
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: toJwks([ring.EdDSA, ring.ES256]) }, clock })
    const r = await verifier.verify(baseInput(ordersSigner(ring.ES256).sign(CONTEXT, one).token))
    expect(r.ok).toBe(true)
  })

  it('takes the token as a Buffer (as kafkajs hands header values over)', async () => {
    const { token } = ordersSigner(ring.EdDSA).sign(CONTEXT, one)
    const r = await createVerifier(baseOptions(ring)).verify(baseInput(Buffer.from(token)))
    expect(r.ok).toBe(true)
  })

  it('computes a lazy leaf only when it gets that far', async () => {
    const { token } = ordersSigner(ring.EdDSA).sign(CONTEXT, one)
    const verifier = createVerifier(baseOptions(ring))
    let calls = 0
    const leaf = () => {
      calls++
      return LEAF
    }
    expect((await verifier.verify(baseInput(token, { leaf }))).ok).toBe(true)
    expect(calls).toBe(1)
    await verifier.verify(baseInput(token.slice(0, -2), { leaf }))
    expect(calls).toBe(1)
  })

  it('verifies a BullMQ job whose data came back with another key order and the token field', async () => {
    const data = { total: 3, tenant: 'acme', lines: [{ sku: 'a', n: 1 }] }
    const { token } = ordersSigner(ring.EdDSA).sign(CONTEXT, [{ destination: 'bullmq:invoices/invoice', leaf: bullmqLeaf('invoices', 'invoice', data) }])
    const readBack = { lines: [{ n: 1, sku: 'a' }], __idctx: token, tenant: 'acme', total: 3 }
    const r = await createVerifier(baseOptions(ring)).verify({
      tokens: [token],
      destination: 'bullmq:invoices/invoice',
      leaf: () => bullmqLeaf('invoices', 'invoice', readBack),
      expectedTenant: 'acme',
      payloadTenant: readBack.tenant,
    })
    expect(r.ok).toBe(true)
  })

  it('accepts a retried message within the granted expiry grace', async () => {
    const late = createSigner({ issuer: ISS, audience: AUD, key: ring.EdDSA, clock: () => (NOW - 400) * 1000 })
    const { token } = late.sign(CONTEXT, one)
    const verifier = createVerifier(baseOptions(ring, { maxExpiryGraceSeconds: 600 }))
    const r0 = await verifier.verify(baseInput(token))
    expect(r0.ok ? 'ok' : r0.error.reason).toBe('expired')
    expect((await verifier.verify(baseInput(token, { expiryGraceSeconds: 300 }))).ok).toBe(true)
    // asking for more than the verifier grants is capped
    const capped = createVerifier(baseOptions(ring, { maxExpiryGraceSeconds: 10 }))
    const r1 = await capped.verify(baseInput(token, { expiryGraceSeconds: 3600 }))
    expect(r1.ok ? 'ok' : r1.error.reason).toBe('expired')
  })
})

describe('verifier: batches', () => {
  it.each([2, 3, 7, 16, 33])('a batch of %i records verifies every record with its proof, in any order', async (n) => {
    const leaves = Array.from({ length: n }, (_, i) => kafkaLeaf(TOPIC, `k${i}`, `{"n":${i}}`))
    const signed = ordersSigner(ring.ES256).sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
    const verifier = createVerifier(baseOptions(ring))
    const order = leaves.map((_, i) => i).sort((a, b) => ((a * 7919) % n) - ((b * 7919) % n))
    const cached: boolean[] = []
    for (const i of order) {
      const r = await verifier.verify(baseInput(signed.token, { leaf: leaves[i] as Buffer, proof: signed.proofs[i] }))
      expect(r.ok ? 'ok' : r.error.reason).toBe('ok')
      if (r.ok) cached.push(r.cached)
    }
    // one signature check for the whole batch
    expect(cached).toEqual([false, ...Array(n - 1).fill(true)])
    // and with the batch nodes known, every wrong pairing still fails
    for (let i = 0; i < n; i++) {
      const j = (i + 1) % n
      const r = await verifier.verify(baseInput(signed.token, { leaf: leaves[j] as Buffer, proof: signed.proofs[i] }))
      expect(r.ok ? 'ok' : r.error.reason).toBe('binding_mismatch')
    }
  })

  it('a batch spanning two topics binds each record to its own topic', async () => {
    const a = kafkaLeaf('orders', 'k', 'va')
    const b = kafkaLeaf('payments', 'k', 'vb')
    const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, [
      { destination: 'kafka:orders', leaf: a },
      { destination: 'kafka:payments', leaf: b },
    ])
    const verifier = createVerifier(baseOptions(ring))
    expect((await verifier.verify(baseInput(signed.token, { destination: 'kafka:payments', leaf: b, proof: signed.proofs[1] }))).ok).toBe(true)
    // the orders record's bytes delivered to payments: its leaf there is another one
    const moved = await verifier.verify(baseInput(signed.token, { destination: 'kafka:payments', leaf: kafkaLeaf('payments', 'k', 'va'), proof: signed.proofs[0] }))
    expect(moved.ok ? 'ok' : moved.error.reason).toBe('binding_mismatch')
  })
})

describe('verifier: cache', () => {
  it('serves the second message of a token from the cache', async () => {
    const { token } = ordersSigner(ring.RS256).sign(CONTEXT, one)
    const verifier = createVerifier(baseOptions(ring))
    const first = await verifier.verify(baseInput(token))
    const second = await verifier.verify(baseInput(token))
    expect(first.ok && !first.cached).toBe(true)
    expect(second.ok && second.cached).toBe(true)
    if (first.ok && second.ok) expect(second.tokenSha256).toBe(first.tokenSha256)
  })

  it('clearCache forces a full check again', async () => {
    const { token } = ordersSigner(ring.EdDSA).sign(CONTEXT, one)
    const verifier = createVerifier(baseOptions(ring))
    await verifier.verify(baseInput(token))
    verifier.clearCache()
    const r = await verifier.verify(baseInput(token))
    expect(r.ok && r.cached).toBe(false)
    expect(r.ok).toBe(true)
  })

  it('cacheSize 0 disables the cache; a small cache evicts the oldest', async () => {
    const tokens = [0, 1, 2].map(() => ordersSigner(ring.EdDSA).sign(CONTEXT, one).token)
    const none = createVerifier(baseOptions(ring, { cacheSize: 0 }))
    await none.verify(baseInput(tokens[0] as string))
    const again = await none.verify(baseInput(tokens[0] as string))
    expect(again.ok && again.cached).toBe(false)
    const small = createVerifier(baseOptions(ring, { cacheSize: 2 }))
    for (const t of tokens) await small.verify(baseInput(t))
    const oldest = await small.verify(baseInput(tokens[0] as string))
    const newest = await small.verify(baseInput(tokens[2] as string))
    expect(oldest.ok && oldest.cached).toBe(false)
    expect(newest.ok && newest.cached).toBe(true)
  })

  it('a cached token is still checked for time, binding, tenant and policies on every message', async () => {
    let now = NOW * 1000
    const verifier = createVerifier(baseOptions(ring, { clock: () => now }))
    const { token } = ordersSigner(ring.EdDSA).sign(CONTEXT, one)
    expect((await verifier.verify(baseInput(token))).ok).toBe(true)
    const reason = async (input = baseInput(token)) => {
      const r = await verifier.verify(input)
      return r.ok ? 'ok' : r.error.reason
    }
    expect(await reason(baseInput(token, { leaf: kafkaLeaf(TOPIC, 'other', 'x') }))).toBe('binding_mismatch')
    expect(await reason(baseInput(token, { destination: 'kafka:payments' }))).toBe('binding_mismatch')
    expect(await reason(baseInput(token, { expectedTenant: 'globex' }))).toBe('tenant_mismatch')
    now += 331_000
    expect(await reason()).toBe('expired')
  })
})

describe('verifier: a kid published by two issuers', () => {
  it('tries the key of the issuer the token names, so one issuer cannot shadow another', async () => {
    const { generateKey } = await import('@idctx/core')
    const a = generateKey('EdDSA', { kid: 'shared-kid' })
    const b = generateKey('EdDSA', { kid: 'shared-kid' })
    const verifier = createVerifier({ audience: AUD, issuers: { alpha: [a], beta: [b] }, clock })
    const forBeta = createSigner({ issuer: 'beta', audience: AUD, key: b, clock }).sign(CONTEXT, one)
    const forAlpha = createSigner({ issuer: 'alpha', audience: AUD, key: a, clock }).sign(CONTEXT, one)
    const rb = await verifier.verify(baseInput(forBeta.token))
    const ra = await verifier.verify(baseInput(forAlpha.token))
    expect(rb.ok).toBe(true)
    expect(ra.ok).toBe(true)
    // claiming the other issuer with one's own key still fails: the key is looked up for 'alpha',
    // whose key did not sign it.
    const spoof = createSigner({ issuer: 'alpha', audience: AUD, key: b, clock }).sign(CONTEXT, one)
    const rs = await verifier.verify(baseInput(spoof.token))
    expect(rs.ok ? 'accepted' : rs.error.reason).toBe('bad_signature')
  })
})

describe('verifier: the batch-proof node budget', () => {
  it.each([[0], [3], [200_000]])('budget %i: every record of a batch verifies, a swapped leaf never does', async (budget) => {
    const leaves = Array.from({ length: 9 }, (_, i) => kafkaLeaf(TOPIC, `k${i}`, `v${i}`))
    const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
    const verifier = createVerifier({ ...baseOptions(ring), proofNodeCacheSize: budget })
    for (let i = 0; i < leaves.length; i++) {
      const ok = await verifier.verify(baseInput(signed.token, { leaf: leaves[i] as Buffer, proof: signed.proofs[i] }))
      expect(ok.ok).toBe(true)
      const swapped = await verifier.verify(baseInput(signed.token, { leaf: leaves[(i + 1) % leaves.length] as Buffer, proof: signed.proofs[i] }))
      expect(swapped.ok ? 'ok' : swapped.error.reason).toBe('binding_mismatch')
    }
  })
})
