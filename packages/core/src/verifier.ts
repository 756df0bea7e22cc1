import { hash } from 'node:crypto'
import { verifiedContext, type VerifiedContext } from './context.js'
import { ConfigError, type KeyError, VerificationError } from './errors.js'
import type { Algorithm, IdctxKey, Jwks } from './keys.js'
import type { KeySource } from './key-set.js'
import { parseOptions } from './lib/options.js'
import { accepts, Fail, wantedTyp, type Accepted, type Checked, type Entry, type Known } from './lib/verify/checked.js'
import { createRecordCheck } from './lib/verify/context-records.js'
import { createKeyLookup } from './lib/verify/key-lookup.js'
import { createMessageCheck, type DeferredReplay } from './lib/verify/message-checks.js'
import { checkNumbers, issuerSource, memberName, optionsSchema } from './lib/verify/options.js'
import { createTokenCache } from './lib/verify/token-cache.js'
import { createTokenCheck } from './lib/verify/token-checks.js'
import { notify, type IdctxObserver } from './observer.js'
import type { ProducerAcl, Requirements } from './policies.js'
import { ReasonCode } from './reason-codes.js'
import type { IdctxClaims } from './claims.js'
import type { ReplayStore, RevocationStore } from './stores.js'

/**
 * An issuer's keys: a key source (key set, remote JWKS), a list of keys, or a JWKS document.
 *
 * @example
 * ```ts
 * const issuers: Record<string, IssuerKeys> = {
 *   orders: createRemoteJwks('https://orders.internal/.well-known/idctx-jwks.json'), // a key source
 *   billing: [importJwk(billingPublicJwk)],                                        // a list of keys
 *   legacy: JSON.parse(await readFile('legacy.jwks.json', 'utf8')),                 // a JWKS document
 * }
 * const verifier = createVerifier({ audience: 'shop', issuers })
 * ```
 */
export type IssuerKeys = KeySource | readonly IdctxKey[] | Jwks

/**
 * Options of {@link createVerifier}.
 *
 * Parsed once by {@link createVerifier}: invalid or unknown options throw a {@link ConfigError}
 * (`ERR_IDCTX_CONFIG`) listing the paths, never values.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({
 *   audience: 'shop',
 *   issuers: { orders: createRemoteJwks('https://orders.internal/.well-known/idctx-jwks.json') },
 *   producerAcl: { orders: { destinations: ['kafka:orders'], tenants: '*' } },
 *   requirements: { scopes: ['orders:write'] },
 *   clockToleranceSeconds: 30,
 *   maxLifetimeSeconds: 900,
 *   replay: createRedisReplayStore({ client: redis }), // @idctx/redis
 *   revocation: createMemoryRevocationStore(),
 * })
 * ```
 */
