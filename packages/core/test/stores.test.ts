import { describe, it, expect } from 'vitest'
import { createMemoryReplayStore, createMemoryRevocationStore, type RevocableId } from '@idctx/core'

const ids = { kid: 'k1', jti: 'j1', txn: 't1', sub: 's1', tid: 'acme' }

describe('revocation store', () => {
  it.each(['kid', 'jti', 'txn', 'sub', 'tid'] as RevocableId[])('revokes by %s, and only that value', async (kind) => {
    const store = createMemoryRevocationStore()
    expect(await store.isRevoked(ids)).toBe(false)
    store.revoke(kind, ids[kind])
    expect(await store.isRevoked(ids)).toBe(true)
    expect(await store.isRevoked({ ...ids, [kind]: `${ids[kind]}x` })).toBe(false)
    store.unrevoke(kind, ids[kind])
    expect(await store.isRevoked(ids)).toBe(false)
  })

  it('kinds do not bleed into each other (a sub named like a jti is not revoked)', () => {
    const store = createMemoryRevocationStore()
    store.revoke('jti', 'same')
    expect(store.isRevoked({ ...ids, sub: 'same' })).toBe(false)
    expect(store.isRevoked({ ...ids, jti: 'same' })).toBe(true)
  })

  it('an entry expires at untilMs', () => {
    let now = 1000
    const store = createMemoryRevocationStore({ clock: () => now })
    store.revoke('sub', 's1', 2000)
    expect(store.isRevoked(ids)).toBe(true)
    now = 1999
    expect(store.isRevoked(ids)).toBe(true)
    now = 2000
    expect(store.isRevoked(ids)).toBe(false)
    expect(store.size).toBe(0)
  })

  it('is bounded: full means an error, never a forgotten revocation; expired entries make room', () => {
    let now = 0
    const store = createMemoryRevocationStore({ maxEntries: 3, clock: () => now })
    store.revoke('jti', 'a', 10)
    store.revoke('jti', 'b')
    store.revoke('jti', 'c')
    expect(() => store.revoke('jti', 'd')).toThrow(RangeError)
    expect(store.isRevoked({ ...ids, jti: 'b' })).toBe(true)
    store.revoke('jti', 'c', 99) // updating an existing entry needs no room
    now = 10
    store.revoke('jti', 'd')
    expect(store.size).toBe(3)
    expect(store.isRevoked({ ...ids, jti: 'd' })).toBe(true)
  })
})

describe('replay store', () => {
  const entry = { jti: 'j1', index: 0, coordinates: 'orders/0/1', expiresAt: 10_000 }

  it('first delivery, then a redelivery at the same coordinates, then a replay elsewhere', () => {
    const store = createMemoryReplayStore({ clock: () => 0 })
    expect(store.check(entry)).toBe('first')
    expect(store.check(entry)).toBe('redelivery')
    expect(store.check({ ...entry, coordinates: 'orders/0/2' })).toBe('replay')
    expect(store.check({ ...entry, coordinates: 'orders/1/1' })).toBe('replay')
    expect(store.check(entry)).toBe('redelivery')
  })

  it('keys on jti and leaf position: other records of one token are not replays', () => {
    const store = createMemoryReplayStore({ clock: () => 0 })
    expect(store.check(entry)).toBe('first')
    expect(store.check({ ...entry, index: 5, coordinates: 'orders/0/2' })).toBe('first')
    expect(store.check({ ...entry, jti: 'j2', coordinates: 'orders/0/3' })).toBe('first')
    expect(store.size).toBe(3)
  })

  it('forgets an entry once its token has expired', () => {
    let now = 0
    const store = createMemoryReplayStore({ clock: () => now })
    store.check(entry)
    now = 10_000
    expect(store.check({ ...entry, coordinates: 'orders/0/2' })).toBe('first')
  })

  it('sweeps expired entries', () => {
    let now = 0
    const store = createMemoryReplayStore({ clock: () => now })
    for (let i = 0; i < 100; i++) store.check({ ...entry, jti: `j${i}`, expiresAt: 5_000 })
    expect(store.size).toBe(100)
    now = 20_000
    store.check({ ...entry, jti: 'fresh', expiresAt: 30_000 })
    expect(store.size).toBe(1)
  })

  it('is bounded: past maxEntries the oldest entries go first', () => {
    const store = createMemoryReplayStore({ maxEntries: 3, clock: () => 0 })
    for (const j of ['a', 'b', 'c', 'd']) store.check({ ...entry, jti: j })
    expect(store.size).toBe(3)
    // 'a' was evicted: it is seen as new again; 'd' is remembered
    expect(store.check({ ...entry, jti: 'd', coordinates: 'x' })).toBe('replay')
    expect(store.check({ ...entry, jti: 'a', coordinates: 'x' })).toBe('first')
  })
})
