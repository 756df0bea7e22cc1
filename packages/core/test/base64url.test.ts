import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { decodeBase64url } from '../src/lib/base64url.js'

/** The definition: a segment is canonical when decoding and re-encoding it gives it back. */
function reference(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined
  const out = Buffer.from(s, 'base64url')
  return out.toString('base64url') === s ? out : undefined
}

const CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const segment = fc.oneof(
  fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 24 }),
  fc.string({ unit: fc.constantFrom(...CHARS, '=', '+', '/', '.', ' ', '\n', 'é', '\u0000'), maxLength: 12 }),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64url')),
)

describe('decodeBase64url: canonical base64url only', () => {
  it('agrees with decode-then-re-encode over random segments', () => {
    let accepted = 0
    let refused = 0
    fc.assert(
      fc.property(segment, (s) => {
        const want = reference(s)
        const got = decodeBase64url(s)
        if (want === undefined) {
          refused++
          expect(got).toBeUndefined()
        } else {
          accepted++
          expect(got?.equals(want)).toBe(true)
        }
      }),
      { numRuns: 20000 },
    )
    expect(accepted).toBeGreaterThan(1000)
    expect(refused).toBeGreaterThan(1000)
  })

  it('refuses every non-zero unused trailing bit pattern, at both lengths', () => {
    // 'AB' (4k+2) carries 4 unused bits, 'ABC' (4k+3) carries 2: only A/Q/g/w and A/E/I/…/8 end them.
    for (const c of CHARS) {
      const v = CHARS.indexOf(c)
      expect(decodeBase64url(`A${c}`) !== undefined).toBe((v & 0x0f) === 0)
      expect(decodeBase64url(`AA${c}`) !== undefined).toBe((v & 0x03) === 0)
    }
  })
})