export interface VerifierOptions {
  /** The audience (trust domain) tokens must be issued for. */
  audience: string
  /** Trusted issuers: service id → its keys. A key only verifies tokens of its own issuer. */
  issuers: Readonly<Record<string, IssuerKeys>>
  /** Allowed algorithms (default EdDSA, ES256, RS256). */
  algorithms?: readonly Algorithm[]
  /** HS256 must be enabled explicitly (single-operator deployments only). */
  allowHS256?: boolean
  /** Seconds of clock skew tolerated on exp/nbf/iat, at most 60 (default 30). */
  clockToleranceSeconds?: number
  /** Largest `exp - iat` accepted, in seconds (default 900). */
  maxLifetimeSeconds?: number
  /**
   * Largest `exp - iat` of a job scheduler grant (`typ` `idctx-grant+jwt`), in seconds (default
   * 604800, 7 days; at most 366 days). Re-upserting a scheduler renews its grant.
   */
  maxGrantLifetimeSeconds?: number
  /**
   * Largest grace after `exp`, in seconds, an adapter may grant a message (a retried job, a
   * redriven record); default 0: none; at most 86400. The replay store remembers every message
   * until `exp` + this + `clockToleranceSeconds`, so a copy is caught for as long as any grace
   * could let it pass.
   */
  maxExpiryGraceSeconds?: number
  /** Largest token accepted, in bytes, checked before decoding (default 4096). */
  maxTokenBytes?: number
  /**
   * Largest context record of a batch-profile message (`idctx-ctx`), in UTF-8 bytes, checked
   * before it is decoded (default 2048, 256..65536): a larger one is `oversize`.
   */
  maxContextRecordBytes?: number
  /**
   * Parsed context records remembered, per record string (default 10000; 0 turns the cache off).
   * The messages of one call share a record, so each call's record is parsed once.
   */
  contextRecordCacheSize?: number
  /** Deepest actor chain accepted (default 8). */
  maxActorDepth?: number
  /** Which producer may publish where, for which tenants. Omitted: every trusted issuer anywhere. */
  producerAcl?: ProducerAcl
  /** Scopes/roles every message must carry (adapters may add per-destination ones). */
  requirements?: Requirements
  /** The deny-list asked about every token's kid, jti, txn, sub and tid (default none). */
  revocation?: RevocationStore
  /** Where deliveries are remembered to tell a replay from a redelivery (default none: no replay check). */
  replay?: ReplayStore
  /** Told about every verification and rejection (ids and hashes, never the token). */
  observer?: IdctxObserver
  /**
   * Batch-proof nodes remembered across cached tokens so that each record of a batch costs about
   * two hashes (default 200000, roughly 100 MB at most); 0 turns the shortcut off.
   */
  proofNodeCacheSize?: number
  /** Verified-token cache size; 0 disables it (default 10000). */
  cacheSize?: number
  /** Epoch milliseconds (default Date.now). */
  clock?: () => number
}

/**
 * The tenant a message must belong to, derived independently of the token.
 *
 * @example
 * ```ts
 * const one: ExpectedTenant = 'acme'
 * const some: ExpectedTenant = ['acme', 'globex']
 * const any: ExpectedTenant = { any: true } // with payloadTenant or an ACL restricting tenants
 * await verifier.verify({ tokens, destination, leaf, expectedTenant: one })
 * ```
 */
export type ExpectedTenant = string | readonly string[] | { readonly any: true }

/**
 * One message to verify, as an adapter sees it — of either profile (design, "Batch profile"): a
 * single-profile message has a token (`idctx+jwt`) and no context record; a batch-profile message
 * has a token (`idctx-batch+jwt`), its context record and its proof.
 *
 * @example
 * ```ts
 * const input: VerifyInput = {
 *   tokens: [message.headers.idctx!],                 // every value of the idctx header
 *   proof: message.headers['idctx-proof'],
 *   destination: 'kafka:orders',
 *   leaf: () => kafkaLeaf('orders', message.key, message.value),
 *   expectedTenant: 'acme',
 *   coordinates: `orders/${partition}/${message.offset}`,
 * }
 * const result = await verifier.verify(input)
 * ```
 */
