import { describe, it, expect } from 'vitest'
import {
  createMemoryReplayStore,
  createMemoryRevocationStore,
  createVerifier,
  REASON_CODES,
  VerificationError,
  type ReasonCode,
  type RevocableId,
  type VerifierOptions,
  type VerifyInput,
} from '@idctx/core'
import { corpus, type CorpusCase } from './corpus.js'
import { baseInput, baseOptions, CONTEXT, forge, makeKeyring, NOW, signBatch, TOPIC } from './fixtures.js'

const ring = makeKeyring()
const tokenCases = corpus(ring)

interface PolicyCase {
  readonly name: string
  readonly reason: ReasonCode | 'ok'
  readonly token?: string
  readonly input?: Partial<VerifyInput>
  readonly options?: Partial<VerifierOptions>
  /** A first delivery that must be accepted before the case runs (replay). */
  readonly prime?: Partial<VerifyInput>
}

function revokedBy(kind: RevocableId, value: string, untilMs?: number): Partial<VerifierOptions> {
  const revocation = createMemoryRevocationStore({ clock: () => NOW * 1000 })
  revocation.revoke(kind, value, untilMs)
  return { revocation }
}

const policyToken = forge(ring, { claimsPatch: { scope: 'orders:read orders:write', roles: ['clerk'] } })
const policyJti = JSON.parse(Buffer.from(policyToken.split('.')[1] as string, 'base64url').toString()).jti as string
const batch = signBatch(ring)

const policyCases: PolicyCase[] = [
  // 9. tenant
  { name: 'tenant_mismatch: consumer expects another tenant', reason: 'tenant_mismatch', input: { expectedTenant: 'globex' } },
  { name: 'tenant_mismatch: tenant not in the expected list', reason: 'tenant_mismatch', input: { expectedTenant: ['globex', 'initech'] } },
  { name: 'tenant_mismatch: tenant differs only in case', reason: 'tenant_mismatch', input: { expectedTenant: 'ACME' } },
  { name: 'tenant_mismatch: payload names another tenant', reason: 'tenant_mismatch', input: { payloadTenant: 'globex' } },
  { name: 'tenant_mismatch: payload tenant empty', reason: 'tenant_mismatch', input: { payloadTenant: '' } },
  { name: 'tenant_mismatch: cross-tenant token from a valid producer', reason: 'tenant_mismatch', token: forge(ring, { claimsPatch: { tid: 'globex' } }) },
  { name: 'tenant ok: expected list contains it', reason: 'ok', input: { expectedTenant: ['globex', 'acme'] } },
  { name: 'tenant ok: any tenant and a matching payload tenant', reason: 'ok', input: { expectedTenant: { any: true }, payloadTenant: 'acme' } },
  // 10. producer ACL and scopes
  { name: 'actor_not_allowed: ACL grants another destination', reason: 'actor_not_allowed', options: { producerAcl: { orders: { destinations: ['kafka:payments'] } } } },
  { name: 'actor_not_allowed: ACL grants another tenant', reason: 'actor_not_allowed', options: { producerAcl: { orders: { destinations: ['kafka:orders'], tenants: ['globex'] } } } },
  { name: 'actor_not_allowed: issuer not in the ACL', reason: 'actor_not_allowed', options: { producerAcl: { billing: { destinations: ['kafka:*'] } } } },
  { name: 'actor_not_allowed: prefix grant for BullMQ only', reason: 'actor_not_allowed', options: { producerAcl: { orders: { destinations: ['bullmq:*'] } } } },
  { name: 'actor ok: prefix grant and tenant list', reason: 'ok', options: { producerAcl: { orders: { destinations: ['kafka:ord*'], tenants: ['acme'] } } } },
  { name: 'insufficient_scope: required scope missing', reason: 'insufficient_scope', options: { requirements: { scopes: ['orders:delete'] } } },
  { name: 'insufficient_scope: scope is only a prefix of the required one', reason: 'insufficient_scope', options: { requirements: { scopes: ['orders:writ'] } } },
  { name: 'insufficient_scope: per-destination role missing', reason: 'insufficient_scope', input: { requirements: { roles: ['admin'] } } },
  { name: 'insufficient_scope: token without roles', reason: 'insufficient_scope', token: forge(ring), options: { requirements: { roles: ['clerk'] } } },
  { name: 'insufficient_scope: token without scope', reason: 'insufficient_scope', token: forge(ring), input: { requirements: { scopes: ['orders:read'] } } },
  { name: 'scope ok: all required scopes and roles', reason: 'ok', options: { requirements: { scopes: ['orders:write'] } }, input: { requirements: { scopes: ['orders:read'], roles: ['clerk'] } } },
  // 11. deny-list and replay
  { name: 'revoked: kid', reason: 'revoked', options: revokedBy('kid', ring.EdDSA.kid) },
  { name: 'revoked: jti', reason: 'revoked', options: revokedBy('jti', policyJti) },
  { name: 'revoked: txn', reason: 'revoked', options: revokedBy('txn', CONTEXT.txn) },
  { name: 'revoked: sub', reason: 'revoked', options: revokedBy('sub', CONTEXT.sub) },
  { name: 'revoked: tid', reason: 'revoked', options: revokedBy('tid', CONTEXT.tid) },
  { name: 'revoked: until a time still ahead', reason: 'revoked', options: revokedBy('sub', CONTEXT.sub, NOW * 1000 + 1) },
  { name: 'revocation ok: an expired revocation', reason: 'ok', options: revokedBy('sub', CONTEXT.sub, NOW * 1000) },
  { name: 'revocation ok: another kid revoked', reason: 'ok', options: revokedBy('kid', ring.ES256.kid) },
  { name: 'replayed: same record at another offset', reason: 'replayed', prime: { coordinates: 'orders/0/41' }, input: { coordinates: 'orders/0/42' } },
  { name: 'replayed: same record on another partition', reason: 'replayed', prime: { coordinates: 'orders/0/41' }, input: { coordinates: 'orders/1/41' } },
  {
    name: 'replayed: batch record re-published elsewhere',
    reason: 'replayed',
    token: batch.token,
    prime: { leaf: batch.leaves[1] as Buffer, proof: batch.proofs[1], coordinates: 'orders/0/7' },
    input: { leaf: batch.leaves[1] as Buffer, proof: batch.proofs[1], coordinates: 'orders/0/99' },
  },
  { name: 'replay ok: the same coordinates again is a redelivery', reason: 'ok', prime: { coordinates: 'orders/0/41' }, input: { coordinates: 'orders/0/41' } },
  {
    name: 'replay ok: another record of the same batch token is not a replay',
    reason: 'ok',
    token: batch.token,
    prime: { leaf: batch.leaves[0] as Buffer, proof: batch.proofs[0], coordinates: 'orders/0/7' },
    input: { leaf: batch.leaves[1] as Buffer, proof: batch.proofs[1], coordinates: 'orders/0/8' },
  },
]

