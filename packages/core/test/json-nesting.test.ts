import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { nestsDeeperThan } from '../src/lib/verify/json.js'

/** The definition: the deepest bracket nesting outside strings, scanned character by character. */
function reference(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === '{' || c === '[') {
      if (++depth > max) return true
    } else if (c === '}' || c === ']') depth--
  }
  return false
}

describe('nestsDeeperThan', () => {
  it('agrees with a full scan over bracket-heavy texts and JSON values (the count shortcut included)', () => {
    let deeper = 0
    let within = 0
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', '\\', 'a', ':', ','), maxLength: 40 }),
      fc.jsonValue({ maxDepth: 8 }).map((v) => JSON.stringify(v)),
    )
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 9 }), (t, max) => {
        const want = reference(t, max)
        if (want) deeper++
        else within++
        expect(nestsDeeperThan(t, max)).toBe(want)
      }),
      { numRuns: 20000 },
    )
    expect(deeper).toBeGreaterThan(1000)
    expect(within).toBeGreaterThan(1000)
  })
})