export interface VerifyInput {
  /** Every value of the token carrier found on the message (0 → missing, 2+ → duplicate). */
  readonly tokens: readonly (string | Buffer)[]
  /** The `idctx-proof` value, when the message has one. */
  readonly proof?: string | Buffer | undefined
  /**
   * Every value of the context record carrier found on the message (Kafka header `idctx-ctx`,
   * the third part of BullMQ's `__idctx`), whatever their values, like `tokens`; omitted or empty
   * when there is none. With a batch-profile token: none → `malformed`, 2+ → `duplicate`, larger
   * than `maxContextRecordBytes` → `oversize`. With a single-profile token or a grant, any
   * occurrence → `malformed` (a carrier of the other profile).
   */
  readonly contextRecord?: readonly (string | Buffer)[] | undefined
  /** Where the message was actually delivered: `kafka:<topic>` or `bullmq:<queue>/<name>`. */
  readonly destination: string
  /** The leaf recomputed from the actual message, or a function computing it (called lazily). */
  readonly leaf: Buffer | (() => Buffer)
  /** The tenant this consumer expects (config, topic, resolver); `{ any: true }` to accept all. */
  readonly expectedTenant: ExpectedTenant
  /** A tenant id read from the payload; when given it must equal `tid`. */
  readonly payloadTenant?: string | undefined
  /** Delivery coordinates for replay detection (`topic/partition/offset`, `queue/jobId`). */
  readonly coordinates?: string | undefined
  /** Extra scopes/roles for this destination. */
  readonly requirements?: Requirements | undefined
  /**
   * Grace after `exp` for a retried message, in seconds, capped by `maxExpiryGraceSeconds`. Must
   * be a finite number ≥ 0: anything else makes `verify` throw a {@link ConfigError}.
   */
  readonly expiryGraceSeconds?: number | undefined
  /**
   * True when the adapter knows this is the message's first delivery (BullMQ: the first attempt
   * of the job). An earlier sighting at the same coordinates is then a replay — a job copied and
   * re-added under the same id — and not a redelivery.
   */
  readonly firstDelivery?: boolean | undefined
  /**
   * The W3C `traceparent` that travelled with the message (Kafka header, BullMQ telemetry
   * metadata). Not verified here: passed to the observer so tracing can link the creation
   * context and flag a `trc` that disagrees with it.
   */
  readonly traceparent?: string | undefined
}

/**
 * A successful verification.
 *
 * @example
 * ```ts
 * const result = await verifier.verify(input)
 * if (result.ok) {
 *   const verified: Verified = result
 *   await runWithContext(verified.context, () => handle(message)) // context.tid, context.sub, …
 * }
 * ```
 */
export interface Verified {
  /** Always true: tells a {@link Verified} from a {@link Rejected}. */
  readonly ok: true
  /**
   * The claims the message verified with. Single profile: the token's claims. Batch profile: the
   * token's `iss`, `aud`, `jti`, `iat`, `exp`, `nbf`, `dst`, `mh` merged with the message's
   * context record's `sub`, `tid`, `txn`, `pty`, `roles`, `scope`, `act`, `trc` (its nonce `n`
   * left out) — the same shape either way.
   */
  readonly claims: IdctxClaims
  /** The context to run the handler in (and to carry to the next hop). */
  readonly context: VerifiedContext
  /** SHA-256 of the token, hex: safe to log and correlate. */
  readonly tokenSha256: string
  /** True when the signature check was served from the verified-token cache. */
  readonly cached: boolean
}

/**
 * A failed verification.
 *
 * @example
 * ```ts
 * const result = await verifier.verify(input)
 * if (!result.ok) {
 *   const { error, tokenSha256 }: Rejected = result
 *   log.warn({ reason: error.reason, claim: error.claim, tokenSha256 }, 'idctx rejected')
 * }
 * ```
 */
export interface Rejected {
  /** Always false: tells a {@link Rejected} from a {@link Verified}. */
  readonly ok: false
  /** Why, with its stable `reason` code (and `claim` when one claim is at fault). */
  readonly error: VerificationError
  /** SHA-256 of the token, hex, when there was exactly one token. */
  readonly tokenSha256: string | undefined
}

/**
 * Result of {@link Verifier.verify}.
 *
 * @example
 * ```ts
 * const result: VerifyResult = await verifier.verify(input)
 * if (result.ok) await runWithContext(result.context, () => handle(message))
 * else await deadLetter(message, result.error.reason) // e.g. 'expired', 'binding_mismatch'
 * ```
 */
export type VerifyResult = Verified | Rejected

