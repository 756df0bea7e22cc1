import { createHash, randomBytes } from 'node:crypto'
import { StoreError, type ReplayEntry, type ReplayStore, type ReplayVerdict } from '@idctx/core'
import type { Cluster, Redis } from 'ioredis'
import { z } from 'zod'
import { parseStoreOptions } from './options.js'

/** Options of {@link createRedisReplayStore}. */
export interface RedisReplayStoreOptions {
  /** An ioredis client or cluster, the one BullMQ uses will do (commands only, no subscription). */
  client: Redis | Cluster
  /** Key prefix (default `idctx:replay:`). Keys are `<prefix>{<jti>}:<index>`: the hash tag keeps a token's messages in one cluster slot. */
  prefix?: string
  /** Epoch milliseconds (default Date.now), for the entries' expiry. */
  clock?: () => number
}

/** A replay store on Redis; {@link ReplayStore} with a one-round-trip `checkMany`. */
export interface RedisReplayStore extends ReplayStore {
  check(entry: ReplayEntry): Promise<ReplayVerdict>
  checkMany(entries: readonly ReplayEntry[]): Promise<ReplayVerdict[]>
}

// First delivery: SET with expiry and say so. Otherwise compare the stored coordinates: the same
// ones on a later attempt are a redelivery; other ones, or the same ones on what the adapter
// knows to be a first delivery, a replay. One script call: atomic per key.
//
// The stored value is "\x01" .. <12-character nonce of this check> .. <coordinates>. A client
// that loses its connection after Redis ran the script but before the reply arrived sends the
// same command again when it reconnects (ioredis's autoResendUnfulfilledCommands): the nonce
// tells that second run apart from another delivery, so it answers 'first' again instead of
// calling a first attempt a replay of itself. A value without the marker is taken as bare
// coordinates.
const SCRIPT = `local prior = redis.call('GET', KEYS[1])
local value = '\\001' .. ARGV[4] .. ARGV[1]
if prior == false then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
  return 0
end
if prior == value then return 0 end
if string.byte(prior, 1) == 1 then prior = string.sub(prior, 14) end
if prior == ARGV[1] and ARGV[3] ~= '1' then return 1 end
return 2`
const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex')
const VERDICTS: readonly ReplayVerdict[] = ['first', 'redelivery', 'replay']
const TAG_SAFE = /^[A-Za-z0-9_-]{1,64}$/

const schema = z.strictObject({
  client: z.custom<Redis | Cluster>((v) => typeof (v as Redis | undefined)?.evalsha === 'function', 'an ioredis client or cluster'),
  prefix: z.string().min(1).max(128).optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function', 'a function returning epoch milliseconds').optional(),
})

/**
 * A replay store shared by every instance of a consumer group or worker pool: one Redis key per
 * (jti, leaf position) holding the first delivery's coordinates, set atomically by a Lua script
 * with an expiry of the token's expiry plus tolerance and grace (what the verifier puts in
 * `expiresAt`). A redelivery at the same coordinates passes; any other delivery is `replayed`,
 * whichever instance sees it. `checkMany` answers a whole fetched batch in one pipelined round
 * trip (on a Redis Cluster, one per node). Works on Redis ≥ 6 and Redis Cluster.
 *
 * Redis down or slow: the call rejects with a `StoreError` (`ERR_IDCTX_STORE`), `verify` throws,
 * and the adapters retry the message; nothing is rejected or lost, and recovery is automatic.
 * About 200 bytes of Redis memory per entry, measured (docs/redis.md).
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL)
 * const verifier = createVerifier({ ...options, replay: createRedisReplayStore({ client: redis }) })
 * ```
 */
export function createRedisReplayStore(options: RedisReplayStoreOptions): RedisReplayStore {
  const o = parseStoreOptions('Redis replay store options', schema, options)
  const client = o.client
  const prefix = o.prefix ?? 'idctx:replay:'
  const clock = o.clock ?? Date.now
  const isCluster = (client as { isCluster?: boolean }).isCluster === true

  const keyOf = (e: ReplayEntry): string => {
    const tag = TAG_SAFE.test(e.jti) ? e.jti : createHash('sha256').update(e.jti).digest('base64url')
    return `${prefix}{${tag}}:${e.index}`
  }
  /**
   * Runs the script for every entry, in order; each reply is a verdict code or an error. `eval`
   * sends the script text instead of its SHA (and caches it on that node).
   */
  const run = async (entries: readonly ReplayEntry[], nonces: readonly string[], byText: boolean): Promise<[Error | null, unknown][]> => {
    const now = clock()
    const calls = entries.map(
      (e, i) =>
        [keyOf(e), e.coordinates, String(Math.max(1000, Math.ceil(e.expiresAt - now))), e.firstDelivery === true ? '1' : '0', nonces[i] as string] as const,
    )
    if (isCluster) {
      // ioredis writes every command at once and routes each to its node: one round trip per node,
      // in order per key.
      return Promise.all(
        calls.map((c) =>
          (byText ? client.eval(SCRIPT, 1, ...c) : client.evalsha(SCRIPT_SHA, 1, ...c)).then(
            (v): [null, unknown] => [null, v],
            (e: Error): [Error, null] => [e, null],
          ),
        ),
      )
    }
    const pipeline = (client as Redis).pipeline()
    for (const c of calls) {
      if (byText) pipeline.eval(SCRIPT, 1, ...c)
      else pipeline.evalsha(SCRIPT_SHA, 1, ...c)
    }
    return (await pipeline.exec()) ?? []
  }

  const checkMany = async (entries: readonly ReplayEntry[]): Promise<ReplayVerdict[]> => {
    if (entries.length === 0) return []
    // One nonce per check (12 base64url characters), the same when a command is sent again.
    const random = randomBytes(9 * entries.length)
    const nonces = entries.map((_, i) => random.toString('base64url', 9 * i, 9 * i + 9))
    let replies: [Error | null, unknown][]
    try {
      replies = await run(entries, nonces, false)
      // A restarted Redis (or a new cluster node) does not know the script yet: a NOSCRIPT reply
      // ran nothing, so exactly those entries are asked again with the script's text.
      const missing = replies.flatMap(([err], i) => (err !== null && /NOSCRIPT/.test(err.message) ? [i] : []))
      if (missing.length > 0) {
        const again = await run(
          missing.map((i) => entries[i] as ReplayEntry),
          missing.map((i) => nonces[i] as string),
          true,
        )
        missing.forEach((at, j) => (replies[at] = again[j] as [Error | null, unknown]))
      }
    } catch (e) {
      throw new StoreError('the Redis replay store could not be reached', { cause: e })
    }
    return replies.map(([err, value]) => {
      if (err !== null) throw new StoreError('the Redis replay store refused a check', { cause: err })
      const verdict = VERDICTS[Number(value)]
      if (verdict === undefined) throw new StoreError('the Redis replay store gave an unexpected answer')
      return verdict
    })
  }

  return {
    checkMany,
    check: async (entry) => (await checkMany([entry]))[0] as ReplayVerdict,
  }
}
