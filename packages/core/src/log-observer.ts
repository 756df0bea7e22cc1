import { createHash, createHmac } from 'node:crypto'
import { z } from 'zod'
import { parseOptions } from './lib/options.js'
import type { DispositionEvent, IdctxObserver, RejectedEvent } from './observer.js'

/**
 * The logging methods idctx calls: pino's `(object, message)` signature, so a pino logger (or a
 * child of one) fits as it is. Bunyan and any `{ info, warn, error }` with that shape fit too.
 *
 * @example
 * ```ts
 * const logger: IdctxLogger = pino() // or, without pino:
 * const plain: IdctxLogger = {
 *   info: (fields, message) => console.log(message, JSON.stringify(fields)),
 *   warn: (fields, message) => console.warn(message, JSON.stringify(fields)),
 *   error: (fields, message) => console.error(message, JSON.stringify(fields)),
 * }
 * const log = createLogObserver({ logger: plain })
 * ```
 */
export interface IdctxLogger {
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

/**
 * Options of {@link createLogObserver}.
 *
 * @example
 * ```ts
 * const log = createLogObserver({
 *   logger: pino(),
 *   maxLinesPerInterval: 5,
 *   intervalMs: 60_000,
 *   userIdSalt: process.env.IDCTX_USER_SALT,
 *   expectedAudience: 'shop',
 * })
 * ```
 */
export interface LogObserverOptions {
  /** Where lines go: a pino logger or anything with its signature (default {@link createConsoleLogger}). */
  logger?: IdctxLogger
  /** Lines logged per reason (and kind: rejection, disposition) per interval (default 10). */
  maxLinesPerInterval?: number
  /** The rate-limit interval in milliseconds (default 60000). */
  intervalMs?: number
  /**
   * Secret salt for the user id hash (HMAC-SHA-256, 128 bits kept). Without one, plain SHA-256:
   * a guessable pseudonymous `sub` can then be recovered from its hash.
   */
  userIdSalt?: string | Uint8Array
  /**
   * The audience the verifier expects, logged beside the token's own `audience` so an audience
   * typo reads at a glance.
   */
  expectedAudience?: string
  /** Epoch milliseconds (default Date.now). */
  clock?: () => number
}

/**
 * An observer that logs; `flush()` logs how many lines the rate limit held back and not yet reported.
 *
 * @example
 * ```ts
 * const log: LogObserver = createLogObserver({ logger: pino(), expectedAudience: 'shop' })
 * const verifier = createVerifier({ audience: 'shop', issuers, observer: log })
 * process.on('SIGTERM', () => log.flush())
 * ```
 */
export interface LogObserver extends IdctxObserver {
  /** Logs one `idctx.suppressed` line per reason with lines held back since its last line (call at shutdown). */
  flush(): void
}

const logger = z.custom<IdctxLogger>(
  (v) =>
    typeof v === 'object' && v !== null &&
    ['info', 'warn', 'error'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
  'an object with info, warn and error methods (a pino logger)',
)
const schema = z.strictObject({
  logger: logger.optional(),
  maxLinesPerInterval: z.number().int().min(1).max(1_000_000).optional(),
  intervalMs: z.number().int().min(1).max(86_400_000).optional(),
  userIdSalt: z.union([z.string().min(1), z.instanceof(Uint8Array)]).optional(),
  expectedAudience: z.string().optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function', 'a function returning epoch milliseconds').optional(),
})

/** Hex characters kept of the user id hash: 128 bits, the same as `@idctx/otel`'s `idctx.user`. */
const USER_HASH_HEX = 32

/**
 * A logger over `console`: each line is the message and its fields as one JSON object, e.g.
 * `idctx: message rejected {"reason":"wrong_audience",…}`.
 *
 * @example
 * ```ts
 * const observer = createLogObserver({ logger: createConsoleLogger() })
 * ```
 */
export function createConsoleLogger(target: Pick<Console, 'info' | 'warn' | 'error'> = console): IdctxLogger {
  const line = (fields: Record<string, unknown>, message: string) => `${message} ${JSON.stringify(fields)}`
  return {
    info: (f, m) => target.info(line(f, m)),
    warn: (f, m) => target.warn(line(f, m)),
    error: (f, m) => target.error(line(f, m)),
  }
}

/** `kafka:<topic>` → `{ topic }`, `bullmq:<queue>/<name>` → `{ queue, jobName }` (components decoded). */
function destinationFields(destination: string): Record<string, string> {
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s)
    } catch {
      return s
    }
  }
  if (destination.startsWith('kafka:')) return { topic: decode(destination.slice(6)) }
  if (destination.startsWith('bullmq:')) {
    const rest = destination.slice(7)
    const slash = rest.indexOf('/')
    return slash < 0 ? { queue: decode(rest) } : { queue: decode(rest.slice(0, slash)), jobName: decode(rest.slice(slash + 1)) }
  }
  return {}
}

function put(fields: Record<string, unknown>, name: string, value: unknown): void {
  if (value !== undefined) fields[name] = value
}

interface Window {
  start: number
  lines: number
  suppressed: number
}

