import { isUtf8 } from 'node:buffer'
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { actorDepth, claimsSchema, REQUIRED_CLAIMS, type IdctxClaims } from './claims.js'
import { verifiedContext, type VerifiedContext } from './context.js'
import { ConfigError, KeyError, VerificationError } from './errors.js'
import { ALGORITHMS, type Algorithm, type IdctxKey, type Jwks } from './keys.js'
import { staticKeySource, type KeySource } from './key-set.js'
import { decodeBase64url } from './lib/base64url.js'
import { verifyBytes } from './lib/jws.js'
import { parseOptions } from './lib/options.js'
import { proofPosition, verifyInclusion, type VerifiedNodes } from './merkle.js'
import { notify, type IdctxObserver } from './observer.js'
import { isProducerAllowed, meetsRequirements, type ProducerAcl, type Requirements } from './policies.js'
import { ReasonCode } from './reason-codes.js'
import type { ReplayEntry, ReplayStore, ReplayVerdict, RevocationStore } from './stores.js'

/** An issuer's keys: a key source (key set, remote JWKS), a list of keys, or a JWKS document. */
export type IssuerKeys = KeySource | readonly IdctxKey[] | Jwks

/** Options of {@link createVerifier}. */
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
  /** Largest grace after `exp` an adapter may grant a retried message (default 0: none). */
  maxExpiryGraceSeconds?: number
  /** Largest token accepted, in bytes, checked before decoding (default 4096). */
  maxTokenBytes?: number
  /** Deepest actor chain accepted (default 8). */
  maxActorDepth?: number
  /** Which producer may publish where, for which tenants. Omitted: every trusted issuer anywhere. */
  producerAcl?: ProducerAcl
  /** Scopes/roles every message must carry (adapters may add per-destination ones). */
  requirements?: Requirements
  revocation?: RevocationStore
  replay?: ReplayStore
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

/** The tenant a message must belong to, derived independently of the token. */
export type ExpectedTenant = string | readonly string[] | { readonly any: true }

