import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { jwtVerify } from 'jose'
import {
  createKeySet,
  createSigner,
  exportPublicJwk,
  generateKey,
  importJwk,
  kafkaLeaf,
  merkleRoot,
  SigningError,
  type ActorClaim,
  type IdentityContext,
  type MessageBinding,
  type SignerOptions,
} from '@idctx/core'
import { ALGS, AUD, clock, CONTEXT, DEST, ISS, LEAF, makeKeyring, NOW, NOW_MS } from './fixtures.js'

const ring = makeKeyring()
const one: MessageBinding[] = [{ destination: DEST, leaf: LEAF }]

const decode = (token: string) => {
  const [h, p] = token.split('.') as [string, string]
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>,
  }
}

const signer = (extra: Partial<SignerOptions> = {}) =>
  createSigner({ issuer: ISS, audience: AUD, key: ring.EdDSA, clock, ...extra })

const chain = (...subs: string[]): ActorClaim | undefined => {
  let act: ActorClaim | undefined
  for (const sub of [...subs].reverse()) act = act === undefined ? { sub } : { sub, act }
  return act
}

describe('signer: claims and header', () => {
  it('writes exactly alg, kid, typ in the header', () => {
    const { header } = decode(signer().sign(CONTEXT, one).token)
    expect(header).toEqual({ alg: 'EdDSA', kid: ring.EdDSA.kid, typ: 'idctx+jwt' })
  })

  it('writes every required claim, act and dst for one message', () => {
    const s = signer().sign(CONTEXT, one)
    const { claims } = decode(s.token)
    expect(claims).toEqual({
      iss: ISS,
      aud: AUD,
      sub: CONTEXT.sub,
      tid: CONTEXT.tid,
      txn: CONTEXT.txn,
      jti: s.jti,
      iat: NOW,
      exp: NOW + 300,
      act: { sub: ISS },
      dst: DEST,
      mh: LEAF.toString('base64url'),
    })
    expect(s.exp).toBe(NOW + 300)
    expect(s.proofs).toEqual([undefined])
    expect(s.tokenSha256).toBe(createHash('sha256').update(s.token).digest('hex'))
  })

  it('carries pty, roles, scope and notBefore when given', () => {
    const ctx: IdentityContext = { ...CONTEXT, pty: 'service', roles: ['clerk', 'admin'], scope: 'orders:read orders:write' }
    const { claims } = decode(signer().sign(ctx, one, { notBefore: NOW + 10 }).token)
    expect(claims).toMatchObject({ pty: 'service', roles: ['clerk', 'admin'], scope: 'orders:read orders:write', nbf: NOW + 10 })
  })

  it('gives every token a fresh random jti', () => {
    const s = signer()
    const jtis = new Set(Array.from({ length: 200 }, () => s.sign(CONTEXT, one).jti))
    expect(jtis.size).toBe(200)
    for (const j of jtis) expect(j).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })

  it.each(ALGS.map((a) => [a]))('%s tokens verify with jose jwtVerify (typ idctx+jwt)', async (alg) => {
    const { token } = signer({ key: ring[alg], allowHS256: true }).sign(CONTEXT, one)
    const { payload, protectedHeader } = await jwtVerify(token, ring[alg].verificationKey, {
      algorithms: [alg],
      issuer: ISS,
      audience: AUD,
      typ: 'idctx+jwt',
      currentDate: new Date(NOW_MS),
    })
    expect(protectedHeader.alg).toBe(alg)
    expect(payload.tid).toBe('acme')
  })

  it('signs with the active key of a key set', () => {
    const keySet = createKeySet({ active: generateKey('ES256', { kid: 'k-a' }) })
    const s = signer({ key: keySet })
    expect(decode(s.sign(CONTEXT, one).token).header.kid).toBe('k-a')
    keySet.rotate(generateKey('EdDSA', { kid: 'k-b' }))
    expect(decode(s.sign(CONTEXT, one).token).header).toMatchObject({ kid: 'k-b', alg: 'EdDSA' })
  })
})

describe('signer: lifetime', () => {
  it('defaults to 300 s', () => {
    const { claims } = decode(signer().sign(CONTEXT, one).token)
    expect((claims.exp as number) - (claims.iat as number)).toBe(300)
  })

  it('takes a default lifetime option and a per-call lifetime', () => {
    const s = signer({ lifetimeSeconds: 60 })
    expect(decode(s.sign(CONTEXT, one).token).claims.exp).toBe(NOW + 60)
    expect(decode(s.sign(CONTEXT, one, { lifetimeSeconds: 900 }).token).claims.exp).toBe(NOW + 900)
  })

  it('caps a per-call lifetime at maxLifetimeSeconds (default 900)', () => {
    expect(() => signer().sign(CONTEXT, one, { lifetimeSeconds: 901 })).toThrow(SigningError)
    expect(() => signer({ maxLifetimeSeconds: 3600 }).sign(CONTEXT, one, { lifetimeSeconds: 3601 })).toThrow(SigningError)
    expect(decode(signer({ maxLifetimeSeconds: 3600 }).sign(CONTEXT, one, { lifetimeSeconds: 3600 }).token).claims.exp).toBe(NOW + 3600)
    expect(() => signer().sign(CONTEXT, one, { lifetimeSeconds: 0 })).toThrow(SigningError)
    expect(() => signer().sign(CONTEXT, one, { lifetimeSeconds: 1.5 })).toThrow(SigningError)
  })

  it('refuses a default lifetime above the cap', () => {
    expect(() => signer({ lifetimeSeconds: 1000 })).toThrow(SigningError)
  })
})