/**
 * Verifies idctx tokens against messages.
 *
 * Build one with {@link createVerifier}; it is safe to share between consumers.
 *
 * @example
 * ```ts
 * const verifier: Verifier = createVerifier({ audience: 'shop', issuers: { orders: ordersJwks } })
 * const report = await verifier.ready()
 * if (!report.ok) throw new Error('idctx: issuer keys unavailable')
 * const consumer = wrapConsumer(kafka.consumer({ groupId: 'billing' }), { verifier, tenant: 'acme', deadLetter: { producer: dlq } })
 * ```
 */
export interface Verifier {
  /** The audience tokens must be issued for (`VerifierOptions.audience`). */
  readonly audience: string
  /**
   * Verifies a message of either profile in the design's order: a single-profile token (`typ`
   * `idctx+jwt`), or a batch-profile token (`idctx-batch+jwt`) with the message's context record
   * (design, "Batch profile": steps 1–6 once per token, cached; then per message the record,
   * the binding with the batch leaf, time, tenant, ACL, scopes and deny-list with the record's
   * `sub`/`tid`/`txn`, and replay on (jti, leaf position)). Returns a result for every input a
   * producer or a broker can put on a message; throws only when infrastructure failed (a store or
   * key source could not answer: retry) or the adapter passed an invalid number
   * ({@link ConfigError}).
   */
  verify(input: VerifyInput): Promise<VerifyResult>
  /**
   * Verifies a job scheduler grant (`typ` `idctx-grant+jwt`, see {@link Signer.signGrant}) with
   * the same steps, except that its lifetime is capped by `maxGrantLifetimeSeconds` and it has no
   * replay step (every run of the scheduler carries it). `input.leaf` is the scheduler leaf
   * (`bullmqSchedulerLeaf`). A message token is never a grant (`wrong_typ`), and a grant is never
   * a message token.
   */
  verifyGrant(input: VerifyInput): Promise<VerifyResult>
  /**
   * Verifies the messages of one fetched batch: the same checks and results as `verify` for each,
   * in input order, with every replay check of the batch made in one store call
   * (`ReplayStore.checkMany`, one round trip for `@idctx/redis`). A later copy of a message in the
   * same batch is a replay of the earlier one. Throws like `verify` when a store fails: retry the
   * batch.
   */
  verifyMany(inputs: readonly VerifyInput[]): Promise<VerifyResult[]>
  /** Same, but throws the {@link VerificationError}. */
  verifyOrThrow(input: VerifyInput): Promise<Verified>
  /** Drops every cached verified token (e.g. after removing a trusted key). */
  clearCache(): void
  /**
   * Start-up check: fetches every issuer's remote JWKS that was never fetched and reports, per
   * issuer, whether its keys could be loaded. Never throws; a service decides whether to start
   * (`if (!report.ok) …`). Static keys and key sets are always ready.
   */
  ready(): Promise<ReadyReport>
}

/**
 * What {@link Verifier.ready} found: per trusted issuer, ready or the {@link KeyError} (with `url`,
 * `status` or `networkCode`) that kept its keys from loading.
 *
 * @example
 * ```ts
 * const report = await verifier.ready()
 * for (const [issuer, r] of Object.entries(report.issuers)) if (!r.ok) log.error({ issuer, url: r.error.url }, 'JWKS unreachable')
 * ```
 */
export interface ReadyReport {
  readonly ok: boolean
  readonly issuers: Readonly<Record<string, { readonly ok: true } | { readonly ok: false; readonly error: KeyError }>>
}

/** Runs `fn` over the entries one after the other (a store without `checkMany`), in order. */
async function sequential<T, R>(items: readonly T[], fn: (item: T) => R | PromiseLike<R>): Promise<R[]> {
  const out: R[] = []
  for (const item of items) out.push(await fn(item))
  return out
}

