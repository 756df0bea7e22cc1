import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { decodeCarrier, encodeCarrier, IDCTX_KEY } from '@idctx/bullmq'

const b64 = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/)
const token = fc.tuple(b64, b64, b64).map((p) => p.join('.'))
const proof = fc.tuple(fc.nat(100), fc.nat(100), fc.array(b64, { maxLength: 4 })).map(([i, s, h]) => [i, s, ...h].join('.'))

describe('the __idctx carrier', () => {
  it('is the reserved key of the design', () => {
    expect(IDCTX_KEY).toBe('__idctx')
  })

  it('is the bare token for a job signed alone, token~proof for a job signed with others', () => {
    expect(encodeCarrier('h.p.s', undefined)).toBe('h.p.s')
    expect(encodeCarrier('h.p.s', '0.2.abc')).toBe('h.p.s~0.2.abc')
    expect(decodeCarrier('h.p.s')).toEqual({ token: 'h.p.s', proof: undefined })
    expect(decodeCarrier('h.p.s~0.2.abc')).toEqual({ token: 'h.p.s', proof: '0.2.abc' })
  })

  it('round-trips any token and proof', () => {
    fc.assert(
      fc.property(token, fc.option(proof, { nil: undefined }), (t, p) => {
        expect(decodeCarrier(encodeCarrier(t, p))).toEqual({ token: t, proof: p })
      }),
    )
  })

  it('is absent when undefined and malformed for anything but a string of the documented form', () => {
    expect(decodeCarrier(undefined)).toBeUndefined()
    for (const v of [null, 42, true, {}, { t: 'x' }, ['h.p.s'], '~0.2.abc', 'h.p.s~', 'h.p.s~0.2~x']) {
      expect(decodeCarrier(v), JSON.stringify(v)).toBe('malformed')
    }
  })
})
