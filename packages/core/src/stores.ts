import { z } from 'zod'
import { parseOptions } from './lib/options.js'

const clockOption = z.custom<() => number>((v) => typeof v === 'function', 'a function returning epoch milliseconds').optional()
const revocationOptionsSchema = z.strictObject({ maxEntries: z.number().int().positive().max(100_000_000).optional(), clock: clockOption })
const replayOptionsSchema = z.strictObject({ maxEntries: z.number().int().positive().max(100_000_000).optional(), clock: clockOption })

/**
 * The identifiers a deny-list can name.
 *
 * @example
 * ```ts
 * const kind: RevocableId = 'kid'
 * revocation.revoke(kind, 'orders-2026-10') // every token signed by that key
 * revocation.revoke('tid', 'suspended-tenant', Date.now() + 3_600_000) // for one hour
 * ```
 */
export type RevocableId = 'kid' | 'jti' | 'txn' | 'sub' | 'tid'

const REVOCABLE: ReadonlySet<RevocableId> = new Set(['kid', 'jti', 'txn', 'sub', 'tid'])

/**
 * The identifiers of one token, as the verifier asks the deny-list about them.
 *
 * @example
 * ```ts
 * const ids: TokenIds = { kid: 'orders-1', jti: 'Q2hV…', txn: 'b1c9', sub: 'u-7d2f', tid: 'acme' }
 * await revocation.isRevoked(ids) // true when any one of them is denied
 * ```
 */
export type TokenIds = Readonly<Record<RevocableId, string>>

/**
 * A deny-list of keys, tokens, transactions, users and tenants. May be asynchronous (the
 * `@idctx/redis` store is).
 *
 * @example
 * ```ts
 * // a deny-list backed by your own service; the verifier asks it once per token
 * const revocation: RevocationStore = {
 *   isRevoked: async ({ kid, jti, tid }) => denyList.hasAny([`kid:${kid}`, `jti:${jti}`, `tid:${tid}`]),
 * }
 * const verifier = createVerifier({ audience: 'shop', issuers, revocation })
 * ```
 */
export interface RevocationStore {
  /** Whether any of the token's ids is denied; may reject (a `StoreError`) when the store cannot answer. */
  isRevoked(ids: TokenIds): boolean | Promise<boolean>
}

/**
 * An in-memory deny-list you can add to and remove from.
 *
 * `revoke` throws a TypeError for an unknown kind or an empty value, and a RangeError when
 * `maxEntries` live entries are held.
 *
 * @example
 * ```ts
 * const revocation: MemoryRevocationStore = createMemoryRevocationStore({ maxEntries: 10_000 })
 * revocation.revoke('jti', leakedJti, Date.now() + 15 * 60_000) // until the token expires
 * revocation.unrevoke('jti', leakedJti)
 * revocation.size // 0
 * ```
 */
export interface MemoryRevocationStore extends RevocationStore {
  /** Denies an id until `untilMs` (epoch ms; forever when omitted). */
  revoke(kind: RevocableId, value: string, untilMs?: number): void
  /** Lifts a denial (no-op when the id was not denied). */
  unrevoke(kind: RevocableId, value: string): void
  /** Number of entries held (an expired one until a lookup or a full store drops it). */
  readonly size: number
}

/**
 * Options of {@link createMemoryRevocationStore}.
 *
 * @example
 * ```ts
 * const revocation = createMemoryRevocationStore({ maxEntries: 10_000 })
 * ```
 */
export interface MemoryRevocationStoreOptions {
  /** At most this many entries (default 100000); revoking past it throws rather than forgets. */
  maxEntries?: number
  /** Epoch milliseconds (default Date.now). */
  clock?: () => number
}

/**
 * A bounded in-memory deny-list. Full means an error on `revoke`, never a silently dropped entry.
 *
 * @example
 * ```ts
 * const revocation = createMemoryRevocationStore()
 * revocation.revoke('kid', 'orders-2026-10')
 * const verifier = createVerifier({ ...options, revocation })
 * ```
 */
