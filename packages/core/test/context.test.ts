import { describe, it, expect } from 'vitest'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  createContextStore,
  createVerifier,
  currentContext,
  defaultContextStore,
  nextHopContext,
  runWithContext,
  type IdctxClaims,
  type IdentityContext,
} from '@idctx/core'
import { baseInput, baseOptions, CONTEXT, DEST, LEAF, makeKeyring, ordersSigner } from './fixtures.js'

const ctx = (tid: string): IdentityContext => ({ sub: `u-${tid}`, tid, txn: `txn-${tid}` })

describe('context: AsyncLocalStorage', () => {
  it('is undefined outside any run', () => {
    expect(currentContext()).toBeUndefined()
  })

  it('holds across awaits, timers and promise chains', async () => {
    const seen = await runWithContext(ctx('acme'), async () => {
      const out: (string | undefined)[] = [currentContext()?.tid]
      await sleep(1)
      out.push(currentContext()?.tid)
      await new Promise<void>((r) => setImmediate(r))
      out.push(currentContext()?.tid)
      out.push(await Promise.resolve().then(() => currentContext()?.tid))
      await new Promise<void>((r) => setTimeout(() => { out.push(currentContext()?.tid); r() }, 1))
      return out
    })
    expect(seen).toEqual(['acme', 'acme', 'acme', 'acme', 'acme'])
    expect(currentContext()).toBeUndefined()
  })

  it('keeps concurrent runs apart', async () => {
    const run = (tid: string, delay: number) =>
      runWithContext(ctx(tid), async () => {
        await sleep(delay)
        return currentContext()?.tid
      })
    expect(await Promise.all([run('a', 5), run('b', 1), run('c', 3)])).toEqual(['a', 'b', 'c'])
  })

  it('nests: the inner context wins inside, the outer comes back after', async () => {
    await runWithContext(ctx('outer'), async () => {
      await runWithContext(ctx('inner'), async () => {
        await sleep(1)
        expect(currentContext()?.tid).toBe('inner')
      })
      expect(currentContext()?.tid).toBe('outer')
    })
  })

  it('returns what the function returns, sync or async', async () => {
    expect(runWithContext(ctx('a'), () => 42)).toBe(42)
    expect(await runWithContext(ctx('a'), async () => 43)).toBe(43)
  })

  it('separate stores do not see each other', () => {
    const mine = createContextStore()
    mine.run(ctx('x'), () => {
      expect(mine.current()?.tid).toBe('x')
      expect(defaultContextStore.current()).toBeUndefined()
    })
    runWithContext(ctx('y'), () => expect(mine.current()).toBeUndefined())
  })
})

describe('context: next hop', () => {
  const claims = {
    iss: 'orders', aud: 'shop', sub: 'u-1', tid: 'acme', txn: 'txn-9', jti: 'j', iat: 1, exp: 2,
    mh: 'A'.repeat(43), roles: ['clerk'], scope: 'a b', pty: 'user', act: { sub: 'orders', act: { sub: 'web' } },
  } satisfies IdctxClaims

  it('keeps sub, tid, txn, roles, scope, pty and the actor chain, and drops token-specific claims', () => {
    const next = nextHopContext(claims)
    expect(next).toEqual({ sub: 'u-1', tid: 'acme', txn: 'txn-9', pty: 'user', roles: ['clerk'], scope: 'a b', act: claims.act })
    expect(next).not.toHaveProperty('jti')
    expect(next).not.toHaveProperty('mh')
  })

  it('names the signer as actor when the token had no chain', () => {
    const { act: _a, ...bare } = claims
    expect(nextHopContext(bare).act).toEqual({ sub: 'orders' })
  })

  it('a verified message re-signed in its context keeps sub/tid/txn, gets a new jti and the new producer on top', async () => {
    const ring = makeKeyring()
    const first = ordersSigner(ring.EdDSA).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])
    const r = await createVerifier(baseOptions(ring)).verify(baseInput(first.token))
    if (!r.ok) throw r.error
    const { createSigner } = await import('@idctx/core')
    const billing = createSigner({ issuer: 'billing', audience: 'shop', key: ring.billing, clock: () => 1_800_000_000_250 })
    const second = await runWithContext(r.context, async () => {
      await sleep(1)
      return billing.sign(currentContext() as IdentityContext, [{ destination: 'kafka:invoices', leaf: LEAF }])
    })
    const claims2 = JSON.parse(Buffer.from(second.token.split('.')[1] as string, 'base64url').toString())
    expect(claims2).toMatchObject({ sub: CONTEXT.sub, tid: CONTEXT.tid, txn: CONTEXT.txn, iss: 'billing', act: { sub: 'billing', act: { sub: 'orders' } } })
    expect(claims2.jti).not.toBe(first.jti)
  })
})