/** One message to verify, as an adapter sees it. */
export interface VerifyInput {
  /** Every value of the token carrier found on the message (0 → missing, 2+ → duplicate). */
  readonly tokens: readonly (string | Buffer)[]
  /** The `idctx-proof` value, when the message has one. */
  readonly proof?: string | Buffer | undefined
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

/** A successful verification. */
export interface Verified {
  readonly ok: true
  readonly claims: IdctxClaims
  /** The context to run the handler in (and to carry to the next hop). */
  readonly context: VerifiedContext
  readonly tokenSha256: string
  readonly cached: boolean
}

/** A failed verification. */
export interface Rejected {
  readonly ok: false
  readonly error: VerificationError
  readonly tokenSha256: string | undefined
}

/** Result of {@link Verifier.verify}. */
export type VerifyResult = Verified | Rejected

/** Verifies idctx tokens against messages. */
export interface Verifier {
  readonly audience: string
  /**
   * Verifies a message token (`typ` `idctx+jwt`) in the design's order. Returns a result for every
   * input a producer or a broker can put on a message; throws only when infrastructure failed (a
   * store or key source could not answer: retry) or the adapter passed an invalid number
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

const ISSUER_KEYS_HINT = 'a key source (createKeySet, createRemoteJwks), an array of keys ([key]) or a JWKS document ({ keys: [...] })'

const optionsSchema = z.strictObject({
  audience: z.string().min(1).max(256),
  issuers: z.record(z.string().min(1).max(256), z.custom<IssuerKeys>(isIssuerKeys, ISSUER_KEYS_HINT)).refine((v) => Object.keys(v).length > 0, 'at least one trusted issuer'),
  algorithms: z.array(z.enum(ALGORITHMS as [Algorithm, ...Algorithm[]])).min(1).optional(),
  allowHS256: z.boolean().default(false),
  clockToleranceSeconds: z.number().int().min(0).max(60).default(30),
  maxLifetimeSeconds: z.number().int().positive().max(86_400 * 7).default(900),
  maxGrantLifetimeSeconds: z.number().int().positive().max(86_400 * 366).default(86_400 * 7),
  maxExpiryGraceSeconds: z.number().int().min(0).max(86_400).default(0),
  maxTokenBytes: z.number().int().min(256).max(65_536).default(4096),
  maxActorDepth: z.number().int().min(1).max(32).default(8),
  producerAcl: z
    .record(
      z.string(),
      z.strictObject({
        destinations: z.array(z.string().superRefine(destinationPatternIssue)).min(1),
        tenants: z.union([z.array(z.string().min(1).max(256)).min(1), z.literal('*')]).optional(),
      }),
    )
    .optional(),
  requirements: z.strictObject({ scopes: z.array(z.string().min(1)).optional(), roles: z.array(z.string().min(1)).optional() }).optional(),
  revocation: z.custom<RevocationStore>((v) => typeof (v as RevocationStore)?.isRevoked === 'function', 'a revocation store').optional(),
  replay: z.custom<ReplayStore>((v) => typeof (v as ReplayStore)?.check === 'function', 'a replay store').optional(),
  observer: z.custom<IdctxObserver>((v) => typeof v === 'object' && v !== null).optional(),
  cacheSize: z.number().int().min(0).max(10_000_000).default(10_000),
  proofNodeCacheSize: z.number().int().min(0).max(100_000_000).default(200_000),
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
})

const ALLOWED_HEADER = new Set(['alg', 'kid', 'typ'])
/** The `typ` of each kind of token: a message token is never accepted as a grant, nor the reverse. */
const TYP = { message: 'idctx+jwt', grant: 'idctx-grant+jwt' } as const
type TokenKind = keyof typeof TYP
/**
 * Deepest JSON nesting read from a token's header or payload, measured on the text before it is
 * parsed: a payload is an object (1) whose deepest legitimate member is the `act` chain.
 */
const MAX_HEADER_NESTING = 2


function isIssuerKeys(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false
  if (typeof (v as KeySource).get === 'function') return true
  if (Array.isArray(v)) return v.every((k) => k !== null && typeof k === 'object' && typeof (k as IdctxKey).kid === 'string' && typeof (k as IdctxKey).alg === 'string' && typeof (k as IdctxKey).verificationKey === 'object')
  return Array.isArray((v as Jwks).keys)
}

/**
 * Why an ACL destination pattern can never match a destination, if it cannot: destinations are
 * `kafka:<topic>` or `bullmq:<queue>/<jobName>` with each component percent-encoded (RFC 3986
 * unreserved characters and `%XX`), and `*` may only end a prefix pattern.
 */
function destinationPatternIssue(pattern: string, ctx: z.RefinementCtx): void {
  const prefix = pattern.endsWith('*')
  const body = prefix ? pattern.slice(0, -1) : pattern
  const component = /^(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})*$/
  let problem: string | undefined
  if (body.includes('*')) problem = "'*' may only end a pattern (a prefix)"
  else if (body.startsWith('kafka:')) {
    const topic = body.slice(6)
    if (!component.test(topic)) problem = 'the topic must be percent-encoded (kafkaDestination(topic) gives the form)'
    else if (!prefix && topic.length === 0) problem = 'an exact kafka pattern needs a topic'
  } else if (body.startsWith('bullmq:')) {
    const parts = body.slice(7).split('/')
    if (parts.length > 2 || !parts.every((c) => component.test(c))) {
      problem = "queue and job name must each be percent-encoded ('/' inside a name is %2F; bullmqDestination(queue, name) gives the form)"
    } else if (!prefix && (parts.length !== 2 || parts[0] === '' || parts[1] === '')) {
      problem = "an exact bullmq pattern is 'bullmq:<queue>/<jobName>'"
    }
  } else if (/^[a-z][a-z0-9+.-]*:./.test(body)) {
    // Another scheme (an HTTP hop's `http:<service>/<route>`, say): its components are the
    // caller's to encode; only the `*` rule above applies.
  } else if (!(prefix && ('kafka:'.startsWith(body) || 'bullmq:'.startsWith(body)))) {
    problem = "a pattern starts with a scheme: 'kafka:', 'bullmq:' (or another, e.g. 'http:')"
  }
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `can never match: ${problem}` })
}

