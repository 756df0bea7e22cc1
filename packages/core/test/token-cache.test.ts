import { describe, it, expect } from 'vitest'
import { createTokenCache } from '../src/lib/verify/token-cache.js'
import type { Entry } from '../src/lib/verify/checked.js'

const entry = (exp: number): Entry =>
  ({ kind: 'message', claims: { exp }, nodes: new Map(), context: undefined }) as unknown as Entry

describe('token cache: the proof-node budget', () => {
  it('is released by tokens that expired, so the shortcut comes back', () => {
    const cache = createTokenCache(100, 4, 30)
    const old = entry(1_000)
    cache.add('old', old)
    const nodes = cache.nodesOf(old, 900)
    expect(nodes).toBe(old.nodes)
    for (let i = 0; i < 4; i++) old.nodes.set(i, { node: 'x', rest: '' })
    cache.addedNodes(4)
    const fresh = entry(5_000)
    cache.add('fresh', fresh)
    // Budget spent, the old token still within exp + slack: no shortcut for the new one.
    expect(cache.nodesOf(fresh, 1_020)).toBeUndefined()
    expect(cache.get('old')).toBe(old)
    // Past exp + slack the old token goes, with its nodes (at most one sweep a second).
    expect(cache.nodesOf(fresh, 1_031)).toBe(fresh.nodes)
    expect(cache.get('old')).toBeUndefined()
    expect(cache.get('fresh')).toBe(fresh)
  })
})
