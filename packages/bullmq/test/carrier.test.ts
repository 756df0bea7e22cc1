import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { decodeCarrier, encodeCarrier, encodeGrantCarrier, GRANT_PREFIX, IDCTX_KEY } from '@idctx/bullmq'

const b64 = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/)
const token = fc.tuple(b64, b64, b64).map((p) => p.join('.'))
const proof = fc.tuple(fc.nat(100), fc.nat(100), fc.array(b64, { maxLength: 4 })).map(([i, s, h]) => [i, s, ...h].join('.'))

describe('the __idctx carrier', () => {
  it('is the reserved key of the design', () => {
    expect(IDCTX_KEY).toBe('__idctx')
    expect(GRANT_PREFIX).toBe('g:')
  })

  it('is the bare token for a job signed alone, token~proof for a job signed with others', () => {
    expect(encodeCarrier('h.p.s', undefined)).toBe('h.p.s')
    expect(encodeCarrier('h.p.s', '0.2.abc')).toBe('h.p.s~0.2.abc')
    expect(decodeCarrier('h.p.s')).toEqual({ kind: 'message', token: 'h.p.s', proof: undefined })
    expect(decodeCarrier('h.p.s~0.2.abc')).toEqual({ kind: 'message', token: 'h.p.s', proof: '0.2.abc' })
  })

  it('is token~proof~record for a job signed with the batch profile; the record is the rest, ~ included', () => {
    const record = '{"act":{"sub":"orders"},"n":"AAAAAAAAAAAAAAAAAAAAAA","sub":"u~1","tid":"acme","txn":"t"}'
    expect(encodeCarrier('h.p.s', '1.2.abc', record)).toBe(`h.p.s~1.2.abc~${record}`)
    expect(decodeCarrier(`h.p.s~1.2.abc~${record}`)).toEqual({ kind: 'message', token: 'h.p.s', proof: '1.2.abc', contextRecord: record })
    expect(() => encodeCarrier('h.p.s', undefined, record)).toThrow(TypeError)
  })

  it('is g:<jws> for a job scheduler grant, which never reads as a message token', () => {
    expect(encodeGrantCarrier('h.p.s')).toBe('g:h.p.s')
    expect(decodeCarrier('g:h.p.s')).toEqual({ kind: 'grant', token: 'h.p.s', proof: undefined })
  })

  it('round-trips any token and proof, any token, proof and record, and any grant', () => {
    fc.assert(
      fc.property(token, fc.option(proof, { nil: undefined }), fc.string({ minLength: 1 }), (t, p, record) => {
        expect(decodeCarrier(encodeCarrier(t, p))).toEqual({ kind: 'message', token: t, proof: p, contextRecord: undefined })
        if (p !== undefined) expect(decodeCarrier(encodeCarrier(t, p, record))).toEqual({ kind: 'message', token: t, proof: p, contextRecord: record })
        expect(decodeCarrier(encodeGrantCarrier(t))).toEqual({ kind: 'grant', token: t, proof: undefined })
      }),
    )
  })

  it('is absent when undefined and malformed for anything but a string of the documented forms', () => {
    expect(decodeCarrier(undefined)).toBeUndefined()
    const malformed = [null, 42, true, {}, { t: 'x' }, ['h.p.s'], '~0.2.abc', 'h.p.s~', 'h.p.s~0.2~', 'h.p.s~~{}', '~0.2~{}', 'g:', 'g:h.p.s~0.2.abc', 'g:h.p.s~0.2~{}']
    expect(malformed.map((v) => decodeCarrier(v))).toEqual(malformed.map(() => 'malformed'))
  })
})
