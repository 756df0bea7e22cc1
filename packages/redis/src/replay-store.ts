import { createHash, randomBytes } from 'node:crypto'
import { parseOptions, StoreError, type ReplayEntry, type ReplayStore, type ReplayVerdict } from '@idctx/core'
import type { Cluster, Redis } from 'ioredis'
import { z } from 'zod'

/**
 * Options of {@link createRedisReplayStore}.
 *
 * Invalid or unknown options throw a `ConfigError` (`ERR_IDCTX_CONFIG`) from `createRedisReplayStore`.
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL!)
 * const replay = createRedisReplayStore({ client: redis, prefix: 'shop:idctx:replay:' })
 * ```
 */
export interface RedisReplayStoreOptions {
  /** An ioredis client or cluster, the one BullMQ uses will do (commands only, no subscription). */
  client: Redis | Cluster
  /** Key prefix (default `idctx:replay:`). One hash per token, `<prefix>{<jti>}`, one field per message (its leaf position); the hash tag keeps it in one cluster slot. */
  prefix?: string
  /** Epoch milliseconds (default Date.now), for the entries' expiry. */
  clock?: () => number
}

/**
 * A replay store on Redis; {@link ReplayStore} with a one-round-trip `checkMany`.
 *
 * Both methods reject with a `StoreError` (`ERR_IDCTX_STORE`) when Redis cannot answer, so the
 * verifier throws and the adapter retries the message.
 *
 * @example
 * ```ts
 * const replay: RedisReplayStore = createRedisReplayStore({ client: redis })
 * const verifier = createVerifier({ audience: 'shop', issuers, replay }) // verifyMany: one round trip per batch
 * ```
 */
export interface RedisReplayStore extends ReplayStore {
  /** The verdict of one delivery; the checks of one event-loop turn share one script call. */
  check(entry: ReplayEntry): Promise<ReplayVerdict>
  /** The verdicts of many deliveries, in order, in one round trip. */
  checkMany(entries: readonly ReplayEntry[]): Promise<ReplayVerdict[]>
}

// One Redis hash per token, one field per message of it (its leaf position): the value is the
// coordinates of the message's first delivery. For each entry in turn: on a first delivery HSETNX
// the field and say so (0). Otherwise compare the stored coordinates: the same ones on a later
// attempt are a redelivery (1); other ones, or the same ones on what the adapter knows to be a
// first delivery, a replay (2). One script call covers many entries, atomically and in order: a
// later entry of the call sees what an earlier one set. KEYS are the distinct token hashes of the
// call; ARGV holds five values per entry: the number of its key in KEYS, the field, coordinates,
// first-delivery flag and nonce, then one expiry per key (milliseconds from now). A key's expiry
// is raised to that value when lower (never lowered: verifiers with more grace share the store).
//
// The stored value is "\x01" .. <12-character nonce of this check> .. <coordinates>. A client
// that loses its connection after Redis ran the script but before the reply arrived sends the
// same command again when it reconnects (ioredis's autoResendUnfulfilledCommands): the nonce
// tells that second run apart from another delivery, so it answers 'first' again instead of
// calling a first attempt a replay of itself. A value without the marker is taken as bare
// coordinates.
const SCRIPT = `local out = {}
local n = (#ARGV - #KEYS) / 5
for i = 1, n do
  local at = (i - 1) * 5
  local key = KEYS[tonumber(ARGV[at + 1])]
  local coordinates = ARGV[at + 3]
  local value = '\\001' .. ARGV[at + 5] .. coordinates
  if redis.call('HSETNX', key, ARGV[at + 2], value) == 1 then
    out[i] = 0
  else
    local prior = redis.call('HGET', key, ARGV[at + 2])
    if prior == value then
      out[i] = 0
    else
      if string.byte(prior, 1) == 1 then prior = string.sub(prior, 14) end
      if prior == coordinates and ARGV[at + 4] ~= '1' then out[i] = 1 else out[i] = 2 end
    end
  end
end
for k = 1, #KEYS do
  local ttl = tonumber(ARGV[n * 5 + k])
  if redis.call('PTTL', KEYS[k]) < ttl then redis.call('PEXPIRE', KEYS[k], ttl) end
end
return out`
/** Most entries in one script call on a single Redis (the script blocks Redis while it runs: ~1 ms). */
const MAX_ENTRIES_PER_CALL = 1000
const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex')
const VERDICTS: readonly ReplayVerdict[] = ['first', 'redelivery', 'replay']
const TAG_SAFE = /^[A-Za-z0-9_-]{1,64}$/

