import { hash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { BATCH_TYP } from './batch-context.js'
import { claimsSchema, type ActorClaim } from './claims.js'
import type { IdentityContext } from './context.js'
import { SigningError, type ConfigError } from './errors.js'
import { type IdctxKey } from './keys.js'
import type { KeySet } from './key-set.js'
import { batchLeaf, contextRecordHash } from './leaf.js'
import { encodeBase64url } from './lib/base64url.js'
import { actorText, recordTailText } from './lib/record-text.js'
import { signBytes } from './lib/jws.js'
import { parseOptions } from './lib/options.js'
import { encodeProof, merkleTree } from './merkle.js'
import { notify, type IdctxObserver } from './observer.js'

/**
 * One message to sign: where it goes and its leaf hash (see `kafkaLeaf`, `bullmqLeaf`).
 *
 * @example
 * ```ts
 * const binding: MessageBinding = { destination: 'kafka:orders', leaf: kafkaLeaf('orders', 'o-1', value) }
 * const { token } = signer.sign({ sub: 'u-7d2f', tid: 'acme', txn: 'b1c9' }, [binding])
 * ```
 */
export interface MessageBinding {
  /** Where the message goes: `kafka:<topic>` or `bullmq:<queue>/<name>` (see `kafkaDestination`, `bullmqDestination`). */
  readonly destination: string
  /** The 32-byte leaf hash of the message (`kafkaLeaf`, `bullmqLeaf`); anything else is a TypeError. */
  readonly leaf: Buffer
}

/**
 * Options of {@link createSigner}.
 *
 * Parsed once by {@link createSigner}: invalid or unknown options throw a {@link ConfigError}
 * (`ERR_IDCTX_CONFIG`) listing the paths.
 *
 * @example
 * ```ts
 * const signer = createSigner({
 *   issuer: 'orders',
 *   audience: 'shop',
 *   key: importKeySet(process.env.IDCTX_KEYSET!),
 *   lifetimeSeconds: 120,
 *   traceId: activeTraceId, // from @idctx/otel
 *   observer: createLogObserver(),
 * })
 * ```
 */
export interface SignerOptions {
  /** This workload's service id (`iss`). */
  issuer: string
  /** The trust domain the consumers verify against (`aud`). */
  audience: string
  /** The signing key, or a key set whose active key signs. */
  key: IdctxKey | KeySet
  /** Default token lifetime in seconds (default 300). */
  lifetimeSeconds?: number
  /** Largest lifetime a call may ask for (default 900, the verifiers' default cap). */
  maxLifetimeSeconds?: number
  /** Default lifetime of a job scheduler grant in seconds (default 86400, one day). */
  grantLifetimeSeconds?: number
  /**
   * Largest grant lifetime a call may ask for, in seconds (default 604800, the verifiers' default
   * `maxGrantLifetimeSeconds`).
   */
  maxGrantLifetimeSeconds?: number
  /** Deepest actor chain kept; older actors beyond it are dropped (default 4). */
  maxActorDepth?: number
  /** HS256 is only for single-operator deployments: it must be enabled explicitly. */
  allowHS256?: boolean
  /** Epoch milliseconds (default Date.now). */
  clock?: () => number
  /** The current W3C trace id (32 hex), bound into `trc`; `@idctx/otel` provides one. */
  traceId?: () => string | undefined
  /**
   * Largest context record of the batch profile, in UTF-8 bytes (default 2048, the verifiers'
   * default `maxContextRecordBytes`; 256..65536). A context whose record would be larger (many
   * long roles, say) is never put in a batch: {@link Signer.signBatch} refuses it and a
   * `TurnSigner` signs its call alone, with the single profile.
   */
  maxContextRecordBytes?: number
  /** Told about every signed token (ids and hashes, never the token). */
  observer?: IdctxObserver
}

/**
 * Per-call options of {@link Signer.sign}.
 *
 * @example
 * ```ts
 * // a job delayed by 10 minutes: valid from when it runs, for 15 minutes
 * const notBefore = Math.floor(Date.now() / 1000) + 600
 * signer.sign(context, [binding], { lifetimeSeconds: 900, notBefore })
 * ```
 */
export interface SignOptions {
  /** Lifetime of this token in seconds, capped by `maxLifetimeSeconds` (e.g. a delayed job). */
  lifetimeSeconds?: number
  /** Not valid before this epoch second. */
  notBefore?: number
}

/**
 * What {@link Signer.sign} returns.
 *
 * @example
 * ```ts
 * const { token, proofs, jti, exp }: SignedToken = signer.sign(context, bindings)
 * const headers = { idctx: token, ...(proofs[0] === undefined ? {} : { 'idctx-proof': proofs[0] }) }
 * log.debug({ jti, exp }, 'signed') // exp in epoch seconds
 * ```
 */
export interface SignedToken {
  /** The compact JWS for the `idctx` carrier. */
  readonly token: string
  /** Per message, in input order, the `idctx-proof` header value; undefined for a single message. */
  readonly proofs: readonly (string | undefined)[]
  /** The token's unique id. */
  readonly jti: string
  /** The expiry, in epoch seconds. */
  readonly exp: number
  /** SHA-256 of the token, hex (safe to log). */
  readonly tokenSha256: string
}

/**
 * An identity context checked and made ready for signing by {@link Signer.prepare}, at the time
 * of the call that will carry it: the context, the W3C trace id current then (bound as `trc`),
 * and, when it fits `maxContextRecordBytes`, what its batch-profile context record will hold.
 * Opaque otherwise; only the signer that prepared it accepts it (another signer's is a TypeError).
 *
 * @example
 * ```ts
 * const prepared = signer.prepare(ctx) // in the request, where the trace is current
 * setImmediate(() => signer.sign(prepared, messages)) // trc is still the request's
 * ```
 */
export interface PreparedContext {
  /** The identity context as given (already checked). */
  readonly context: IdentityContext
  /** The trace id bound into `trc`, read from the signer's `traceId` when prepared. */
  readonly trc: string | undefined
  /** Whether the context can travel in a batch-profile context record (see `maxContextRecordBytes`). */
  readonly batchable: boolean
}

/**
 * The messages of one call of a batch: one identity context, one or more messages.
 *
 * @example
 * ```ts
 * const call: BatchCall = { context: alice, messages: [{ destination: 'kafka:orders', leaf: kafkaLeaf('orders', k, v) }] }
 * ```
 */
export interface BatchCall {
  /** The identity the messages are produced for: a context, or one prepared by this signer. */
  readonly context: IdentityContext | PreparedContext
  /** The call's messages, in order (at least one). */
  readonly messages: readonly MessageBinding[]
}

/**
 * What {@link Signer.signBatch} returns: one token, and per call its record and proofs.
 *
 * @example
 * ```ts
 * const { token, calls } = signer.signBatch(batchCalls)
 * const headersOf = (c: number, m: number) => ({ idctx: token, 'idctx-proof': calls[c].proofs[m], 'idctx-ctx': calls[c].contextRecord })
 * ```
 */
export interface SignedBatch {
  /** The compact JWS (`typ` `idctx-batch+jwt`) for the `idctx` carrier of every message. */
  readonly token: string
  readonly jti: string
  /** Expiry, epoch seconds. */
  readonly exp: number
  /** SHA-256 of the token, hex (safe to log). */
  readonly tokenSha256: string
  /** Per call, in input order: the context record every message of the call carries, and each message's proof. */
  readonly calls: readonly SignedBatchCall[]
}

/**
 * The carriers of one call of a batch-profile token.
 *
 * @example
 * ```ts
 * JSON.parse(call.contextRecord).sub // the call's user
 * ```
 */
export interface SignedBatchCall {
  /** The context record (RFC 8785 JSON text) for the `idctx-ctx` carrier of each message of the call. */
  readonly contextRecord: string
  /** Per message of the call, in order, the `idctx-proof` value (always present). */
  readonly proofs: readonly string[]
}

/**
 * Signs identity contexts over messages.
 *
 * @example
 * ```ts
 * const signer: Signer = createSigner({ issuer: 'orders', audience: 'shop', key: keys })
 * const { token } = signer.sign({ sub: 'u-7d2f', tid: 'acme', txn: 'b1c9' }, [
 *   { destination: 'kafka:orders', leaf: kafkaLeaf('orders', 'o-1', value) },
 * ])
 * const producer = wrapProducer(kafka.producer(), { signer }) // @idctx/kafkajs signs each send
 * ```
 */
export interface Signer {
  /** The `iss` of every token (`SignerOptions.issuer`). */
  readonly issuer: string
  /** The `aud` of every token (`SignerOptions.audience`). */
  readonly audience: string
  /**
   * Signs one token over one or many messages of one identity context (the single profile,
   * `typ` `idctx+jwt`). Synchronous: node:crypto one-shot signing. A {@link PreparedContext}
   * signs with the trace id it captured. Throws {@link SigningError} for a context that is not
   * signable or a lifetime out of range, a TypeError for a message without a 32-byte leaf.
   */
  sign(context: IdentityContext | PreparedContext, messages: readonly MessageBinding[], options?: SignOptions): SignedToken
  /**
   * Checks a context (a {@link SigningError}, code `ERR_IDCTX_SIGNING`, when it is not signable)
   * and captures what must be read at the time of the call: the current trace id. Adapters
   * prepare each call when it is made, and sign later, possibly with other calls
   * ({@link signBatch}, `createTurnSigner`).
   *
   * @example
   * ```ts
   * const prepared = signer.prepare({ sub: 'u-42', tid: 'acme', txn })
   * ```
   */
  prepare(context: IdentityContext | PreparedContext): PreparedContext
  /**
   * Signs the messages of several calls, each with its own identity context, under one token:
   * the batch profile (design, "Batch profile: one signature for every send of one event-loop
   * turn"). The token (`typ` `idctx-batch+jwt`) holds `iss`, `aud`, `jti`, `iat`, `exp`, `mh`,
   * `nbf` when asked and `dst` when every message has the same destination; each call gets a
   * context record (RFC 8785 JSON of `{sub, tid, txn, pty?, roles?, scope?, act?, trc?, n}`,
   * `act` with this issuer pushed on top, `n` 16 fresh random bytes) shared by its messages, and
   * each message its proof. The leaf of a message is
   * `batchLeaf(contextRecordHash(record), message.leaf)`.
   *
   * A batch token always covers at least two messages: a lone message is signed with
   * {@link sign}. Throws a TypeError for fewer than two messages or a bad leaf, a
   * {@link SigningError} for a context that is not signable or whose record would exceed
   * `maxContextRecordBytes`, or a lifetime out of range.
   *
   * @example
   * ```ts
   * const { token, calls } = signer.signBatch([
   *   { context: alice, messages: [{ destination: 'kafka:orders', leaf: kafkaLeaf('orders', 'k1', v1) }] },
   *   { context: bob, messages: [{ destination: 'kafka:orders', leaf: kafkaLeaf('orders', 'k2', v2) }] },
   * ])
   * // record 1: headers { idctx: token, 'idctx-ctx': calls[0].contextRecord, 'idctx-proof': calls[0].proofs[0] }
   * ```
   */
  signBatch(calls: readonly BatchCall[], options?: SignOptions): SignedBatch
  /**
   * Signs a job scheduler grant (`typ` `idctx-grant+jwt`): the principal of `context` (its
   * `txn` is the upsert's; each run gets its own), bound to one scheduler leaf
   * (`bullmqSchedulerLeaf`). Lifetime default `grantLifetimeSeconds`, capped by
   * `maxGrantLifetimeSeconds`. A grant is never accepted as a message token. Throws
   * {@link SigningError} like `sign`.
   */
  signGrant(context: IdentityContext, binding: MessageBinding, options?: SignOptions): SignedToken
}

const idString = z.string().min(1).max(256)
const KEY_HINT =
  'an IdctxKey or a KeySet: import a node:crypto KeyObject or PEM with importPem(), a private JWK with importJwk(), or make one with generateKey()'

const optionsSchema = z.strictObject({
  issuer: idString,
  audience: idString,
  key: z.custom<IdctxKey | KeySet>(isKeyOrKeySet, KEY_HINT),
  lifetimeSeconds: z.number().int().positive().max(86_400 * 7).default(300),
  maxLifetimeSeconds: z.number().int().positive().max(86_400 * 7).default(900),
  grantLifetimeSeconds: z.number().int().positive().max(86_400 * 366).default(86_400),
  maxGrantLifetimeSeconds: z.number().int().positive().max(86_400 * 366).default(86_400 * 7),
  maxActorDepth: z.number().int().min(1).max(16).default(4),
  allowHS256: z.boolean().default(false),
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
  traceId: z.custom<() => string | undefined>((v) => typeof v === 'function').optional(),
  maxContextRecordBytes: z.number().int().min(256).max(65_536).default(2048),
  observer: z.custom<IdctxObserver>((v) => typeof v === 'object' && v !== null).optional(),
})


function isKeyOrKeySet(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false
  const k = ('active' in v ? (v as KeySet).active : v) as Partial<IdctxKey> | undefined
  return typeof k?.kid === 'string' && typeof k.alg === 'string' && typeof k.verificationKey === 'object'
}

/** The identity context a signer accepts: the claim rules of the verifier, checked before signing. */
const contextSchema = z.object({
  sub: claimsSchema.shape.sub,
  tid: claimsSchema.shape.tid,
  txn: claimsSchema.shape.txn,
  pty: claimsSchema.shape.pty.optional(),
  roles: claimsSchema.shape.roles.optional(),
  scope: claimsSchema.shape.scope.optional(),
  act: z.unknown().optional(),
})

function checkContext(context: IdentityContext): void {
  if (context === undefined || context === null || typeof context !== 'object') throw new SigningError('no identity context to sign')
  const r = contextSchema.safeParse(context)
  if (!r.success) {
    const issue = r.error.issues[0]
    const path = issue?.path.map(String).join('.') ?? ''
    throw new SigningError(`the identity context is not signable: ${path || '(root)'}: ${issue?.message ?? 'invalid'} (sub, tid and txn are required non-empty strings of at most 256 characters)`)
  }
  // The single profile writes roles with JSON.stringify, the batch profile's record writes the
  // checked elements directly: a callable toJSON (own, an Array subclass's) would make the token
  // carry what it returns — roles the check never saw — and the two profiles differ. Refused.
  if (typeof (context.roles as { toJSON?: unknown } | undefined)?.toJSON === 'function') {
    throw new SigningError('the identity context is not signable: roles must be an array of strings JSON writes as they are (it has a toJSON method)')
  }
  if (context.act !== undefined && !isActorChain(context.act)) {
    throw new SigningError('the identity context is not signable: act must be an RFC 8693 actor chain { sub, act? } of at most 32 levels')
  }
}

function isActorChain(act: unknown): boolean {
  let depth = 0
  for (let a = act; a !== undefined; a = (a as ActorClaim).act) {
    if (++depth > 32 || a === null || typeof a !== 'object') return false
    const sub = (a as ActorClaim).sub
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256) return false
  }
  return true
}

