import { createHash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { claimsSchema, type ActorClaim } from './claims.js'
import type { IdentityContext } from './context.js'
import { SigningError } from './errors.js'
import { type IdctxKey } from './keys.js'
import type { KeySet } from './key-set.js'
import { encodeBase64url } from './lib/base64url.js'
import { signBytes } from './lib/jws.js'
import { parseOptions } from './lib/options.js'
import { encodeProof, merkleTree } from './merkle.js'
import { notify, type IdctxObserver } from './observer.js'

/** One message to sign: where it goes and its leaf hash (see `kafkaLeaf`, `bullmqLeaf`). */
export interface MessageBinding {
  readonly destination: string
  readonly leaf: Buffer
}

/** Options of {@link createSigner}. */
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
  observer?: IdctxObserver
}

/** Per-call options of {@link Signer.sign}. */
export interface SignOptions {
  /** Lifetime of this token in seconds, capped by `maxLifetimeSeconds` (e.g. a delayed job). */
  lifetimeSeconds?: number
  /** Not valid before this epoch second. */
  notBefore?: number
}

/** What {@link Signer.sign} returns. */
export interface SignedToken {
  /** The compact JWS for the `idctx` carrier. */
  readonly token: string
  /** Per message, in input order, the `idctx-proof` header value; undefined for a single message. */
  readonly proofs: readonly (string | undefined)[]
  readonly jti: string
  readonly exp: number
  /** SHA-256 of the token, hex (safe to log). */
  readonly tokenSha256: string
}

/** Signs identity contexts over messages. */
export interface Signer {
  readonly issuer: string
  readonly audience: string
  /** Signs one token over one or many messages. Synchronous: node:crypto one-shot signing. */
  sign(context: IdentityContext, messages: readonly MessageBinding[], options?: SignOptions): SignedToken
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
 * message gets its proof, so a token lifted onto another record fails.
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
  const encodedHeader = (key: IdctxKey, kind: 'message' | 'grant'): string => {
    const cacheKey = `${kind}\0${key.kid}`
    let h = headerCache.get(cacheKey)
    if (h === undefined) {
      const typ = kind === 'grant' ? 'idctx-grant+jwt' : 'idctx+jwt'
      h = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ })).toString('base64url')
      headerCache.set(cacheKey, h)
    }
    return h
  }
  const checkedContexts = new WeakSet<object>()

  const signAs = (kind: 'message' | 'grant', context: IdentityContext, messages: readonly MessageBinding[], callOptions: SignOptions): SignedToken => {
    const started = performance.now()
    if (messages.length === 0) throw new TypeError('sign needs at least one message')
    if (!checkedContexts.has(context)) {
      checkContext(context)
      // Frozen contexts (every verified one is) cannot change after the check: remember them.
      if (Object.isFrozen(context)) checkedContexts.add(context)
    }
    const key = activeKey(keyHolder)
    check(key)
    const maxLifetime = kind === 'grant' ? o.maxGrantLifetimeSeconds : o.maxLifetimeSeconds
    const lifetime = callOptions.lifetimeSeconds ?? (kind === 'grant' ? o.grantLifetimeSeconds : o.lifetimeSeconds)
    if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > maxLifetime) {
      throw new SigningError(`lifetime must be a whole number of seconds in 1..${maxLifetime}`)
    }
    const nbf = callOptions.notBefore
    if (nbf !== undefined && (!Number.isInteger(nbf) || nbf < 0 || nbf > 2 ** 40)) {
      throw new SigningError('notBefore must be a whole number of epoch seconds')
    }
    let dst: string | undefined = messages[0]?.destination
    const leaves: Buffer[] = new Array(messages.length)
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as MessageBinding
      if (!(m?.leaf instanceof Uint8Array) || m.leaf.length !== 32) throw new TypeError('a leaf must be a 32-byte hash')
      if (typeof m.destination !== 'string' || m.destination.length === 0) throw new TypeError('a message needs a destination string')
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
    const now = clock()
    if (!Number.isFinite(now)) throw new SigningError('the signer clock did not return a finite number of epoch milliseconds')
    const iat = Math.floor(now / 1000)
    const jti = randomBytes(16).toString('base64url')
    const trcRaw = o.traceId?.()
    const trc = trcRaw !== undefined && TRACE_ID.test(trcRaw) && trcRaw !== ZERO_TRACE ? trcRaw : undefined
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
    const input = `${encodedHeader(key, kind)}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
    const signature = signBytes(key.alg, key.signingKey as NonNullable<IdctxKey['signingKey']>, Buffer.from(input))
    const token = `${input}.${signature.toString('base64url')}`
    const tokenSha256 = createHash('sha256').update(token).digest('hex')
    if (o.observer !== undefined) {
      notify(o.observer, 'onSigned', {
        iss: o.issuer,
        kid: key.kid,
        alg: key.alg,
        jti,
        txn: context.txn,
        tid: context.tid,
        sub: context.sub,
        destinations: [...new Set(messages.map((m) => m.destination))],
        count: messages.length,
        tokenSha256,
        trc,
        durationMs: performance.now() - started,
      })
    }
    return { token, proofs, jti, exp: iat + lifetime, tokenSha256 }
  }

  return {
    issuer: o.issuer,
    audience: o.audience,
    sign: (context, messages, callOptions = {}) => signAs('message', context, messages, callOptions),
    signGrant: (context, binding, callOptions = {}) => signAs('grant', context, [binding], callOptions),
  }
}

