import { parseOptions, StoreError, type RevocableId, type RevocationStore, type TokenIds } from '@idctx/core'
import type { Cluster, Redis } from 'ioredis'
import { z } from 'zod'

/**
 * Options of {@link createRedisRevocationStore}.
 *
 * Invalid or unknown options throw a `ConfigError` (`ERR_IDCTX_CONFIG`) from `createRedisRevocationStore`.
 *
 * @example
 * ```ts
 * const revocation = createRedisRevocationStore({
 *   client: redis,
 *   subscriber: new Redis(process.env.REDIS_URL!),
 *   prefix: 'shop:idctx:revocation',
 *   maxStalenessMs: 10_000,
 *   resyncIntervalMs: 60_000,
 * })
 * ```
 */
export interface RedisRevocationStoreOptions {
  /** An ioredis client or cluster for commands (the one BullMQ uses will do). */
  client: Redis | Cluster
  /**
   * A connection for the change channel (a subscribed connection can run no other command).
   * Default: `client.duplicate()`, closed by `close()`.
   */
  subscriber?: Redis | Cluster
  /** Key and channel prefix (default `idctx:revocation`). */
  prefix?: string
  /**
   * How long the local copy may be out of touch with Redis (subscriber disconnected, resync
   * failing) before `isRevoked` throws instead of answering from a list that may be stale, in
   * milliseconds (default 5000).
   */
  maxStalenessMs?: number
  /** Full resync period in milliseconds, a safety net behind pub/sub (default 30000). */
  resyncIntervalMs?: number
  /** Epoch milliseconds (default Date.now). */
  clock?: () => number
}

/**
 * A deny-list shared through Redis, answered from a local copy kept current by pub/sub.
 *
 * @example
 * ```ts
 * const revocation: RedisRevocationStore = createRedisRevocationStore({ client: redis })
 * await revocation.ready()
 * const verifier = createVerifier({ audience: 'shop', issuers, revocation })
 * await revocation.revoke('txn', 'b1c9', Date.now() + 3_600_000) // every instance, for an hour
 * process.on('SIGTERM', () => revocation.close())
 * ```
 */
export interface RedisRevocationStore extends RevocationStore {
  /**
   * Whether any of the token's ids is denied. Synchronous, from the local copy. Throws a
   * `StoreError` (`ERR_IDCTX_STORE`) before the first sync, or once the copy has been out of touch
   * longer than `maxStalenessMs`: `verify` then throws and the adapter retries.
   */
  isRevoked(ids: TokenIds): boolean
  /**
   * Denies an id for every instance until `untilMs` (epoch ms; forever when omitted): stored in
   * Redis and announced on the change channel; this instance applies it at once.
   * @throws {TypeError} for an unknown kind, an empty value or a NaN expiry.
   */
  revoke(kind: RevocableId, value: string, untilMs?: number): Promise<void>
  /** Lifts a denial everywhere. */
  unrevoke(kind: RevocableId, value: string): Promise<void>
  /** Resolves after the first full sync (subscribe, then load every entry). */
  ready(): Promise<void>
  /** Stops the resync timer and closes the subscriber it made. */
  close(): Promise<void>
  /** Live entries in the local copy. */
  readonly size: number
}

const KINDS: ReadonlySet<RevocableId> = new Set(['kid', 'jti', 'txn', 'sub', 'tid'])
const FOREVER = 'inf'

const client = z.custom<Redis | Cluster>((v) => typeof (v as Redis | undefined)?.hgetall === 'function', 'an ioredis client or cluster')
const schema = z.strictObject({
  client,
  subscriber: client.optional(),
  prefix: z.string().min(1).max(128).optional(),
  maxStalenessMs: z.number().int().min(100).max(86_400_000).optional(),
  resyncIntervalMs: z.number().int().min(100).max(86_400_000).optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function', 'a function returning epoch milliseconds').optional(),
})