const schema = z.strictObject({
  client: z.custom<Redis | Cluster>((v) => typeof (v as Redis | undefined)?.evalsha === 'function', 'an ioredis client or cluster'),
  prefix: z.string().min(1).max(128).optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function', 'a function returning epoch milliseconds').optional(),
})

/**
 * A replay store shared by every instance of a consumer group or worker pool: one Redis hash per
 * token (`<prefix>{<jti>}`) with one field per message (its leaf position) holding the first
 * delivery's coordinates, set atomically by a Lua script (`HSETNX`); the hash expires with the
 * token's expiry plus tolerance and grace (what the verifier puts in `expiresAt`). A redelivery at the same coordinates passes; any other delivery is `replayed`,
 * whichever instance sees it. `check` calls issued in the same event-loop turn (a worker's
 * concurrent jobs) share one script call. `checkMany` answers a whole fetched batch in one round trip: one
 * script call per 1000 entries on a single Redis, one per token on a Redis Cluster (all sent at
 * once: one round trip per node). Works on Redis ≥ 6 and Redis Cluster.
 *
 * Redis down or slow: the call rejects with a `StoreError` (`ERR_IDCTX_STORE`), `verify` throws,
 * and the adapters retry the message; nothing is rejected or lost, and recovery is automatic.
 * Redis memory per entry: 37 bytes in 100-message tokens, 198 in single-message ones (docs/redis.md).
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL)
 * const verifier = createVerifier({ ...options, replay: createRedisReplayStore({ client: redis }) })
 * ```
 */