export function createMemoryRevocationStore(options: MemoryRevocationStoreOptions = {}): MemoryRevocationStore {
  parseOptions('memory revocation store options', revocationOptionsSchema, options)
  const max = options.maxEntries ?? 100_000
  const clock = options.clock ?? Date.now
  const entries = new Map<string, number>()
  const key = (kind: RevocableId, value: string) => `${kind}\0${value}`
  const denied = (k: string): boolean => {
    const until = entries.get(k)
    if (until === undefined) return false
    if (until <= clock()) {
      entries.delete(k)
      return false
    }
    return true
  }
  return {
    revoke(kind, value, untilMs = Number.POSITIVE_INFINITY) {
      if (!REVOCABLE.has(kind)) throw new TypeError(`revoke: kind must be one of ${[...REVOCABLE].join(', ')}`)
      if (typeof value !== 'string' || value.length === 0) throw new TypeError('revoke: value must be a non-empty string')
      // NaN would never compare as expired, nor as live: refuse it instead of guessing.
      if (typeof untilMs !== 'number' || Number.isNaN(untilMs)) throw new TypeError('revoke: untilMs must be epoch milliseconds (or omitted: forever)')
      const k = key(kind, value)
      if (!entries.has(k) && entries.size >= max) {
        for (const [ek, until] of entries) if (until <= clock()) entries.delete(ek)
        if (entries.size >= max) throw new RangeError('revocation store is full')
      }
      entries.set(k, untilMs)
    },
    unrevoke(kind, value) {
      entries.delete(key(kind, value))
    },
    isRevoked(ids) {
      if (entries.size === 0) return false
      return (
        denied(key('kid', ids.kid)) ||
        denied(key('jti', ids.jti)) ||
        denied(key('txn', ids.txn)) ||
        denied(key('sub', ids.sub)) ||
        denied(key('tid', ids.tid))
      )
    },
    get size() {
      return entries.size
    },
  }
}

/**
 * What a replay store says of a delivery.
 *
 * @example
 * ```ts
 * const verdict: ReplayVerdict = await replay.check(entry)
 * // 'first': never seen; 'redelivery': same message at the same coordinates; 'replay': rejected as `replayed`
 * ```
 */
export type ReplayVerdict = 'first' | 'redelivery' | 'replay'

/**
 * One delivery of one signed message.
 *
 * @example
 * ```ts
 * const entry: ReplayEntry = {
 *   jti: claims.jti,
 *   index: 0,                                // a message signed alone
 *   coordinates: 'orders/0/42',              // topic/partition/offset
 *   expiresAt: claims.exp * 1000,            // epoch ms
 * }
 * await replay.check(entry) // 'first', then 'redelivery' for the same coordinates
 * ```
 */
export interface ReplayEntry {
  /** The token's `jti`. */
  readonly jti: string
  /**
   * The message's position under the token's `mh`: 0 for a message signed alone; for a batch, its
   * audit path's turns (1, then one bit per level, bottom-up), authenticated by the proof. Two
   * identical records of one batch are two messages; a proof rewritten to another index or size
   * that still verifies keeps the same position.
   */
  readonly index: number
  /** Delivery coordinates: `topic/partition/offset` or `queue/jobId`. */
  readonly coordinates: string
  /** Epoch ms after which the token is expired anyway and the entry may go. */
  readonly expiresAt: number
  /**
   * True when the adapter knows this is the message's first delivery (a BullMQ job's first
   * attempt): an earlier sighting at the same coordinates is then a `replay` (the job was copied
   * and re-added under the same id), not a redelivery. Default false.
   */
  readonly firstDelivery?: boolean | undefined
}

/**
 * Remembers where each signed message was first delivered. The same message at the same
 * coordinates again is a redelivery (a consumer restart, a retry), not a replay.
 *
 * Implementations may be asynchronous; a store that cannot answer should reject with a `StoreError`
 * (`ERR_IDCTX_STORE`), which makes the adapters retry the message instead of rejecting it.
 *
 * @example
 * ```ts
 * const replay: ReplayStore = createMemoryReplayStore() // or createRedisReplayStore({ client: redis }) from @idctx/redis
 * const verifier = createVerifier({ audience: 'shop', issuers, replay })
 * ```
 */
export interface ReplayStore {
  /** The verdict of one delivery, recording it when it is the first. */
  check(entry: ReplayEntry): ReplayVerdict | Promise<ReplayVerdict>
  /**
   * The verdicts of many deliveries in one call (one round trip for a shared store), in order and
   * as if `check` ran on each in turn: a later entry for the same (jti, index) sees the earlier
   * one. Optional; `verifyMany` calls `check` in turn without it.
   */
  checkMany?(entries: readonly ReplayEntry[]): ReplayVerdict[] | Promise<ReplayVerdict[]>
}

/** Delivery coordinates as the memory replay store keeps them: a number (prefix, offset) or a flat string. */
type Coordinates = number | string
/** Distinct coordinate prefixes (topic/partition, queue) encoded as numbers; past it, strings. */
const MAX_PREFIXES = 1 << 16
/** A flat copy of a string: a concatenation (V8 cons string) would keep its parts alive. */
const flat = (s: string): string => {
  if (s.length < 13) return s // V8 never builds a concatenation this short
  const copy = Buffer.from(s, 'utf8').toString('utf8')
  return copy === s ? copy : s // a lone surrogate does not survive UTF-8: keep the original
}

/**
 * Options of {@link createMemoryReplayStore}.
 *
 * @example
 * ```ts
 * const replay = createMemoryReplayStore({ maxEntries: 200_000 }) // ~21 MB of heap at most
 * const verifier = createVerifier({ audience: 'shop', issuers, replay })
 * ```
 */