interface Change {
  readonly op: 'revoke' | 'unrevoke'
  readonly field: string
  readonly until?: number
}

/**
 * A deny-list (kid, jti, txn, sub, tid, each with an expiry) shared by every verifier. Entries
 * live in one Redis hash; every instance keeps a local copy, so the per-message check stays in
 * memory. Changes are published on a channel and applied by every instance as they arrive (on
 * loopback within milliseconds); the copy is fully reloaded on every (re)connect and every
 * `resyncIntervalMs`. When the copy cannot be kept current for longer than `maxStalenessMs`,
 * `isRevoked` throws (retry) instead of trusting a stale list.
 *
 * @example
 * ```ts
 * const revocation = createRedisRevocationStore({ client: redis })
 * await revocation.ready()
 * const verifier = createVerifier({ ...options, revocation })
 * await revocation.revoke('kid', 'orders-2026-11') // every instance rejects its tokens: `revoked`
 * ```
 */
export function createRedisRevocationStore(options: RedisRevocationStoreOptions): RedisRevocationStore {
  const o = parseOptions('Redis revocation store options', schema, options)
  const prefix = o.prefix ?? 'idctx:revocation'
  // One hash tag for the hash: a single cluster slot.
  const hashKey = `{${prefix}}:entries`
  const channel = `${prefix}:changes`
  const maxStalenessMs = o.maxStalenessMs ?? 5000
  const resyncIntervalMs = o.resyncIntervalMs ?? 30_000
  const clock = o.clock ?? Date.now
  const ownSubscriber = o.subscriber === undefined
  const subscriber = o.subscriber ?? o.client.duplicate()

  const entries = new Map<string, number>()
  let synced = false
  /** Since when the copy may be missing changes (disconnected, or a resync failed). */
  let outOfTouchSince: number | undefined = clock()
  let syncing: Promise<void> | undefined
  /** Changes that arrive while a full load is in flight, applied on top of it. */
  let buffered: Change[] | undefined
  let closed = false

  const apply = (c: Change) => {
    if (c.op === 'revoke') entries.set(c.field, c.until ?? Number.POSITIVE_INFINITY)
    else entries.delete(c.field)
  }

  // A failed load is tried again soon (not only at the next periodic resync): until one
  // succeeds, the copy is out of touch and `isRevoked` throws once that lasts maxStalenessMs.
  const retryMs = Math.max(50, Math.min(1000, resyncIntervalMs, Math.floor(maxStalenessMs / 2)))
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  const retrySoon = () => {
    if (closed || retryTimer !== undefined) return
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      if (!closed) sync().catch(() => {})
    }, retryMs)
    retryTimer.unref()
  }

  const sync = (): Promise<void> => {
    if (syncing !== undefined) return syncing
    buffered = []
    syncing = (async () => {
      try {
        const all = await o.client.hgetall(hashKey)
        const now = clock()
        const next = new Map<string, number>()
        const expired: string[] = []
        for (const [field, value] of Object.entries(all)) {
          const until = value === FOREVER ? Number.POSITIVE_INFINITY : Number(value)
          if (Number.isFinite(until) && until <= now) expired.push(field)
          else if (!Number.isNaN(until)) next.set(field, until)
        }
        entries.clear()
        for (const [k, v] of next) entries.set(k, v)
        for (const c of buffered ?? []) apply(c)
        synced = true
        if (subscribed) outOfTouchSince = undefined
        if (expired.length > 0) await o.client.hdel(hashKey, ...expired).catch(() => 0)
      } catch (e) {
        outOfTouchSince ??= clock()
        retrySoon()
        throw new StoreError('the Redis revocation store could not be loaded', { cause: e })
      } finally {
        buffered = undefined
        syncing = undefined
      }
    })()
    return syncing
  }

  let subscribed = false
  const onMessage = (ch: string, message: string) => {
    if (ch !== channel) return
    let c: Change
    try {
      const parsed = JSON.parse(message) as Change
      if ((parsed.op !== 'revoke' && parsed.op !== 'unrevoke') || typeof parsed.field !== 'string') return
      c = parsed
    } catch {
      return
    }
    if (buffered !== undefined) buffered.push(c)
    apply(c)
  }
  subscriber.on('message', onMessage)
  const onDown = () => {
    subscribed = false
    outOfTouchSince ??= clock()
  }
  subscriber.on('close', onDown)
  subscriber.on('end', onDown)
  subscriber.on('error', () => onDown())
  // On every (re)connect: subscribe first, then load, so no change falls between the two. A
  // failed load does not undo the subscription (the subscriber is still connected and gets
  // every change): it is retried until it succeeds.
  const connect = async () => {
    if (closed) return
    try {
      await subscriber.subscribe(channel)
    } catch {
      onDown()
      return
    }
    subscribed = true
    await sync().catch(() => {})
  }
  subscriber.on('ready', () => void connect())
  const first = connect()

  const timer = setInterval(() => {
    if (!closed) sync().catch(() => {})
  }, resyncIntervalMs)
  timer.unref()

  const check = () => {
    if (!synced) throw new StoreError('the Redis revocation store has not loaded the deny-list yet')
    if (outOfTouchSince !== undefined && clock() - outOfTouchSince > maxStalenessMs) {
      throw new StoreError(`the deny-list copy has been out of touch with Redis for more than ${maxStalenessMs} ms`)
    }
  }
  const denied = (field: string, now: number): boolean => {
    const until = entries.get(field)
    return until !== undefined && until > now
  }
  const fieldOf = (kind: RevocableId, value: string) => `${kind}:${value}`
  const checkArgs = (kind: RevocableId, value: string) => {
    if (!KINDS.has(kind)) throw new TypeError(`revoke: kind must be one of ${[...KINDS].join(', ')}`)
    if (typeof value !== 'string' || value.length === 0) throw new TypeError('revoke: value must be a non-empty string')
  }
  const publish = async (change: Change, write: () => Promise<unknown>) => {
    try {
      await write()
      await o.client.publish(channel, JSON.stringify(change))
    } catch (e) {
      throw new StoreError('the Redis revocation store could not be updated', { cause: e })
    }
    apply(change)
  }

  return {
    isRevoked(ids) {
      check()
      if (entries.size === 0) return false
      const now = clock()
      return (
        denied(`kid:${ids.kid}`, now) ||
        denied(`jti:${ids.jti}`, now) ||
        denied(`txn:${ids.txn}`, now) ||
        denied(`sub:${ids.sub}`, now) ||
        denied(`tid:${ids.tid}`, now)
      )
    },
    async revoke(kind, value, untilMs = Number.POSITIVE_INFINITY) {
      checkArgs(kind, value)
      if (typeof untilMs !== 'number' || Number.isNaN(untilMs)) throw new TypeError('revoke: untilMs must be epoch milliseconds (or omitted: forever)')
      const field = fieldOf(kind, value)
      const stored = untilMs === Number.POSITIVE_INFINITY ? FOREVER : String(Math.ceil(untilMs))
      await publish({ op: 'revoke', field, until: untilMs === Number.POSITIVE_INFINITY ? undefined : untilMs } as Change, () =>
        o.client.hset(hashKey, field, stored),
      )
    },
    async unrevoke(kind, value) {
      checkArgs(kind, value)
      const field = fieldOf(kind, value)
      await publish({ op: 'unrevoke', field }, () => o.client.hdel(hashKey, field))
    },
    async ready() {
      await first
      while (!synced && !closed) await sync()
    },
    async close() {
      closed = true
      clearInterval(timer)
      if (retryTimer !== undefined) clearTimeout(retryTimer)
      subscriber.off('message', onMessage)
      if (ownSubscriber) subscriber.disconnect()
      else await subscriber.unsubscribe(channel).catch(() => {})
    },
    get size() {
      return entries.size
    },
  }
}