const TRACE_ID = /^[0-9a-f]{32}$/
const ZERO_TRACE = '0'.repeat(32)

function activeKey(k: IdctxKey | KeySet): IdctxKey {
  return 'active' in k ? k.active : k
}

function cappedActor(issuer: string, prior: ActorClaim | undefined, maxDepth: number): ActorClaim {
  // Keep the newest producers: rebuild the chain from the current producer down to maxDepth.
  const chain: string[] = [issuer]
  for (let a = prior; a !== undefined && chain.length < maxDepth; a = a.act) chain.push(a.sub)
  let act: ActorClaim | undefined
  for (let i = chain.length - 1; i >= 0; i--) act = act === undefined ? { sub: chain[i] as string } : { sub: chain[i] as string, act }
  return act as ActorClaim
}

/**
 * Creates a signer. Options are validated once; the per-message path does no validation beyond
 * what a token needs. One token signs the Merkle root (`mh`) of all messages of one call, and each
 * message gets its proof, so a token lifted onto another record fails. `signBatch` signs the
 * calls of many identity contexts under one batch-profile token (design, "Batch profile"); a
 * `TurnSigner` (`createTurnSigner`) groups the calls of one event-loop turn for it.
 *
 * Throws a {@link ConfigError} (`ERR_IDCTX_CONFIG`) for invalid options, a {@link SigningError}
 * for a default lifetime above its cap or a key that cannot sign.
 *
 * @example
 * ```ts
 * const signer = createSigner({ issuer: 'orders', audience: 'shop', key: generateKey() })
 * const { token } = signer.sign(
 *   { sub: 'u-42', tid: 'acme', txn: 'b3c1' },
 *   [{ destination: 'kafka:orders', leaf: kafkaLeaf('orders', 'k', '{"n":1}') }],
 * )
 * ```
 */