/**
 * Creates a verifier. It checks, in this order and failing closed: carrier presence, count and
 * size; compact syntax; `typ`, `alg`, header members; `kid` of a trusted issuer; the signature;
 * the claims' shape; issuer and audience; time; binding to the exact message; tenant; producer
 * ACL and scopes; deny-list and replay. The cryptographic part runs on node:crypto KeyObjects and
 * its result is cached per token string, so a batch signed with one token costs one signature
 * check plus a few SHA-256 calls per message.
 *
 * Both profiles go through `verify` and `verifyMany`: a batch-profile token (`idctx-batch+jwt`)
 * is checked once (steps 1–6, cached), then each message's context record (`contextRecord`:
 * present, one, `maxContextRecordBytes`, the claim rules, cached per string), its binding to the
 * batch leaf, the token's time, and tenant, ACL, scopes, deny-list with the record's `sub`,
 * `tid`, `txn` (design, "Batch profile"). Throws a {@link ConfigError} for invalid options.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({
 *   audience: 'shop',
 *   issuers: { orders: ordersKeySet },
 *   producerAcl: { orders: { destinations: ['kafka:orders'] } },
 * })
 * const r = await verifier.verify({
 *   tokens: [headerValue], destination: 'kafka:orders', leaf: kafkaLeaf('orders', key, value),
 *   expectedTenant: 'acme', coordinates: 'orders/0/42',
 * })
 * if (r.ok) await runWithContext(r.context, () => handle(value))
 * ```
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const o = parseOptions('verifier options', optionsSchema, options)
  const algorithms = new Set<Algorithm>(o.algorithms ?? ['EdDSA', 'ES256', 'RS256'])
  if (algorithms.has('HS256') && !o.allowHS256) {
    throw new TypeError('HS256 in algorithms needs allowHS256: true')
  }
  const wallClock = o.clock ?? Date.now
  // A clock that returns NaN would make every time comparison false, i.e. never expired: a clock
  // that cannot tell the time is an infrastructure failure (throw, retry), never a verdict.
  const clock = (): number => {
    const t = wallClock()
    if (!Number.isFinite(t)) throw new ConfigError('verifier clock', [{ path: 'clock', message: 'returned a value that is not a finite number of epoch milliseconds' }])
    return t
  }
  const issuers: [string, KeySource][] = Object.entries(o.issuers).map(([iss, keys]) => [iss, issuerSource(iss, keys)])
  if (o.producerAcl !== undefined) {
    const unknown = Object.keys(o.producerAcl).filter((iss) => !Object.prototype.hasOwnProperty.call(o.issuers, iss))
    if (unknown.length > 0) {
      throw new ConfigError(
        'verifier options',
        unknown.map((iss) => ({ path: `producerAcl.${memberName(iss)}`, message: 'not a trusted issuer: add its keys to issuers, or remove the entry' })),
      )
    }
  }
  const keys = createKeyLookup(issuers)
  const cache = createTokenCache(o.cacheSize, o.proofNodeCacheSize, o.clockToleranceSeconds + o.maxExpiryGraceSeconds)
  const maxNesting = Math.max(o.maxActorDepth, 8) + 1
  const verifyToken = createTokenCheck(o, algorithms, keys, maxNesting)
  const records = createRecordCheck(o, maxNesting)
  const checkMessage = createMessageCheck(o, clock, cache, records)
  // The records of one send carry the same token bytes, each in a buffer of its own: the text of
  // the last bytes seen is reused while they repeat, which spares a string of ~600 characters per
  // record and lets the cache lookup hash it once. The bytes are kept as a copy, never a view.
  let lastTokenBytes: Buffer | undefined
  let lastToken = ''
  const tokenText = (raw: Uint8Array): string => {
    if (lastTokenBytes !== undefined && lastTokenBytes.equals(raw)) return lastToken
    const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
    // latin1 is the cheapest exact decoding of ASCII; any non-ASCII byte fails the base64url
    // check either way, and tokenSha256 is taken over the bytes as they arrived.
    lastToken = bytes.toString('latin1')
    lastTokenBytes = Buffer.from(bytes)
    return lastToken
  }
  /** Uncached tokens being checked right now, with what the first check learned for events. */
  const inflight = new Map<string, { promise: Promise<Entry | Fail>; known: Known }>()

  // The checks below return a plain value whenever nothing had to wait (a cached token, in-memory
  // or no stores) and a promise only when something did: one consumed record then costs no promise
  // of its own beyond `verify`'s, which matters at tens of thousands of records a second.
  const check = (input: VerifyInput, known: Known, accepted: Accepted, deferred?: DeferredReplay): Checked | Promise<Checked> => {
    // 1. carrier
    const tokens = input.tokens
    if (!Array.isArray(tokens)) return new Fail(ReasonCode.Malformed, 'the idctx carrier is not a list of values')
    if (tokens.length === 0) return new Fail(ReasonCode.Missing, 'no idctx token on the message')
    if (tokens.length > 1) return new Fail(ReasonCode.Duplicate, 'more than one idctx token on the message')
    const raw: unknown = tokens[0]
    if (typeof raw !== 'string' && !(raw instanceof Uint8Array)) return new Fail(ReasonCode.Malformed, 'the idctx token is not text or bytes')
    if (input.proof !== undefined && typeof input.proof !== 'string' && !(input.proof instanceof Uint8Array)) {
      return new Fail(ReasonCode.BindingMismatch, 'the idctx-proof is not text or bytes', 'mh')
    }
    const size = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.byteLength
    if (size > o.maxTokenBytes) return new Fail(ReasonCode.Oversize, `token exceeds ${o.maxTokenBytes} bytes`)
    if (size === 0) return new Fail(ReasonCode.Missing, 'the idctx token is empty')
    const token = typeof raw === 'string' ? raw : tokenText(raw)

    const entry = cache.get(token)
    if (entry !== undefined && !accepts(accepted, entry.kind)) return new Fail(ReasonCode.WrongTyp, `token typ is not ${wantedTyp(accepted)}`, 'typ')
    if (entry !== undefined && entry.source.get(entry.header.kid) === entry.key) {
      known.tokenSha256 = entry.tokenSha256
      known.kid = entry.header.kid
      known.claims = entry.claims
      return checkMessage(input, entry, true, deferred, known)
    }
    if (entry !== undefined) cache.evict(token, entry)
    // Single flight: the records of one send usually arrive together, and only the first of them
    // checks the signature; the others wait for its result — or, when the key was at hand and the
    // check finished synchronously, find it in the cache.
    const flightKey = accepted === 'message' ? token : `${accepted}\0${token}`
    let flight = inflight.get(flightKey)
    if (flight === undefined) {
      // What the token check learns goes to a record of its own: the messages waiting on it copy
      // it, never what a message's own checks add afterwards.
      const leader: Known = { tokenSha256: hash('sha256', raw, 'hex') }
      const r = verifyToken(token, leader, accepted)
      if (!(r instanceof Promise)) {
        Object.assign(known, leader)
        if (r instanceof Fail) return r
        cache.add(token, r)
        return checkMessage(input, r, false, deferred, known)
      }
      const promise = r.then((v) => {
        if (!(v instanceof Fail)) cache.add(token, v)
        return v
      })
      flight = { promise, known: leader }
      inflight.set(flightKey, flight)
      void promise.then(
        () => inflight.delete(flightKey),
        () => inflight.delete(flightKey),
      )
    }
    const shared = flight
    return shared.promise.then((r) => {
      Object.assign(known, shared.known)
      return r instanceof Fail ? r : checkMessage(input, r, false, deferred, known)
    })
  }

  const verify = async (input: VerifyInput, accepted: Accepted): Promise<VerifyResult> => {
    checkNumbers(input)
    // Without an observer nothing reads the duration: skip the clock calls.
    const started = o.observer !== undefined ? performance.now() : 0
    const known: Known = {}
    // A store failing throws (fail closed) instead of rejecting: the message is not at fault, so
    // the adapter retries it rather than dead-lettering it.
    const pending = check(input, known, accepted)
    const r = pending instanceof Promise ? await pending : pending
    return finish(input, known, r, started)
  }

  /**
   * Many messages, one replay-store call: steps 1–10 per message, then every replay check of the
   * batch in one `checkMany` (one pipelined round trip for a shared store), in input order, so a
   * copy later in the same batch is still a replay of an earlier one.
   */
  const verifyMany = async (inputs: readonly VerifyInput[]): Promise<VerifyResult[]> => {
    for (const input of inputs) checkNumbers(input)
    const started = o.observer !== undefined ? performance.now() : 0
    const deferred: DeferredReplay = []
    const knowns: Known[] = []
    const checked: (Checked | Promise<Checked>)[] = []
    for (const input of inputs) {
      const known: Known = {}
      knowns.push(known)
      checked.push(check(input, known, 'message', deferred))
    }
    const results = await Promise.all(checked)
    if (deferred.length > 0 && o.replay !== undefined) {
      const store = o.replay
      const verdicts = store.checkMany !== undefined ? await store.checkMany(deferred) : await sequential(deferred, (e) => store.check(e))
      if (verdicts.length !== deferred.length) throw new TypeError('replay store checkMany returned a verdict count that differs from its input')
      for (let i = 0; i < results.length; i++) {
        const r = results[i] as Checked
        if (!(r instanceof Fail) && r.replayAt !== undefined && verdicts[r.replayAt] === 'replay') {
          results[i] = new Fail(ReasonCode.Replayed, 'message was already delivered elsewhere', 'jti')
        }
      }
    }
    return results.map((r, i) => finish(inputs[i] as VerifyInput, knowns[i] as Known, r, started))
  }

  const finish = (input: VerifyInput, known: Known, r: Checked, started: number): VerifyResult => {
    const observed = o.observer !== undefined
    const durationMs = observed ? performance.now() - started : 0
    if (r instanceof Fail) {
      const c = known.claims
      const error = new VerificationError(r.reason, r.message, r.claim)
      notify(o.observer, 'onRejected', {
        reason: r.reason,
        destination: input.destination,
        tokenSha256: known.tokenSha256,
        iss: c?.iss,
        aud: c?.aud,
        kid: known.kid,
        jti: c?.jti,
        txn: c?.txn,
        tid: c?.tid,
        sub: c?.sub,
        trc: c?.trc,
        traceparent: input.traceparent,
        durationMs,
      })
      return { ok: false, error, tokenSha256: known.tokenSha256 }
    }
    const { entry, cached } = r
    // A batch-profile message verified with its token's claims merged with its context record.
    const holder = r.merged ?? (entry as Entry & { kind: 'message' | 'grant' })
    const c = holder.claims
    if (observed) {
      notify(o.observer, 'onVerified', {
        iss: c.iss,
        kid: entry.header.kid,
        jti: c.jti,
        txn: c.txn,
        tid: c.tid,
        sub: c.sub,
        destination: input.destination,
        tokenSha256: entry.tokenSha256,
        trc: c.trc,
        traceparent: input.traceparent,
        cached,
        durationMs,
      })
    }
    // Every record of a batch shares its token (and, under the batch profile, the records of one
    // call share their context record) and usually its destination: build the (frozen) context
    // once per pair instead of once per record.
    let context = holder.context
    if (context === undefined || context.destination !== input.destination) {
      context = verifiedContext(c, input.destination, entry.tokenSha256)
      holder.context = context
    }
    return { ok: true, claims: c, context, tokenSha256: entry.tokenSha256, cached }
  }

  return {
    audience: o.audience,
    verify: (input) => verify(input, 'message'),
    verifyMany,
    verifyGrant: (input) => verify(input, 'grant'),
    async verifyOrThrow(input) {
      const r = await verify(input, 'message')
      if (!r.ok) throw r.error
      return r
    },
    clearCache: () => {
      cache.clear()
      records.clear()
    },
    ready: () => keys.ready(),
  }
}
