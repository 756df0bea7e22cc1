import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { ActorClaim, IdentityContext } from '@idctx/core'
import { canonicalJson } from '../src/lib/canonical-json.js'
import { actorText, recordTailText } from '../src/lib/record-text.js'

// The signer writes each context record's text directly; the general RFC 8785 canonicalizer
// (itself held to the `canonicalize` package) is the reference.

const text = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }), // lone surrogates included
  fc.constantFrom('"', '\\', '\u2028', '\u007f', '\u0000', '</script>', 'é', '\ud800'),
)
const actor: fc.Arbitrary<ActorClaim> = fc.letrec<{ a: ActorClaim }>((tie) => ({
  a: fc.oneof({ depthSize: 'small' }, fc.record({ sub: text }), fc.record({ sub: text, act: tie('a') })),
})).a
const context: fc.Arbitrary<IdentityContext> = fc.record(
  {
    sub: text,
    tid: text,
    txn: text,
    pty: fc.constantFrom('user', 'service', 'system'),
    roles: fc.array(text, { maxLength: 4 }),
    scope: fc.oneof(fc.constant(''), text),
  },
  { requiredKeys: ['sub', 'tid', 'txn'] },
)
const trc = fc.option(fc.stringMatching(/^[0-9a-f]{32}$/), { nil: undefined })

describe('context record text: written directly, equal to the RFC 8785 canonicalizer', () => {
  it('the members after the nonce', () => {
    fc.assert(
      fc.property(context, trc, (c, t) => {
        const reference = canonicalJson({ pty: c.pty, roles: c.roles, scope: c.scope, sub: c.sub, tid: c.tid, trc: t, txn: c.txn }) as string
        expect(`{${recordTailText(c, t).slice(1)}`).toBe(reference)
      }),
      { numRuns: 5000 },
    )
  })

  it('the actor chain', () => {
    fc.assert(
      fc.property(actor, (a) => {
        expect(actorText(a)).toBe(canonicalJson(a))
      }),
      { numRuns: 3000 },
    )
  })

  it('a whole record: head, nonce, tail, as the verifier re-canonicalizes it', () => {
    const c: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 't', roles: ['b', 'a'], act: { sub: 'web' } }
    const n = 'AAAAAAAAAAAAAAAAAAAAAA'
    const record = `{"act":${actorText({ sub: 'orders', act: { sub: 'web' } })},"n":"${n}"${recordTailText(c, undefined)}`
    expect(record).toBe(canonicalJson(JSON.parse(record)))
    expect(JSON.parse(record)).toEqual({ act: { sub: 'orders', act: { sub: 'web' } }, n, roles: ['b', 'a'], sub: 'u-1', tid: 'acme', txn: 't' })
  })
})