function expectReason(result: Awaited<ReturnType<ReturnType<typeof createVerifier>['verify']>>, reason: ReasonCode | 'ok', token?: string | Buffer) {
  if (reason === 'ok') {
    expect(result.ok ? 'ok' : result.error.reason).toBe('ok')
    return
  }
  expect(result.ok).toBe(false)
  if (result.ok) return
  expect(result.error).toBeInstanceOf(VerificationError)
  expect(result.error.reason).toBe(reason)
  if (typeof token === 'string' && token.length > 20) {
    // never leak the token (or its signature) into the error
    expect(result.error.message).not.toContain(token)
    const sig = token.split('.')[2]
    if (sig !== undefined && sig.length > 10) expect(result.error.message).not.toContain(sig)
  }
}

describe('hostile tokens (token and message level)', () => {
  it.each(tokenCases.map((c) => [c.name, c] as const))('%s', async (_name, c: CorpusCase) => {
    const verifier = createVerifier(baseOptions(ring, c.options))
    const result = await verifier.verify(c.input)
    expectReason(result, c.reason, c.input.tokens[0])
  })
})

describe('hostile messages (tenant, producer, scope, deny-list, replay)', () => {
  it.each(policyCases.map((c) => [c.name, c] as const))('%s', async (_name, c: PolicyCase) => {
    const token = c.token ?? policyToken
    const verifier = createVerifier(baseOptions(ring, { replay: createMemoryReplayStore({ clock: () => NOW * 1000 }), ...c.options }))
    if (c.prime !== undefined) {
      const first = await verifier.verify(baseInput(token, c.prime))
      expectReason(first, 'ok')
    }
    const result = await verifier.verify(baseInput(token, c.input))
    expectReason(result, c.reason, token)
  })

  it('a replay is caught even when the first delivery was served from the token cache', async () => {
    const verifier = createVerifier(baseOptions(ring, { replay: createMemoryReplayStore({ clock: () => NOW * 1000 }) }))
    const at = (i: number) => baseInput(batch.token, { leaf: batch.leaves[i] as Buffer, proof: batch.proofs[i], coordinates: `${TOPIC}/0/${i}` })
    for (const i of [0, 1, 2]) expectReason(await verifier.verify(at(i)), 'ok')
    const again = await verifier.verify({ ...at(2), coordinates: `${TOPIC}/0/1000` })
    expect(again.ok).toBe(false)
    if (!again.ok) expect(again.error.reason).toBe('replayed')
    expectReason(await verifier.verify(at(2)), 'ok')
  })

  it('verifyOrThrow throws the VerificationError with the reason', async () => {
    const verifier = createVerifier(baseOptions(ring))
    await expect(verifier.verifyOrThrow(baseInput(policyToken, { expectedTenant: 'globex' }))).rejects.toMatchObject({
      name: 'VerificationError',
      reason: 'tenant_mismatch',
      claim: 'tid',
      code: 'ERR_IDCTX_VERIFICATION',
    })
  })
})

describe('coverage of the hostile suite', () => {
  it('has at least two crafted inputs for every reason code', () => {
    const counts = new Map<string, number>()
    for (const c of [...tokenCases, ...policyCases]) counts.set(c.reason, (counts.get(c.reason) ?? 0) + 1)
    const short = REASON_CODES.filter((code) => (counts.get(code) ?? 0) < 2)
    expect(short).toEqual([])
  })
})
