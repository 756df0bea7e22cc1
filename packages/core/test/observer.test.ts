import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import {
  combineObservers,
  createSigner,
  createVerifier,
  notify,
  type IdctxObserver,
  type RejectedEvent,
  type SignedEvent,
  type VerifiedEvent,
} from '@idctx/core'
import { baseInput, baseOptions, CONTEXT, DEST, forge, LEAF, makeKeyring, ordersSigner } from './fixtures.js'

const ring = makeKeyring()

function recorder() {
  const events: { signed: SignedEvent[]; verified: VerifiedEvent[]; rejected: RejectedEvent[] } = { signed: [], verified: [], rejected: [] }
  const observer: IdctxObserver = {
    onSigned: (e) => events.signed.push(e),
    onVerified: (e) => events.verified.push(e),
    onRejected: (e) => events.rejected.push(e),
  }
  return { events, observer }
}

const sha = (t: string) => createHash('sha256').update(t).digest('hex')

/** No event may carry the token, its signature or its payload segment. */
function expectNoToken(event: object, token: string) {
  const text = JSON.stringify(event)
  for (const part of [token, ...token.split('.')]) if (part.length > 8) expect(text).not.toContain(part)
  expect(text).not.toContain(LEAF.toString('base64url'))
}

describe('observer: events', () => {
  it('onSigned carries ids, destinations, count and tokenSha256, never the token', () => {
    const { events, observer } = recorder()
    const signer = createSigner({ issuer: 'orders', audience: 'shop', key: ring.EdDSA, observer })
    const s = signer.sign(CONTEXT, [{ destination: DEST, leaf: LEAF }, { destination: DEST, leaf: LEAF }])
    expect(events.signed).toHaveLength(1)
    const e = events.signed[0] as SignedEvent
    expect(e).toMatchObject({ iss: 'orders', kid: ring.EdDSA.kid, alg: 'EdDSA', jti: s.jti, txn: 'txn-1', tid: 'acme', sub: 'u-42', destinations: [DEST], count: 2, tokenSha256: sha(s.token) })
    expectNoToken(e, s.token)
  })

  it('onVerified carries tokenSha256 and the cache flag, never the token', async () => {
    const { events, observer } = recorder()
    const { token } = ordersSigner(ring.EdDSA).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])
    const verifier = createVerifier(baseOptions(ring, { observer }))
    await verifier.verify(baseInput(token, { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }))
    await verifier.verify(baseInput(token))
    expect(events.verified.map((e) => e.cached)).toEqual([false, true])
    for (const e of events.verified) {
      expect(e).toMatchObject({ iss: 'orders', kid: ring.EdDSA.kid, tid: 'acme', sub: 'u-42', destination: DEST, tokenSha256: sha(token) })
      expectNoToken(e, token)
    }
    expect(events.verified[0]?.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
  })

  it('onRejected carries the reason and what was readable, never the token', async () => {
    const { events, observer } = recorder()
    const verifier = createVerifier(baseOptions(ring, { observer }))
    // Change the first signature character (always a real change; the last ones can already be 'A').
    const badSig = forge(ring, { sig: (s) => `${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}` })
    const wrongTenant = forge(ring)
    await verifier.verify(baseInput(badSig))
    await verifier.verify(baseInput(wrongTenant, { expectedTenant: 'globex' }))
    await verifier.verify(baseInput('x'.repeat(5000)))
    const [sig, tenant, big] = events.rejected as [RejectedEvent, RejectedEvent, RejectedEvent]
    // before the signature holds, claims are not trusted and not reported
    expect(sig).toMatchObject({ reason: 'bad_signature', kid: ring.EdDSA.kid, tokenSha256: sha(badSig), iss: undefined, tid: undefined, sub: undefined })
    expect(tenant).toMatchObject({ reason: 'tenant_mismatch', iss: 'orders', tid: 'acme', sub: 'u-42', tokenSha256: sha(wrongTenant) })
    expect(big).toMatchObject({ reason: 'oversize', tokenSha256: undefined })
    expectNoToken(sig, badSig)
    expectNoToken(tenant, wrongTenant)
  })
})

describe('observer: isolation', () => {
  const throwing: IdctxObserver = {
    onSigned: () => { throw new Error('observer down') },
    onVerified: () => { throw new Error('observer down') },
    onRejected: () => { throw new Error('observer down') },
    onDisposition: () => { throw new Error('observer down') },
  }

  it('a throwing observer does not break signing or verification', async () => {
    const signer = createSigner({ issuer: 'orders', audience: 'shop', key: ring.EdDSA, observer: throwing, clock: () => 1_800_000_000_250 })
    const { token } = signer.sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])
    const verifier = createVerifier(baseOptions(ring, { observer: throwing }))
    expect((await verifier.verify(baseInput(token))).ok).toBe(true)
    const r = await verifier.verify(baseInput(token, { expectedTenant: 'globex' }))
    expect(r.ok ? 'ok' : r.error.reason).toBe('tenant_mismatch')
  })

  it('combineObservers keeps delivering to the others when one throws', () => {
    const { events, observer } = recorder()
    const both = combineObservers(throwing, undefined, observer)
    const e = { reason: 'expired', destination: DEST } as unknown as RejectedEvent
    both.onRejected?.(e)
    expect(events.rejected).toEqual([e])
    expect(() => notify([throwing, observer], 'onRejected', e)).not.toThrow()
    expect(events.rejected).toHaveLength(2)
    expect(() => notify(undefined, 'onRejected', e)).not.toThrow()
    expect(() => notify({}, 'onRejected', e)).not.toThrow()
  })

  it('a revocation store that throws makes verify throw (not the message\'s fault), and it is not a rejection', async () => {
    const { events, observer } = recorder()
    const broken = { isRevoked: async () => { throw new Error('redis down') } }
    const verifier = createVerifier(baseOptions(ring, { observer, revocation: broken }))
    await expect(verifier.verify(baseInput(forge(ring)))).rejects.toThrow('redis down')
    expect(events.rejected).toEqual([])
  })
})