describe('signer: keys', () => {
  it('HS256 needs allowHS256', () => {
    expect(() => signer({ key: ring.HS256 })).toThrow(SigningError)
    expect(() => signer({ key: ring.HS256, allowHS256: true })).not.toThrow()
  })

  it('an HS256 key rotated into a key set is refused at sign time', () => {
    const keySet = createKeySet({ active: generateKey() })
    const s = signer({ key: keySet })
    keySet.rotate(generateKey('HS256'))
    expect(() => s.sign(CONTEXT, one)).toThrow(SigningError)
  })

  it('refuses a verify-only key', () => {
    expect(() => signer({ key: importJwk(exportPublicJwk(ring.EdDSA)) })).toThrow(SigningError)
  })
})

describe('signer: actor chain', () => {
  it('pushes the issuer on top of the incoming chain', () => {
    const { claims } = decode(signer().sign({ ...CONTEXT, act: chain('gateway', 'web') }, one).token)
    expect(claims.act).toEqual(chain(ISS, 'gateway', 'web'))
  })

  it('caps the depth, keeping the newest producers (default 4)', () => {
    const deep = chain('p1', 'p2', 'p3', 'p4', 'p5', 'p6')
    expect(decode(signer().sign({ ...CONTEXT, act: deep }, one).token).claims.act).toEqual(chain(ISS, 'p1', 'p2', 'p3'))
    expect(decode(signer({ maxActorDepth: 2 }).sign({ ...CONTEXT, act: deep }, one).token).claims.act).toEqual(chain(ISS, 'p1'))
    expect(decode(signer({ maxActorDepth: 1 }).sign({ ...CONTEXT, act: deep }, one).token).claims.act).toEqual(chain(ISS))
  })
})

describe('signer: destinations and batches', () => {
  const leaves = [0, 1, 2, 3, 4].map((i) => kafkaLeaf('orders', `k${i}`, `v${i}`))

  it('signs the Merkle root of a batch and returns a proof per message', () => {
    const s = signer().sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
    const { claims } = decode(s.token)
    expect(claims.mh).toBe(merkleRoot(leaves).toString('base64url'))
    expect(s.proofs).toHaveLength(5)
    s.proofs.forEach((p, i) => expect(p).toMatch(new RegExp(`^${i}\\.5(\\.[A-Za-z0-9_-]{43})+$`)))
  })

  it('writes dst only when every message has the same destination', () => {
    expect(decode(signer().sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf }))).token).claims.dst).toBe(DEST)
    const mixed = leaves.map((leaf, i) => ({ destination: i === 3 ? 'kafka:payments' : DEST, leaf }))
    expect(decode(signer().sign(CONTEXT, mixed).token).claims).not.toHaveProperty('dst')
  })

  it('refuses no messages, or a leaf that is not a 32-byte hash', () => {
    expect(() => signer().sign(CONTEXT, [])).toThrow(TypeError)
    expect(() => signer().sign(CONTEXT, [{ destination: DEST, leaf: Buffer.alloc(31) }])).toThrow(TypeError)
  })

  it('refuses a missing context', () => {
    expect(() => signer().sign(undefined as never, one)).toThrow(SigningError)
  })
})

describe('signer: trace id', () => {
  it.each([
    ['a valid trace id', '4bf92f3577b34da6a3ce929d0e0e4736', '4bf92f3577b34da6a3ce929d0e0e4736'],
    ['the all-zero (invalid) trace id', '0'.repeat(32), undefined],
    ['upper-case hex', '4BF92F3577B34DA6A3CE929D0E0E4736', undefined],
    ['too short', '4bf92f3577b34da6', undefined],
    ['a full traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', undefined],
    ['no active trace', undefined, undefined],
  ])('binds trc only for a valid trace id: %s', (_n, traceId, expected) => {
    const { claims } = decode(signer({ traceId: () => traceId }).sign(CONTEXT, one).token)
    if (expected === undefined) expect(claims).not.toHaveProperty('trc')
    else expect(claims.trc).toBe(expected)
  })
})