/**
 * An {@link IdctxObserver} that makes rejections visible in the service's logs: one `warn` line
 * per rejected message (`idctx.rejected`: reason, destination, topic or queue, issuer, kid, the
 * token's audience and the expected one, tenant, hashed user id, jti, txn, token SHA-256) and one
 * per disposition (`idctx.disposition`: what the rejection policy did, with its target and the
 * message's coordinates; an `error` line for the `fail` policy).
 *
 * Lines are rate-limited per reason: at most `maxLinesPerInterval` per `intervalMs` for each kind
 * and reason; the next line logged for it carries `suppressed`, the number held back since the
 * previous one (and `flush()` logs what is still held back). A flood of one reason therefore
 * costs a few lines a minute, and a rare reason is never drowned by a frequent one.
 *
 * Never logged: the token, its context record, payloads, keys, or the raw user id (`user` is
 * HMAC-SHA-256 with `userIdSalt`, or SHA-256, truncated to 128 bits). Verified and signed
 * messages are not logged (use `@idctx/otel` for those).
 *
 * @throws {ConfigError} (`ERR_IDCTX_CONFIG`) for invalid options, listing paths, never values.
 * @example
 * ```ts
 * import pino from 'pino'
 * import { combineObservers, createLogObserver, createVerifier } from '@idctx/core'
 * const log = createLogObserver({ logger: pino(), expectedAudience: 'shop', userIdSalt: process.env.IDCTX_USER_SALT })
 * const verifier = createVerifier({ audience: 'shop', issuers, observer: log })
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), { verifier, tenant: 'acme', deadLetter, observer: log })
 * // {"level":40,"event":"idctx.rejected","reason":"wrong_audience","topic":"orders","issuer":"orders",
 * //  "kid":"orders-2","audience":"shpo","expectedAudience":"shop",…,"msg":"idctx: message rejected"}
 * process.on('beforeExit', () => log.flush())
 * ```
 */
export function createLogObserver(options: LogObserverOptions = {}): LogObserver {
  const o = parseOptions('log observer options', schema, options)
  const out = o.logger ?? createConsoleLogger()
  const max = o.maxLinesPerInterval ?? 10
  const interval = o.intervalMs ?? 60_000
  const clock = o.clock ?? Date.now
  const salt = o.userIdSalt === undefined ? undefined : typeof o.userIdSalt === 'string' ? Buffer.from(o.userIdSalt, 'utf8') : Buffer.from(o.userIdSalt)
  const userHash = (sub: string): string =>
    (salt === undefined ? createHash('sha256') : createHmac('sha256', salt)).update(sub).digest('hex').slice(0, USER_HASH_HEX)
  const windows = new Map<string, Window>()

  /** Whether a line for `key` may be logged now; the count held back before it goes in `fields`. */
  const admit = (key: string, fields: Record<string, unknown>): boolean => {
    const now = clock()
    let w = windows.get(key)
    if (w === undefined) {
      w = { start: now, lines: 0, suppressed: 0 }
      windows.set(key, w)
    } else if (now - w.start >= interval || now < w.start) {
      w.start = now
      w.lines = 0
    }
    if (w.lines >= max) {
      w.suppressed++
      return false
    }
    w.lines++
    if (w.suppressed > 0) {
      fields.suppressed = w.suppressed
      w.suppressed = 0
    }
    return true
  }

  const onRejected = (e: RejectedEvent): void => {
    const fields: Record<string, unknown> = { event: 'idctx.rejected', reason: e.reason, destination: e.destination, ...destinationFields(e.destination) }
    put(fields, 'issuer', e.iss)
    put(fields, 'kid', e.kid)
    put(fields, 'audience', e.aud)
    put(fields, 'expectedAudience', o.expectedAudience)
    put(fields, 'tenant', e.tid)
    if (e.sub !== undefined) fields.user = userHash(e.sub)
    put(fields, 'jti', e.jti)
    put(fields, 'txn', e.txn)
    put(fields, 'tokenSha256', e.tokenSha256)
    if (!admit(`rejected\0${e.reason}`, fields)) return
    out.warn(fields, 'idctx: message rejected')
  }

  const onDisposition = (e: DispositionEvent): void => {
    const fields: Record<string, unknown> = {
      event: 'idctx.disposition',
      reason: e.reason,
      policy: e.policy,
      destination: e.destination,
      ...destinationFields(e.destination),
    }
    put(fields, 'target', e.target)
    put(fields, 'coordinates', e.coordinates)
    put(fields, 'tokenSha256', e.tokenSha256)
    if (!admit(`disposition\0${e.reason}`, fields)) return
    const message = {
      'dead-letter': 'idctx: rejected message dead-lettered',
      skip: 'idctx: rejected message skipped',
      fail: 'idctx: rejected message failed',
      audit: 'idctx: rejected message delivered (audit mode)',
    }[e.policy] ?? 'idctx: rejected message handled'
    if (e.policy === 'fail') out.error(fields, message)
    else out.warn(fields, message)
  }

  const flush = (): void => {
    for (const [key, w] of windows) {
      if (w.suppressed === 0) continue
      const [kind, reason] = key.split('\0')
      out.warn({ event: 'idctx.suppressed', kind, reason, suppressed: w.suppressed }, 'idctx: log lines held back by the rate limit')
      w.suppressed = 0
    }
  }

  return Object.freeze({ onRejected, onDisposition, flush })
}