export function createSigner(options: SignerOptions): Signer {
  const o = parseOptions('signer options', optionsSchema, options)
  if (o.lifetimeSeconds > o.maxLifetimeSeconds) {
    throw new SigningError('lifetimeSeconds exceeds maxLifetimeSeconds')
  }
  const clock = o.clock ?? Date.now
  const keyHolder = o.key
  if (o.grantLifetimeSeconds > o.maxGrantLifetimeSeconds) {
    throw new SigningError('grantLifetimeSeconds exceeds maxGrantLifetimeSeconds')
  }
  const check = (key: IdctxKey) => {
    if (key.signingKey === undefined) throw new SigningError('the signing key has no private part')
    if (key.alg === 'HS256' && !o.allowHS256) throw new SigningError('HS256 needs allowHS256: true')
  }
  check(activeKey(keyHolder))
  const headerCache = new Map<string, string>()
  const encodedHeader = (key: IdctxKey, kind: TokenProfile): string => {
    const cacheKey = `${kind}\0${key.kid}`
    let h = headerCache.get(cacheKey)
    if (h === undefined) {
      h = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: TYPS[kind] })).toString('base64url')
      headerCache.set(cacheKey, h)
    }
    return h
  }
  const checkedContexts = new WeakSet<object>()
  /** What this signer prepared: the parts of each context record around its nonce `n`. */
  const prepared = new WeakMap<PreparedContext, RecordParts | undefined>()

  const traceIdNow = (): string | undefined => {
    const raw = o.traceId?.()
    return raw !== undefined && TRACE_ID.test(raw) && raw !== ZERO_TRACE ? raw : undefined
  }

  /** The context checked, and the trace id current now; a context this signer prepared as it is. */
  const checked = (given: IdentityContext | PreparedContext): { context: IdentityContext; trc: string | undefined } => {
    if (prepared.has(given as PreparedContext)) return given as PreparedContext
    if (isPreparedShape(given)) throw new TypeError('a context prepared by another signer: prepare it with this one')
    const context = given as IdentityContext
    if (!checkedContexts.has(context)) {
      checkContext(context)
      // Frozen contexts (every verified one is) cannot change after the check: remember them.
      if (Object.isFrozen(context)) checkedContexts.add(context)
    }
    return { context, trc: traceIdNow() }
  }

  const prepare = (given: IdentityContext | PreparedContext): PreparedContext => {
    if (prepared.has(given as PreparedContext)) return given as PreparedContext
    const { context, trc } = checked(given)
    const parts = recordParts(context, trc)
    const p: PreparedContext = Object.freeze({ context, trc, batchable: parts !== undefined })
    prepared.set(p, parts)
    return p
  }

  /**
   * The context record without its nonce, as two strings around it, or undefined when the record
   * would exceed maxContextRecordBytes. RFC 8785 sorts members by UTF-16 code units: `act` (always
   * present: this issuer is pushed on top) sorts before `n`, and every other member after it.
   */
  const recordParts = (context: IdentityContext, trc: string | undefined): RecordParts | undefined => {
    const head = `{"act":${actorText(cappedActor(o.issuer, context.act, o.maxActorDepth))},"n":"`
    const tail = `"${recordTailText(context, trc)}`
    if (Buffer.byteLength(head) + NONCE_CHARS + Buffer.byteLength(tail) > o.maxContextRecordBytes) return undefined
    return { head, tail }
  }

  const timing = (kind: 'message' | 'grant', callOptions: SignOptions): { lifetime: number; nbf: number | undefined } => {
    const maxLifetime = kind === 'grant' ? o.maxGrantLifetimeSeconds : o.maxLifetimeSeconds
    const lifetime = callOptions.lifetimeSeconds ?? (kind === 'grant' ? o.grantLifetimeSeconds : o.lifetimeSeconds)
    if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > maxLifetime) {
      throw new SigningError(`lifetime must be a whole number of seconds in 1..${maxLifetime}`)
    }
    const nbf = callOptions.notBefore
    if (nbf !== undefined && (!Number.isInteger(nbf) || nbf < 0 || nbf > 2 ** 40)) {
      throw new SigningError('notBefore must be a whole number of epoch seconds')
    }
    return { lifetime, nbf }
  }

  const issuedAt = (): number => {
    const now = clock()
    if (!Number.isFinite(now)) throw new SigningError('the signer clock did not return a finite number of epoch milliseconds')
    return Math.floor(now / 1000)
  }

  /** Signs the claims with the active key under the profile's header; returns the compact JWS. */
  const jws = (key: IdctxKey, kind: TokenProfile, claims: Record<string, unknown>): string => {
    const input = `${encodedHeader(key, kind)}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
    const signature = signBytes(key.alg, key.signingKey as NonNullable<IdctxKey['signingKey']>, Buffer.from(input))
    return `${input}.${signature.toString('base64url')}`
  }

  const signAs = (kind: 'message' | 'grant', given: IdentityContext | PreparedContext, messages: readonly MessageBinding[], callOptions: SignOptions): SignedToken => {
    const started = performance.now()
    if (messages.length === 0) throw new TypeError('sign needs at least one message')
    const { context, trc } = checked(given)
    const key = activeKey(keyHolder)
    check(key)
    const { lifetime, nbf } = timing(kind, callOptions)
    let dst: string | undefined = messages[0]?.destination
    const leaves: Buffer[] = new Array(messages.length)
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as MessageBinding
      checkBinding(m)
      leaves[i] = m.leaf
      if (m.destination !== dst) dst = undefined
    }
    let root: Buffer
    let proofs: (string | undefined)[]
    if (leaves.length === 1) {
      root = leaves[0] as Buffer
      proofs = [undefined]
    } else {
      const tree = merkleTree(leaves)
      root = tree.root
      proofs = tree.proofs.map(encodeProof)
    }
    const iat = issuedAt()
    const jti = randomBytes(16).toString('base64url')
    const claims: Record<string, unknown> = {
      iss: o.issuer,
      aud: o.audience,
      sub: context.sub,
      tid: context.tid,
      txn: context.txn,
      jti,
      iat,
      exp: iat + lifetime,
    }
    if (nbf !== undefined) claims.nbf = nbf
    if (context.pty !== undefined) claims.pty = context.pty
    if (context.roles !== undefined) claims.roles = context.roles
    if (context.scope !== undefined) claims.scope = context.scope
    claims.act = cappedActor(o.issuer, context.act, o.maxActorDepth)
    if (dst !== undefined) claims.dst = dst
    claims.mh = encodeBase64url(root)
    if (trc !== undefined) claims.trc = trc
    const token = jws(key, kind, claims)
    const tokenSha256 = hash('sha256', token, 'hex')
    if (o.observer !== undefined) {
      notify(o.observer, 'onSigned', {
        profile: kind === 'grant' ? 'grant' : 'single',
        iss: o.issuer,
        kid: key.kid,
        alg: key.alg,
        jti,
        txn: context.txn,
        tid: context.tid,
        sub: context.sub,
        contexts: 1,
        destinations: [...new Set(messages.map((m) => m.destination))],
        count: messages.length,
        tokenSha256,
        trc,
        durationMs: performance.now() - started,
      })
    }
    return { token, proofs, jti, exp: iat + lifetime, tokenSha256 }
  }

  const signBatch = (calls: readonly BatchCall[], callOptions: SignOptions = {}): SignedBatch => {
    const started = performance.now()
    if (!Array.isArray(calls) || calls.length === 0) throw new TypeError('signBatch needs at least one call')
    const parts: RecordParts[] = new Array(calls.length)
    const contexts: IdentityContext[] = new Array(calls.length)
    let count = 0
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i] as BatchCall
      if (call === null || typeof call !== 'object' || !Array.isArray(call.messages) || call.messages.length === 0) {
        throw new TypeError('each call of a batch needs a context and at least one message')
      }
      const p = prepare(call.context)
      const recordParts = prepared.get(p)
      if (recordParts === undefined) {
        throw new SigningError(`the context record of this identity context would exceed maxContextRecordBytes (${o.maxContextRecordBytes}): sign its messages alone (sign)`)
      }
      parts[i] = recordParts
      contexts[i] = p.context
      for (const m of call.messages) checkBinding(m)
      count += call.messages.length
    }
    if (count < 2) throw new TypeError('a batch-profile token covers at least two messages: sign a lone message with sign()')
    const key = activeKey(keyHolder)
    check(key)
    const { lifetime, nbf } = timing('message', callOptions)
    const nonces = randomBytes(16 * calls.length)
    const records: string[] = new Array(calls.length)
    const leaves: Buffer[] = new Array(count)
    let dst: string | undefined = (calls[0] as BatchCall).messages[0]?.destination
    let at = 0
    for (let i = 0; i < calls.length; i++) {
      const { head, tail } = parts[i] as RecordParts
      const record = `${head}${nonces.subarray(16 * i, 16 * i + 16).toString('base64url')}${tail}`
      records[i] = record
      const recordSha256 = contextRecordHash(record)
      for (const m of (calls[i] as BatchCall).messages) {
        leaves[at++] = batchLeaf(recordSha256, m.leaf)
        if (m.destination !== dst) dst = undefined
      }
    }
    const tree = merkleTree(leaves)
    const iat = issuedAt()
    const jti = randomBytes(16).toString('base64url')
    const claims: Record<string, unknown> = { iss: o.issuer, aud: o.audience, jti, iat, exp: iat + lifetime }
    if (nbf !== undefined) claims.nbf = nbf
    if (dst !== undefined) claims.dst = dst
    claims.mh = encodeBase64url(tree.root)
    const token = jws(key, 'batch', claims)
    const tokenSha256 = hash('sha256', token, 'hex')
    at = 0
    const signedCalls: SignedBatchCall[] = calls.map((call, i) => {
      const proofs = tree.proofs.slice(at, at + call.messages.length).map(encodeProof)
      at += call.messages.length
      return { contextRecord: records[i] as string, proofs }
    })
    if (o.observer !== undefined) {
      const destinations = new Set<string>()
      for (const call of calls) for (const m of call.messages) destinations.add(m.destination)
      notify(o.observer, 'onSigned', {
        profile: 'batch',
        iss: o.issuer,
        kid: key.kid,
        alg: key.alg,
        jti,
        txn: shared(contexts, (c) => c.txn),
        tid: shared(contexts, (c) => c.tid),
        sub: shared(contexts, (c) => c.sub),
        contexts: calls.length,
        destinations: [...destinations],
        count,
        tokenSha256,
        trc: undefined,
        durationMs: performance.now() - started,
      })
    }
    return { token, jti, exp: iat + lifetime, tokenSha256, calls: signedCalls }
  }

  return {
    issuer: o.issuer,
    audience: o.audience,
    sign: (context, messages, callOptions = {}) => signAs('message', context, messages, callOptions),
    prepare,
    signBatch,
    signGrant: (context, binding, callOptions = {}) => signAs('grant', context, [binding], callOptions),
  }
}

/** A token's profile: its header `typ`. */
type TokenProfile = 'message' | 'grant' | 'batch'
const TYPS: Readonly<Record<TokenProfile, string>> = { message: 'idctx+jwt', grant: 'idctx-grant+jwt', batch: BATCH_TYP }

/** A context record around its nonce: `head + n + tail` is the RFC 8785 JSON. */
interface RecordParts {
  readonly head: string
  readonly tail: string
}

/** Characters of `n`: 16 bytes in base64url. */
const NONCE_CHARS = 22

function checkBinding(m: MessageBinding): void {
  if (!(m?.leaf instanceof Uint8Array) || m.leaf.length !== 32) throw new TypeError('a leaf must be a 32-byte hash')
  if (typeof m.destination !== 'string' || m.destination.length === 0) throw new TypeError('a message needs a destination string')
}

/** An object shaped like a PreparedContext (of some signer). */
function isPreparedShape(v: unknown): boolean {
  return v !== null && typeof v === 'object' && 'batchable' in v && 'context' in v && !('sub' in v)
}

/** The value every context has for a member, or undefined when they differ. */
function shared(contexts: readonly IdentityContext[], member: (c: IdentityContext) => string): string | undefined {
  const first = member(contexts[0] as IdentityContext)
  for (const c of contexts) if (member(c) !== first) return undefined
  return first
}