/**
 * Whether JSON text nests deeper than `max` objects and arrays, counted on the raw text (strings
 * skipped) so that no parser or schema recursion ever meets a deeper value.
 */
function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

/** A header member name as it may appear in `error.claim`: printable ASCII only, at most 32. */
function memberName(name: string): string {
  const safe = name.slice(0, 32).replace(/[^\x21-\x7e]/g, '?')
  return safe.length === 0 ? '?' : safe
}

interface Entry {
  readonly kind: TokenKind
  readonly claims: IdctxClaims
  readonly header: { alg: Algorithm; kid: string }
  readonly key: IdctxKey
  readonly source: KeySource
  readonly tokenSha256: string
  /** The decoded `mh`, and the batch tree nodes authenticated against it so far. */
  readonly root: Buffer
  readonly nodes: VerifiedNodes
  /** The last context handed out for this token (see `verify`). */
  context: VerifiedContext | undefined
}

/** Partial facts about a token that failed, for the observer. */
interface Known {
  tokenSha256?: string
  kid?: string
  claims?: IdctxClaims
}

/** What the checks give: the verified entry, or the first failure. */
type Checked = { entry: Entry; cached: boolean; replayAt?: number } | Fail

/** A replay check left for one batched store call (`verifyMany`), and where its verdict goes. */
type DeferredReplay = ReplayEntry[]

/** Whether `await` would wait for a store's answer (a promise or any thenable). */
function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function'
}

class Fail {
  constructor(readonly reason: ReasonCode, readonly message: string, readonly claim?: string) {}
}

function issuerSource(issuer: string, keys: IssuerKeys): KeySource {
  if (typeof (keys as KeySource).get === 'function') return keys as KeySource
  try {
    return staticKeySource(keys as readonly IdctxKey[] | Jwks)
  } catch (e) {
    const message = e instanceof KeyError ? e.message : 'its keys could not be imported'
    throw new ConfigError('verifier options', [{ path: `issuers.${memberName(issuer)}`, message }])
  }
}

/**
 * Numbers an adapter passes in: finite and in range, or a ConfigError (a NaN grace would turn the
 * expiry check and replay detection off).
 */
function checkNumbers(input: VerifyInput): void {
  const g = input.expiryGraceSeconds
  if (g !== undefined && (typeof g !== 'number' || !Number.isFinite(g) || g < 0)) {
    throw new ConfigError('verify input', [{ path: 'expiryGraceSeconds', message: 'must be a finite number of seconds ≥ 0' }])
  }
}

