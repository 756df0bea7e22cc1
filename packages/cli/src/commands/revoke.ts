import type { RevocableId } from '@idctx/core'
import { createRedisRevocationStore } from '@idctx/redis'
import { Command, Argument } from 'commander'
import { Redis } from 'ioredis'
import { CliError, ExitCode } from '../lib/exit-codes.js'
import { emit, type CliIo } from '../lib/io.js'
import { seconds } from '../lib/numbers.js'
import { userHasher } from '../lib/user-hash.js'

const KINDS: readonly RevocableId[] = ['kid', 'jti', 'txn', 'sub', 'tid']

interface RevokeOptions {
  readonly redis?: string
  readonly prefix?: string
  readonly ttl?: number
  readonly json: boolean
}

/** Runs `fn` against the Redis deny-list every verifier with `createRedisRevocationStore` reads. */
async function withStore<T>(io: CliIo, o: RevokeOptions, fn: (store: ReturnType<typeof createRedisRevocationStore>) => Promise<T>): Promise<T> {
  const url = o.redis ?? io.env.REDIS_URL
  if (url === undefined || url === '') throw new CliError(ExitCode.Usage, 'no Redis: pass --redis redis://host:port or set REDIS_URL')
  let client: Redis
  try {
    client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: () => null, enableOfflineQueue: false })
  } catch {
    throw new CliError(ExitCode.Usage, '--redis is not a Redis URL')
  }
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (e) {
    client.disconnect()
    throw new CliError(ExitCode.Unreachable, `cannot reach Redis: ${(e as Error).message}`)
  }
  const subscriber = client.duplicate()
  subscriber.on('error', () => {})
  const store = createRedisRevocationStore({ client, subscriber, ...(o.prefix === undefined ? {} : { prefix: o.prefix }) })
  try {
    await Promise.race([
      store.ready(),
      new Promise((_, reject) => setTimeout(() => reject(new CliError(ExitCode.Unreachable, 'Redis did not answer in 5 s')), 5000).unref()),
    ])
    return await fn(store)
  } catch (e) {
    if (e instanceof CliError || e instanceof TypeError) throw e instanceof TypeError ? new CliError(ExitCode.Usage, e.message) : e
    throw new CliError(ExitCode.Unreachable, `Redis: ${(e as Error).message}`)
  } finally {
    await store.close().catch(() => {})
    subscriber.disconnect()
    client.disconnect()
  }
}

/** The value as printed: a user id (`sub`) only as its hash. */
function shown(io: CliIo, kind: RevocableId, value: string): string {
  return kind === 'sub' ? `sha256:${userHasher(io.env.IDCTX_USER_SALT)(value)}` : value
}

const kindArgument = () => new Argument('<kind>', 'what to deny: a key, a token, a transaction, a user or a tenant').choices(KINDS)

/** `idctx revoke <kind> <value>`: denies an id in the Redis deny-list, at once for every verifier. */
export function revokeCommand(io: CliIo): Command {
  return new Command('revoke')
    .description('deny a kid, jti, txn, sub or tid in the Redis revocation store (@idctx/redis); every verifier using it rejects with `revoked` at once')
    .addArgument(kindArgument())
    .argument('<value>', 'the id to deny')
    .option('--ttl <seconds>', 'lift the denial after this many seconds (default: never)', seconds)
    .option('--redis <url>', 'Redis URL (default: $REDIS_URL)')
    .option('--prefix <prefix>', 'the store\'s key prefix (default: idctx:revocation)')
    .option('--json', 'print JSON', false)
    .action(async (kind: RevocableId, value: string, o: RevokeOptions) => {
      if (value.length === 0) throw new CliError(ExitCode.Usage, 'the value is empty')
      const until = o.ttl === undefined ? undefined : Date.now() + o.ttl * 1000
      await withStore(io, o, (store) => store.revoke(kind, value, until))
      const result = { action: 'revoked', kind, value: shown(io, kind, value), until: until === undefined ? null : new Date(until).toISOString() }
      emit(io, o.json, result, () => `revoked ${kind} ${result.value}${result.until === null ? '' : ` until ${result.until}`}`)
    })
}

/** `idctx unrevoke <kind> <value>`: lifts a denial everywhere. */
export function unrevokeCommand(io: CliIo): Command {
  return new Command('unrevoke')
    .description('lift a denial from the Redis revocation store')
    .addArgument(kindArgument())
    .argument('<value>', 'the id to allow again')
    .option('--redis <url>', 'Redis URL (default: $REDIS_URL)')
    .option('--prefix <prefix>', 'the store\'s key prefix (default: idctx:revocation)')
    .option('--json', 'print JSON', false)
    .action(async (kind: RevocableId, value: string, o: RevokeOptions) => {
      await withStore(io, o, (store) => store.unrevoke(kind, value))
      const result = { action: 'unrevoked', kind, value: shown(io, kind, value) }
      emit(io, o.json, result, () => `unrevoked ${kind} ${result.value}`)
    })
}