export interface MemoryReplayStoreOptions {
  /**
   * At most this many live entries, one per delivered message (default 1000000); past it the
   * oldest tokens' entries go first. About 105 bytes of heap per entry for single-message tokens
   * and 53 for records of batched sends, so ~105 MB at the default cap (Node 20, 22-character
   * jtis, `topic/partition/offset` coordinates; `pnpm bench memory`, docs/benchmarks.md).
   */
  maxEntries?: number
  /** Epoch milliseconds (default Date.now). */
  clock?: () => number
}

/**
 * A bounded in-memory replay store for one process. Entries leave when their token expires; past
 * `maxEntries` the oldest go first, so size it above the messages a token lifetime can carry, or
 * use the Redis store shared by all consumers.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({ ...options, replay: createMemoryReplayStore() })
 * ```
 */
export function createMemoryReplayStore(options: MemoryReplayStoreOptions = {}): ReplayStore & { readonly size: number } {
  parseOptions('memory replay store options', replayOptionsSchema, options)
  const max = options.maxEntries ?? 1_000_000
  const clock = options.clock ?? Date.now
  // Compact on purpose (one entry per consumed message, a million of them at the cap): per jti,
  // the coordinates of a single-message token, or a position → coordinates map for a batch;
  // expiries in two arrays in arrival order (one slot per token, not per message). Coordinates
  // `<prefix>/<offset>` (Kafka's topic/partition/offset, a BullMQ queue/numeric job id) are kept
  // as one number, prefix number × 2^32 + offset, exact and reversible: the prefix is stored once
  // for all entries. Anything else is kept as a flat string copy (an adapter's coordinates are
  // often a concatenation that would otherwise keep its parts alive).
  const byJti = new Map<string, Coordinates | Map<number, Coordinates>>()
  const prefixes = new Map<string, number>()
  const encode = (coordinates: string): Coordinates => {
    const slash = coordinates.lastIndexOf('/')
    const digits = coordinates.length - slash - 1
    if (slash >= 0 && digits > 0 && digits <= 10 && (digits === 1 || coordinates.charCodeAt(slash + 1) !== 48)) {
      let offset = 0
      for (let i = slash + 1; i < coordinates.length; i++) {
        const c = coordinates.charCodeAt(i) - 48
        if (c < 0 || c > 9) return flat(coordinates)
        offset = offset * 10 + c
      }
      if (offset < 2 ** 32) {
        const prefix = coordinates.slice(0, slash)
        let id = prefixes.get(prefix)
        if (id === undefined && prefixes.size < MAX_PREFIXES) prefixes.set(flat(prefix), (id = prefixes.size))
        if (id !== undefined) return id * 2 ** 32 + offset
      }
    }
    return flat(coordinates)
  }
  let expJti: string[] = []
  let expAt: number[] = []
  let head = 0
  let count = 0
  let sweepAt = 0
  const drop = (jti: string) => {
    const slot = byJti.get(jti)
    if (slot === undefined) return
    byJti.delete(jti)
    count -= typeof slot === 'object' ? slot.size : 1
  }
  const advance = () => {
    const jti = expJti[head] as string
    expJti[head] = ''
    head++
    drop(jti)
  }
  const compact = () => {
    if (head < 1024 || head * 2 < expJti.length) return
    expJti = expJti.slice(head)
    expAt = expAt.slice(head)
    head = 0
  }
  const store = {
    checkMany: (entries: readonly ReplayEntry[]): ReplayVerdict[] => entries.map((e) => store.check(e)),
    check(entry: ReplayEntry): ReplayVerdict {
      const now = clock()
      if (now >= sweepAt) {
        while (head < expAt.length && (expAt[head] as number) <= now) advance()
        compact()
        sweepAt = now + 10_000
      }
      const slot = byJti.get(entry.jti)
      const prior = slot === undefined ? undefined : typeof slot !== 'object' ? (entry.index === 0 ? slot : undefined) : slot.get(entry.index)
      const coordinates = encode(entry.coordinates)
      if (prior !== undefined) return prior === coordinates && entry.firstDelivery !== true ? 'redelivery' : 'replay'
      if (slot === undefined) {
        if (entry.index === 0) byJti.set(entry.jti, coordinates)
        else byJti.set(entry.jti, new Map([[entry.index, coordinates]]))
        expJti.push(entry.jti)
        expAt.push(entry.expiresAt)
      } else if (typeof slot !== 'object') {
        byJti.set(entry.jti, new Map([[0, slot], [entry.index, coordinates]]))
      } else {
        slot.set(entry.index, coordinates)
      }
      count++
      while (count > max && head < expJti.length) advance()
      return 'first'
    },
    get size() {
      return count
    },
  }
  return store
}