export function createRedisReplayStore(options: RedisReplayStoreOptions): RedisReplayStore {
  const o = parseOptions('Redis replay store options', schema, options)
  const client = o.client
  const prefix = o.prefix ?? 'idctx:replay:'
  const clock = o.clock ?? Date.now
  const isCluster = (client as { isCluster?: boolean }).isCluster === true

  const tagOf = (jti: string): string => (TAG_SAFE.test(jti) ? jti : createHash('sha256').update(jti).digest('base64url'))

  /**
   * The script calls for a batch, as lists of entry positions in input order. On a single Redis,
   * consecutive chunks of the batch; on a cluster, one call per token (the `{jti}` hash tag puts
   * its hash in one slot; different tokens are independent of each other).
   */
  const groupsOf = (entries: readonly ReplayEntry[], tags: readonly string[]): number[][] => {
    if (!isCluster) {
      const groups: number[][] = []
      for (let i = 0; i < entries.length; i += MAX_ENTRIES_PER_CALL) {
        groups.push(Array.from({ length: Math.min(MAX_ENTRIES_PER_CALL, entries.length - i) }, (_, k) => i + k))
      }
      return groups
    }
    const byTag = new Map<string, number[]>()
    tags.forEach((tag, i) => {
      const g = byTag.get(tag)
      if (g === undefined) byTag.set(tag, [i])
      else g.push(i)
    })
    return [...byTag.values()]
  }

  /** One script call's keys (the distinct token hashes of the group) and arguments. */
  const callOf = (group: readonly number[], entries: readonly ReplayEntry[], tags: readonly string[], now: number, random: Buffer): { keys: string[]; args: string[] } => {
    const keyNumber = new Map<string, number>()
    const keys: string[] = []
    const ttls: number[] = []
    const args: string[] = []
    for (const i of group) {
      const e = entries[i] as ReplayEntry
      const key = `${prefix}{${tags[i] as string}}`
      let k = keyNumber.get(key)
      if (k === undefined) {
        k = keys.push(key)
        keyNumber.set(key, k)
        ttls.push(0)
      }
      const ttl = Math.max(1000, Math.ceil(e.expiresAt - now))
      if (ttl > (ttls[k - 1] as number)) ttls[k - 1] = ttl
      args.push(String(k), String(e.index), e.coordinates, e.firstDelivery === true ? '1' : '0', random.toString('base64url', 9 * i, 9 * i + 9))
    }
    for (const ttl of ttls) args.push(String(ttl))
    return { keys, args }
  }

  /**
   * Runs the script calls, all sent at once (one round trip; on a cluster, one per node); each
   * reply is the call's verdict codes or an error. `eval` sends the script text instead of its
   * SHA (and caches it on that node).
   */
  const run = (calls: readonly { keys: string[]; args: string[] }[], byText: boolean) =>
    Promise.all(
      calls.map(({ keys, args }) =>
        (byText ? client.eval(SCRIPT, keys.length, ...keys, ...args) : client.evalsha(SCRIPT_SHA, keys.length, ...keys, ...args)).then(
          (v): [null, unknown] => [null, v],
          (e: Error): [Error, null] => [e, null],
        ),
      ),
    )

  const checkMany = async (entries: readonly ReplayEntry[]): Promise<ReplayVerdict[]> => {
    if (entries.length === 0) return []
    const now = clock()
    // One nonce per check (12 base64url characters), the same when a command is sent again.
    const random = randomBytes(9 * entries.length)
    const tagByJti = new Map<string, string>()
    const tags = entries.map((e) => {
      let tag = tagByJti.get(e.jti)
      if (tag === undefined) tagByJti.set(e.jti, (tag = tagOf(e.jti)))
      return tag
    })
    const groups = groupsOf(entries, tags)
    const calls = groups.map((g) => callOf(g, entries, tags, now, random))
    let replies: [Error | null, unknown][]
    try {
      replies = await run(calls, false)
      // A restarted Redis (or a new cluster node) does not know the script yet: a NOSCRIPT reply
      // ran nothing of its call, so exactly those calls are sent again with the script's text.
      const missing = replies.flatMap(([err], i) => (err !== null && /NOSCRIPT/.test(err.message) ? [i] : []))
      if (missing.length > 0) {
        const again = await run(
          missing.map((i) => calls[i] as { keys: string[]; args: string[] }),
          true,
        )
        missing.forEach((at, j) => (replies[at] = again[j] as [Error | null, unknown]))
      }
    } catch (e) {
      throw new StoreError('the Redis replay store could not be reached', { cause: e })
    }
    const verdicts: ReplayVerdict[] = new Array<ReplayVerdict>(entries.length)
    groups.forEach((g, n) => {
      const [err, value] = replies[n] as [Error | null, unknown]
      if (err !== null) throw new StoreError('the Redis replay store refused a check', { cause: err })
      if (!Array.isArray(value) || value.length !== g.length) throw new StoreError('the Redis replay store gave an unexpected answer')
      g.forEach((i, k) => {
        const verdict = VERDICTS[Number(value[k])]
        if (verdict === undefined) throw new StoreError('the Redis replay store gave an unexpected answer')
        verdicts[i] = verdict
      })
    })
    return verdicts
  }

  // Checks issued in one event-loop turn (a BullMQ worker's concurrent jobs, whose fetches arrive
  // together; concurrent eachMessage partitions) share one script call, in the order they were
  // issued: the verdicts are those of the calls one after the other.
  let pending: { entry: ReplayEntry; resolve: (v: ReplayVerdict) => void; reject: (e: unknown) => void }[] = []
  const flush = (): void => {
    const batch = pending
    pending = []
    checkMany(batch.map((p) => p.entry)).then(
      (verdicts) => batch.forEach((p, i) => p.resolve(verdicts[i] as ReplayVerdict)),
      (e: unknown) => batch.forEach((p) => p.reject(e)),
    )
  }
  const check = (entry: ReplayEntry): Promise<ReplayVerdict> =>
    new Promise((resolve, reject) => {
      if (pending.push({ entry, resolve, reject }) === 1) setImmediate(flush)
    })

  return { checkMany, check }
}