// Invalid UTF-8 is refused, as jose's fatal TextDecoder does: a lenient decoder would map distinct
// signed bytes to the same U+FFFD text and accept claims jose refuses. isUtf8 + toString is the
// same check at a fraction of TextDecoder's cost.
// Like TextDecoder, a leading byte-order mark is dropped.
function strictUtf8(bytes: Buffer): string | undefined {
  if (!isUtf8(bytes)) return undefined
  const text = bytes.toString('utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

function parseJsonObject(b64: string, maxNesting: number): Record<string, unknown> | undefined {
  const bytes = decodeBase64url(b64)
  if (bytes === undefined) return undefined
  let value: unknown
  try {
    const text = strictUtf8(bytes)
    if (text === undefined || nestsDeeperThan(text, maxNesting)) return undefined
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}

/** Runs `fn` over the entries one after the other (a store without `checkMany`), in order. */
async function sequential<T, R>(items: readonly T[], fn: (item: T) => R | PromiseLike<R>): Promise<R[]> {
  const out: R[] = []
  for (const item of items) out.push(await fn(item))
  return out
}

function tenantMatches(expected: ExpectedTenant, tid: string): boolean {
  if (typeof expected === 'string') return expected === tid
  if (Array.isArray(expected)) return (expected as readonly string[]).includes(tid)
  return (expected as { any?: unknown }).any === true
}

/**
 * Creates a verifier. It checks, in this order and failing closed: carrier presence, count and
 * size; compact syntax; `typ`, `alg`, header members; `kid` of a trusted issuer; the signature;
 * the claims' shape; issuer and audience; time; binding to the exact message; tenant; producer
 * ACL and scopes; deny-list and replay. The cryptographic part runs on node:crypto KeyObjects and
 * its result is cached per token string, so a batch signed with one token costs one signature
 * check plus a few SHA-256 calls per message.
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
  const maxPayloadNesting = Math.max(o.maxActorDepth, 8) + 1
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
  const cache = new Map<string, Entry>()
  // Batch-tree nodes remembered across all cached tokens (each holds a hash and a proof suffix):
  // bounded so that many large cached batches cannot grow memory without limit.
  let provenNodes = 0
  const evict = (token: string, entry: Entry) => {
    cache.delete(token)
    provenNodes -= entry.nodes.size
  }

  /**
   * The trusted key for a kid. Should two issuers publish the same kid, the one named by the
   * token's (not yet trusted) `iss` is tried, so one issuer cannot shadow another's key; the
   * signature and step 6 still decide.
   */
  const findKey = (kid: string, issHint?: () => unknown): { issuer: string; key: IdctxKey; source: KeySource } | undefined => {
    let first: { issuer: string; key: IdctxKey; source: KeySource } | undefined
    for (const [issuer, source] of issuers) {
      const key = source.get(kid)
      if (key === undefined) continue
      if (first === undefined) {
        first = { issuer, key, source }
        if (issuers.length === 1 || issHint === undefined) return first
      } else if (issHint?.() === issuer) {
        return { issuer, key, source }
      }
    }
    return first
  }

  /**
   * A kid no source knows yet. Sources that can learn keys (remote JWKS) say either "absent after
   * a fetch made after the token was issued" (unknown_kid) or throw (retry): a key source that
   * cannot be reached, or is held back by its cooldown, never turns a genuine token into a
   * rejection. Only the issuer the token names is asked when it is a trusted one: a key of any
   * other issuer would fail step 6 anyway.
   */
  const lookupKey = async (kid: string, payload: () => Record<string, unknown> | null) => {
    const issHint = () => payload()?.iss ?? null
    const found = findKey(kid, issHint)
    if (found !== undefined) return found
    const named = issHint()
    const asked = issuers.filter(([iss, s]) => (s.resolve !== undefined || s.refresh !== undefined) && (typeof named !== 'string' || !Object.prototype.hasOwnProperty.call(o.issuers, named) || iss === named))
    if (asked.length === 0) return undefined
    const iat = payload()?.iat
    const token = { issuedAtSeconds: typeof iat === 'number' ? iat : undefined }
    const outcomes = await Promise.allSettled(
      asked.map(async ([issuer, s]) => {
        if (s.resolve !== undefined) return s.resolve(kid, token)
        await (s.refresh as () => Promise<void>)()
        return s.get(kid)
      }),
    )
    const again = findKey(kid, issHint)
    if (again !== undefined) return again
    const failed = outcomes.findIndex((r) => r.status === 'rejected')
    if (failed >= 0) {
      const cause = (outcomes[failed] as PromiseRejectedResult).reason as unknown
      const issuer = (asked[failed] as [string, KeySource])[0]
      const k = cause instanceof KeyError ? cause : undefined
      throw new KeyError(`keys of issuer ${JSON.stringify(issuer)} could not be checked for an unknown kid: ${k?.message ?? 'the key source failed'}`, {
        cause,
        issuer,
        url: k?.url,
        status: k?.status,
        networkCode: k?.networkCode,
      })
    }
    return undefined
  }

  /** Steps 2–6: everything that depends on the token alone, cached by token string. */
  const verifyToken = async (token: string, known: Known, kind: TokenKind): Promise<Entry | Fail> => {
    const parts = token.split('.')
    if (parts.length !== 3) return new Fail(ReasonCode.Malformed, 'token is not a compact JWS')
    const [h64, p64, s64] = parts as [string, string, string]
    const header = parseJsonObject(h64, MAX_HEADER_NESTING)
    if (header === undefined) return new Fail(ReasonCode.Malformed, 'token header is not a base64url JSON object')
    if (header.typ !== TYP[kind]) return new Fail(ReasonCode.WrongTyp, `token typ is not ${TYP[kind]}`, 'typ')
    const alg = header.alg
    if (typeof alg !== 'string' || !algorithms.has(alg as Algorithm)) {
      return new Fail(ReasonCode.AlgNotAllowed, 'token alg is not allowed', 'alg')
    }
    for (const name of Object.keys(header)) {
      if (!ALLOWED_HEADER.has(name)) return new Fail(ReasonCode.HeaderNotAllowed, 'token header has a member other than alg, kid, typ', memberName(name))
    }
    const kid = header.kid
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256) {
      return new Fail(ReasonCode.UnknownKid, 'token kid is absent or invalid', 'kid')
    }
    let unverified: Record<string, unknown> | null | undefined
    const payloadHint = () => (unverified ??= parseJsonObject(p64, maxPayloadNesting) ?? null)
    const found = await lookupKey(kid, payloadHint)
    if (found === undefined) return new Fail(ReasonCode.UnknownKid, 'no trusted issuer has this kid', 'kid')
    known.kid = kid
    if (found.key.alg !== alg) return new Fail(ReasonCode.UnknownKid, 'the key for this kid is not for this alg', 'alg')
    const signature = decodeBase64url(s64)
    if (signature === undefined) return new Fail(ReasonCode.Malformed, 'signature is not canonical base64url')
    const payloadBytes = decodeBase64url(p64)
    if (payloadBytes === undefined) return new Fail(ReasonCode.Malformed, 'payload is not canonical base64url')
    if (!verifyBytes(found.key.alg, found.key.verificationKey, Buffer.from(`${h64}.${p64}`, 'latin1'), signature)) {
      return new Fail(ReasonCode.BadSignature, 'signature does not verify')
    }
    let payload: unknown
    try {
      const text = strictUtf8(payloadBytes)
      if (text === undefined) return new Fail(ReasonCode.Malformed, 'payload is not UTF-8 JSON')
      if (nestsDeeperThan(text, maxPayloadNesting)) return new Fail(ReasonCode.Malformed, 'payload nests too deep', 'act')
      payload = JSON.parse(text)
    } catch {
      return new Fail(ReasonCode.Malformed, 'payload is not JSON')
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      return new Fail(ReasonCode.Malformed, 'payload is not a JSON object')
    }
    for (const c of REQUIRED_CLAIMS) {
      if (!Object.prototype.hasOwnProperty.call(payload, c)) return new Fail(ReasonCode.MissingClaim, `claim ${c} is missing`, c)
    }
    const parsed = claimsSchema.safeParse(payload)
    if (!parsed.success) {
      const claim = String(parsed.error.issues[0]?.path[0] ?? '')
      return new Fail(ReasonCode.Malformed, `claim ${claim} has the wrong shape`, claim)
    }
    const claims = parsed.data
    if (claims.exp <= claims.iat) return new Fail(ReasonCode.Malformed, 'exp is not after iat', 'exp')
    if (actorDepth(claims.act) > o.maxActorDepth) return new Fail(ReasonCode.Malformed, 'actor chain too deep', 'act')
    known.claims = claims
    if (claims.iss !== found.issuer) return new Fail(ReasonCode.WrongIssuer, 'the key does not belong to the token issuer', 'iss')
    if (claims.aud !== o.audience) return new Fail(ReasonCode.WrongAudience, 'token audience does not match', 'aud')
    const root = decodeBase64url(claims.mh)
    if (root === undefined) return new Fail(ReasonCode.Malformed, 'claim mh is not canonical base64url', 'mh')
    return {
      kind,
      claims,
      header: { alg: alg as Algorithm, kid },
      key: found.key,
      source: found.source,
      tokenSha256: known.tokenSha256 ?? '',
      root,
      nodes: new Map(),
      context: undefined,
    }
  }

  // The checks below return a plain value whenever nothing had to wait (a cached token, in-memory
  // or no stores) and a promise only when something did: one consumed record then costs no promise
  // of its own beyond `verify`'s, which matters at tens of thousands of records a second.
  const check = (input: VerifyInput, known: Known, kind: TokenKind, deferred?: DeferredReplay): Checked | Promise<Checked> => {
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
    // latin1 is the cheapest exact decoding of ASCII; any non-ASCII byte fails the base64url
    // check either way, and tokenSha256 is taken over the bytes as they arrived.
    const token = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1')

    const entry = cache.get(token)
    if (entry !== undefined && entry.kind !== kind) return new Fail(ReasonCode.WrongTyp, `token typ is not ${TYP[kind]}`, 'typ')
    if (entry !== undefined && entry.source.get(entry.header.kid) === entry.key) {
      known.tokenSha256 = entry.tokenSha256
      known.kid = entry.header.kid
      known.claims = entry.claims
      return checkMessage(input, entry, true, deferred)
    }
    if (entry !== undefined) evict(token, entry)
    known.tokenSha256 = createHash('sha256').update(raw).digest('hex')
    return verifyToken(token, known, kind).then((r) => {
      if (r instanceof Fail) return r
      if (o.cacheSize > 0) {
        if (cache.size >= o.cacheSize) {
          const oldest = cache.entries().next()
          if (oldest.done !== true) evict(oldest.value[0], oldest.value[1])
        }
        cache.set(token, r)
      }
      return checkMessage(input, r, false, deferred)
    })
  }

  /** Steps 7–11: what depends on the message, for a token that passed steps 2–6. */
  const checkMessage = (input: VerifyInput, entry: Entry, cached: boolean, deferred: DeferredReplay | undefined): Checked | Promise<Checked> => {
    const c = entry.claims

    // 7. time
    const now = clock() / 1000
    const tol = o.clockToleranceSeconds
    const grace = Math.min(input.expiryGraceSeconds ?? 0, o.maxExpiryGraceSeconds)
    if (c.exp + grace <= now - tol) return new Fail(ReasonCode.Expired, 'token has expired', 'exp')
    if (c.nbf !== undefined && c.nbf > now + tol) return new Fail(ReasonCode.NotYetValid, 'token is not valid yet', 'nbf')
    if (c.iat > now + tol) return new Fail(ReasonCode.NotYetValid, 'token was issued in the future', 'iat')
    const maxLifetime = entry.kind === 'grant' ? o.maxGrantLifetimeSeconds : o.maxLifetimeSeconds
    if (c.exp - c.iat > maxLifetime) return new Fail(ReasonCode.LifetimeExceeded, 'token lifetime exceeds the cap', 'exp')

    // 8. binding
    if (c.dst !== undefined && c.dst !== input.destination) {
      return new Fail(ReasonCode.BindingMismatch, 'token was signed for another destination', 'dst')
    }
    const leaf = typeof input.leaf === 'function' ? input.leaf() : input.leaf
    let included: boolean
    let proofText: string | undefined
    if (input.proof === undefined) {
      included = leaf.equals(entry.root)
    } else {
      proofText = typeof input.proof === 'string' ? input.proof : input.proof.toString('utf8')
      // Remember authenticated nodes only while the budget lasts: past it, records are still
      // verified in full, just without the shortcut.
      const before = entry.nodes.size
      const nodes = provenNodes < o.proofNodeCacheSize ? entry.nodes : undefined
      included = verifyInclusion(leaf, proofText, entry.root, nodes)
      provenNodes += entry.nodes.size - before
    }
    if (!included) {
      return new Fail(ReasonCode.BindingMismatch, 'message does not match the token binding', 'mh')
    }

    // 9. tenant
    if (!tenantMatches(input.expectedTenant, c.tid)) return new Fail(ReasonCode.TenantMismatch, 'token tenant is not the expected tenant', 'tid')
    if (input.payloadTenant !== undefined && input.payloadTenant !== c.tid) {
      return new Fail(ReasonCode.TenantMismatch, 'payload tenant differs from token tenant', 'tid')
    }

    // 10. producer rights and scopes
    if (o.producerAcl !== undefined && !isProducerAllowed(o.producerAcl, c.iss, input.destination, c.tid)) {
      return new Fail(ReasonCode.ActorNotAllowed, 'producer may not publish here for this tenant', 'iss')
    }
    if (!meetsRequirements(o.requirements, c.scope, c.roles) || !meetsRequirements(input.requirements, c.scope, c.roles)) {
      return new Fail(ReasonCode.InsufficientScope, 'required scopes or roles are missing', 'scope')
    }

    // 11. deny-list and replay
    const checkReplay = (): Checked | Promise<Checked> => {
      if (o.replay === undefined || input.coordinates === undefined || entry.kind === 'grant') return { entry, cached }
      const replayEntry: ReplayEntry = {
        jti: c.jti,
        index: proofText === undefined ? 0 : (proofPosition(proofText) as number),
        coordinates: input.coordinates,
        expiresAt: (c.exp + grace + tol) * 1000,
        firstDelivery: input.firstDelivery === true,
      }
      if (deferred !== undefined) {
        deferred.push(replayEntry)
        return { entry, cached, replayAt: deferred.length - 1 }
      }
      const verdict = o.replay.check(replayEntry)
      const decide = (v: ReplayVerdict): Checked =>
        v === 'replay' ? new Fail(ReasonCode.Replayed, 'message was already delivered elsewhere', 'jti') : { entry, cached }
      return isThenable(verdict) ? Promise.resolve(verdict).then(decide) : decide(verdict)
    }
    if (o.revocation === undefined) return checkReplay()
    const revoked = o.revocation.isRevoked({ kid: entry.header.kid, jti: c.jti, txn: c.txn, sub: c.sub, tid: c.tid })
    const decide = (r: boolean): Checked | Promise<Checked> =>
      r ? new Fail(ReasonCode.Revoked, 'token, key, transaction, subject or tenant is revoked') : checkReplay()
    return isThenable(revoked) ? Promise.resolve(revoked).then(decide) : decide(revoked)
  }

  const verify = async (input: VerifyInput, kind: TokenKind): Promise<VerifyResult> => {
    checkNumbers(input)
    // Without an observer nothing reads the duration: skip the clock calls.
    const started = o.observer !== undefined ? performance.now() : 0
    const known: Known = {}
    // A store failing throws (fail closed) instead of rejecting: the message is not at fault, so
    // the adapter retries it rather than dead-lettering it.
    const pending = check(input, known, kind)
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
    const c = entry.claims
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
    // Every record of a batch shares its token and usually its destination: build the (frozen)
    // context once per pair instead of once per record.
    let context = entry.context
    if (context === undefined || context.destination !== input.destination) {
      context = verifiedContext(c, input.destination, entry.tokenSha256)
      entry.context = context
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
      provenNodes = 0
    },
    async ready() {
      const entries = await Promise.all(
        issuers.map(async ([issuer, source]): Promise<[string, { ok: true } | { ok: false; error: KeyError }]> => {
          try {
            if (source.ready !== undefined) await source.ready()
            else if (source.refresh !== undefined) await source.refresh()
            return [issuer, { ok: true }]
          } catch (e) {
            const k = e instanceof KeyError ? e : undefined
            const error = new KeyError(`keys of issuer ${JSON.stringify(issuer)} could not be loaded: ${k?.message ?? 'the key source failed'}`, {
              cause: e,
              issuer,
              url: k?.url,
              status: k?.status,
              networkCode: k?.networkCode,
            })
            return [issuer, { ok: false, error }]
          }
        }),
      )
      return { ok: entries.every(([, r]) => r.ok), issuers: Object.fromEntries(entries) }
    },
  }
}
