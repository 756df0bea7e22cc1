import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
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

describe('replay store: compact coordinates', () => {
  // Coordinates of every shape an adapter or a hostile producer could give: Kafka and BullMQ
  // forms, leading zeros, offsets around 2^32 and past 10 digits, no slash, empty parts, a
  // slash-separated prefix that reads like another split, non-ASCII and lone surrogates.
  const prefix = fc.constantFrom('orders/0', 'orders/1', 'orders', 'orders/0/1', 'a', '', 'q/é', 'q/\ud800', 'x/')
  const suffix = fc.oneof(
    fc.nat({ max: 50 }).map(String),
    fc.constantFrom('0', '00', '007', '7', '4294967295', '4294967296', '9999999999', '12345678901', '-1', '1e3', ' 1', '', 'abc', '\udfff'),
  )
  const coordinates = fc.oneof(fc.tuple(prefix, suffix).map(([p, s]) => `${p}/${s}`), fc.string({ maxLength: 6 }), fc.constantFrom('orders01', '/', '//'))
  const entry = fc.record({ jti: fc.constantFrom('j1', 'j2'), index: fc.constantFrom(0, 1, 5), coordinates, firstDelivery: fc.boolean() })

  it('gives exactly the verdicts of a plain map of the coordinates as given', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 60 }), (entries) => {
        const store = createMemoryReplayStore()
        const model = new Map<string, string>()
        for (const e of entries) {
          const key = `${e.jti}|${e.index}`
          const prior = model.get(key)
          const expected = prior === undefined ? 'first' : prior === e.coordinates && !e.firstDelivery ? 'redelivery' : 'replay'
          if (prior === undefined) model.set(key, e.coordinates)
          expect(store.check({ ...e, expiresAt: Date.now() + 60_000 })).toBe(expected)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('keeps coordinates that look alike apart: leading zeros, offsets past 2^32, another split', () => {
    const store = createMemoryReplayStore()
    const at = (index: number, coordinates: string) => store.check({ jti: 'j', index, coordinates, expiresAt: Date.now() + 60_000 })
    const pairs: [string, string][] = [
      ['t/0/7', 't/0/007'],
      ['t/0/4294967296', 't/0/0'],
      ['t/0/12345678901', 't/0/1234567890'],
      ['a/1/5', 'a/15'],
      ['q/\ud800', 'q/\ufffd'],
    ]
    pairs.forEach(([a, b], i) => {
      expect(at(i, a)).toBe('first')
      expect(at(i, b)).toBe('replay')
      expect(at(i, a)).toBe('redelivery')
    })
  })
})
