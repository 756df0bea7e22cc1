import { KeyError } from './errors.js'
import { importJwk, toJwks, type IdctxKey, type Jwks } from './keys.js'

/**
 * Where a verifier finds an issuer's keys. `get` is synchronous and cheap (called per token on a
 * cache miss); `refresh` is called at most once per unknown kid, rate-limited by the source.
 *
 * A custom source need only implement `get`; `refresh`, `resolve` and `ready` are for sources that
 * can learn keys later.
 *
 * @example
 * ```ts
 * const fromVault: KeySource = { get: (kid) => vaultKeys.get(kid) } // Map<string, IdctxKey>
 * const verifier = createVerifier({ audience: 'shop', issuers: { orders: fromVault } })
 * ```
 */
export interface KeySource {
  /** The key with this kid, or undefined when the source does not (yet) know it. */
  get(kid: string): IdctxKey | undefined
  /** Reloads the keys (a remote JWKS refetches); rejects with a KeyError when it cannot. */
  refresh?(): Promise<void>
  /**
   * The key for a kid that `get` does not know, from a source that can learn new keys (a remote
   * JWKS). Resolves to the key, or to undefined only when a successful fetch that started after
   * the end of the token's `issuedAtSeconds` (capped at the source's now) still lacked it.
   * Rejects with a {@link KeyError} when no such fetch can be had now (the source is unreachable,
   * or a refresh is held back by its cooldown): the caller retries later, it does not reject.
   */
  resolve?(kid: string, token: { issuedAtSeconds: number | undefined }): Promise<IdctxKey | undefined>
  /** Fetches now if the source never has (start-up check); rejects with a KeyError when it cannot. */
  ready?(): Promise<void>
}

/**
 * A producer's keys: one active signing key and retiring keys still published for verification
 * until every token they signed has expired.
 *
 * @example
 * ```ts
 * const keys: KeySet = createKeySet({ active: generateKey('EdDSA', { kid: 'orders-1' }) })
 * const signer = createSigner({ issuer: 'orders', audience: 'shop', key: keys }) // signs with keys.active
 * http.createServer(createJwksHandler(keys)).listen(8080) // publishes keys.jwks()
 * ```
 */
export interface KeySet extends KeySource {
  /** The key new tokens are signed with. */
  readonly active: IdctxKey
  /** Active first, then retiring keys, newest first. */
  keys(): readonly IdctxKey[]
  /**
   * Publishes `next` in `jwks()` without signing with it yet. Stage a key, wait until every
   * verifier has fetched the JWKS (their cache age, or one cooldown), then `rotate()`: no
   * verifier ever meets an unknown kid.
   */
  stage(next: IdctxKey): void
  /** The staged key, if any. */
  readonly staged: IdctxKey | undefined
  /**
   * Makes `next` (or, without an argument, the staged key) the active key; the previous active key
   * is kept as retiring.
   */
  rotate(next?: IdctxKey): void
  /** Drops retiring keys retired more than `maxAgeSeconds` ago (use the verifiers' lifetime cap). */
  prune(maxAgeSeconds: number): IdctxKey[]
  /** The public JWKS of all keys (what verifiers fetch). */
  jwks(): Jwks
  /** The keys with their stage and retirement times (for `exportKeySet`). */
  state(): KeySetState
}

/**
 * Options of {@link createKeySet}.
 *
 * Throws a {@link KeyError} (`ERR_IDCTX_KEY`) when the active or staged key cannot sign, or two
 * keys share a kid.
 *
 * @example
 * ```ts
 * const keys = createKeySet({
 *   active: importJwk(JSON.parse(process.env.IDCTX_KEY_2!)),
 *   retiring: [{ key: importJwk(JSON.parse(process.env.IDCTX_KEY_1!)), retiredAt: Date.parse('2026-10-01') }],
 * })
 * ```
 */
export interface KeySetOptions {
  /** The key new tokens are signed with; it must hold its private (or secret) part. */
  active: IdctxKey
  /** A key published for verification before it signs (see {@link KeySet.stage}). */
  staged?: IdctxKey
  /** When the staged key was staged (epoch ms; default now). */
  stagedAt?: number
  /** Retiring keys, newest first; bare keys count as retired now. */
  retiring?: readonly (IdctxKey | RetiringKey)[]
  /** Milliseconds since the epoch; defaults to Date.now. */
  clock?: () => number
}

/**
 * A key that no longer signs, kept for verification since `retiredAt` (epoch ms).
 *
 * @example
 * ```ts
 * const retired: RetiringKey = { key: oldKey, retiredAt: Date.parse('2026-10-01T00:00:00Z') }
 * const keys = createKeySet({ active: newKey, retiring: [retired] })
 * ```
 */
export interface RetiringKey {
  /** The key, still published in the JWKS. */
  readonly key: IdctxKey
  /** When it stopped signing, in epoch milliseconds; `prune` measures from here. */
  readonly retiredAt: number
}

/**
 * What a key set holds and since when: the input of `exportKeySet`.
 *
 * @example
 * ```ts
 * const { active, staged, stagedAt, retiring }: KeySetState = keys.state()
 * console.log(active.kid, staged?.kid, stagedAt, retiring.map((r) => r.key.kid))
 * ```
 */
export interface KeySetState {
  /** The key that signs. */
  readonly active: IdctxKey
  /** The key published but not signing yet, if any. */
  readonly staged: IdctxKey | undefined
  /** Epoch ms; undefined without a staged key. */
  readonly stagedAt: number | undefined
  /** Keys that only verify, newest first, with their retirement time. */
  readonly retiring: readonly RetiringKey[]
}

/**
 * Creates a key set with one active signing key. Rotation never drops a key at once: the old key
 * stays in `jwks()` until `prune` runs after the maximum token lifetime, so rotation causes no
 * rejects.
 *
 * @example
 * ```ts
 * const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'orders-1' }) })
 * keys.stage(generateKey('EdDSA', { kid: 'orders-2' })) // published, not used yet
 * // …once verifiers have refreshed their JWKS:
 * keys.rotate()
 * setInterval(() => keys.prune(15 * 60), 60_000)
 * ```
 */
export function createKeySet(options: KeySetOptions): KeySet {
  const clock = options.clock ?? Date.now
  if (options.active.signingKey === undefined) throw new KeyError('the active key must be able to sign')
  let active = options.active
  let staged: IdctxKey | undefined = options.staged
  if (staged !== undefined && staged.signingKey === undefined) throw new KeyError('a staged key must be able to sign')
  let stagedAt: number | undefined = staged === undefined ? undefined : (options.stagedAt ?? clock())
  const retiring: { key: IdctxKey; retiredAt: number }[] = (options.retiring ?? []).map((r) =>
    'retiredAt' in r && 'key' in r ? { key: r.key, retiredAt: r.retiredAt } : { key: r as IdctxKey, retiredAt: clock() },
  )
  const kids = [active.kid, ...(staged === undefined ? [] : [staged.kid]), ...retiring.map((r) => r.key.kid)]
  if (new Set(kids).size !== kids.length) throw new KeyError('every key of a key set needs its own kid')
  const byKid = new Map<string, IdctxKey>()
  const reindex = () => {
    byKid.clear()
    for (const { key } of retiring) byKid.set(key.kid, key)
    if (staged !== undefined) byKid.set(staged.kid, staged)
    byKid.set(active.kid, active)
  }
  reindex()
  return {
    get active() {
      return active
    },
    get: (kid) => byKid.get(kid),
    get staged() {
      return staged
    },
    keys: () => [active, ...(staged !== undefined ? [staged] : []), ...retiring.map((r) => r.key)],
    stage(next) {
      if (next.signingKey === undefined) throw new KeyError('a staged key must be able to sign')
      if (byKid.has(next.kid) && staged?.kid !== next.kid) throw new KeyError('the staged key must have a new kid')
      if (staged?.kid !== next.kid) stagedAt = clock()
      staged = next
      reindex()
    },
    rotate(next) {
      const key = next ?? staged
      if (key === undefined) throw new KeyError('rotate needs a key, or a staged one')
      if (key.signingKey === undefined) throw new KeyError('the active key must be able to sign')
      if (key.kid === active.kid) throw new KeyError('the new key must have a new kid')
      retiring.unshift({ key: active, retiredAt: clock() })
      active = key
      if (staged?.kid === key.kid || next === undefined) {
        staged = undefined
        stagedAt = undefined
      }
      reindex()
    },
    prune(maxAgeSeconds) {
      const cutoff = clock() - maxAgeSeconds * 1000
      const dropped: IdctxKey[] = []
      for (let i = retiring.length - 1; i >= 0; i--) {
        const r = retiring[i]
        if (r !== undefined && r.retiredAt <= cutoff) {
          dropped.push(r.key)
          retiring.splice(i, 1)
        }
      }
      reindex()
      return dropped
    },
    jwks: () => toJwks([active, ...(staged !== undefined ? [staged] : []), ...retiring.map((r) => r.key)]),
    state: () => ({ active, staged, stagedAt, retiring: retiring.map((r) => ({ key: r.key, retiredAt: r.retiredAt })) }),
  }
}

/**
 * Why a JWK of a JWKS was not imported as it stood.
 *
 * @example
 * ```ts
 * const quiet: readonly IgnoredKeyReason[] = ['private_members']
 * const orders = createRemoteJwks(url, {
 *   onKeyIgnored: ({ kid, reason }) => { if (!quiet.includes(reason)) log.warn({ kid, reason }, 'JWK ignored') },
 * })
 * ```
 */
export type IgnoredKeyReason =
  /** The entry is not a JSON object. */
  | 'not_an_object'
  /** A remote JWKS entry has no usable `kid` (a string of 1..256 characters). */
  | 'missing_kid'
  /** `use: "enc"`: an encryption key is never a signature key. */
  | 'encryption_key'
  /** `kty: "oct"`: a shared secret is never a published verification key (RFC 7517 §6.4). */
  | 'symmetric_key'
  /** Private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) were dropped; the public key is kept. */
  | 'private_members'
  /** The key could not be imported: unsupported alg or curve, weak (see `importJwk`), or malformed. */
  | 'unusable'
  /** A remote JWKS already had a usable key with this kid; the first one is kept. */
  | 'duplicate_kid'

/**
 * What a key source reports when a JWK is skipped or imported without its private part. Holds
 * the kid (when it is a string of 1..256 characters) and a sentence for logs; never key material.
 *
 * @example
 * ```ts
 * const source = staticKeySource(jwks, {
 *   onKeyIgnored: (info: IgnoredKey) => log.warn({ kid: info.kid, reason: info.reason }, info.detail),
 * })
 * // info: { kid: 'k1', reason: 'unusable', detail: 'key "k1": RSA public exponent must be 65537' }
 * ```
 */
export interface IgnoredKey {
  /** The entry's kid, or undefined when it has none usable. */
  readonly kid: string | undefined
  /** Why the entry was skipped or stripped. */
  readonly reason: IgnoredKeyReason
  /** The same, as a sentence naming the kid, e.g. `key "k1": RSA public exponent must be 65537`. */
  readonly detail: string
}

/**
 * Called once per JWK that a key source skips or strips, each time the JWKS is loaded.
 *
 * @example
 * ```ts
 * const onKeyIgnored: IgnoredKeyListener = ({ kid, reason }) => metrics.jwkIgnored.add(1, { reason })
 * const orders = createRemoteJwks('https://orders.internal/.well-known/idctx-jwks.json', { onKeyIgnored })
 * ```
 */
export type IgnoredKeyListener = (info: IgnoredKey) => void

/**
 * Options of {@link staticKeySource}.
 *
 * @example
 * ```ts
 * const source = staticKeySource(JSON.parse(await readFile('orders.jwks.json', 'utf8')), {
 *   onKeyIgnored: ({ kid, reason }) => log.warn({ kid, reason }, 'JWK ignored'),
 * })
 * ```
 */
export interface StaticKeySourceOptions {
  /** Told about each JWK skipped or stripped of private members (default: nothing is told). */
  onKeyIgnored?: IgnoredKeyListener
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

function kidOf(jwk: Record<string, unknown>): string | undefined {
  const kid = jwk.kid
  return typeof kid === 'string' && kid.length > 0 && kid.length <= 256 ? kid : undefined
}

function named(kid: string | undefined, why: string): string {
  return `${kid === undefined ? 'a JWK without kid' : `key ${JSON.stringify(kid)}`}: ${why}`
}

/**
 * Imports the public part of one JWKS entry, or skips it: a verifier's key source never holds
 * more than a public key, whatever the JWKS publishes. Each skip and each strip is reported to
 * `listener`.
 *
 * @returns the verify-only key, or undefined when the entry is skipped.
 */
export function importVerificationJwk(entry: unknown, listener: IgnoredKeyListener | undefined): IdctxKey | undefined {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    listener?.({ kid: undefined, reason: 'not_an_object', detail: 'a JWKS entry is not an object' })
    return undefined
  }
  const jwk = entry as Record<string, unknown>
  const kid = kidOf(jwk)
  if (jwk.kty === 'oct') {
    listener?.({ kid, reason: 'symmetric_key', detail: named(kid, 'a symmetric (oct) JWK is never a published verification key') })
    return undefined
  }
  if (jwk.use === 'enc') {
    listener?.({ kid, reason: 'encryption_key', detail: named(kid, 'an encryption key (use "enc") is not a signature key') })
    return undefined
  }
  const pub: Record<string, unknown> = { ...jwk }
  for (const m of PRIVATE_MEMBERS) delete pub[m]
  let key: IdctxKey
  try {
    key = importJwk(pub)
  } catch (e) {
    listener?.({ kid, reason: 'unusable', detail: e instanceof KeyError ? e.message : named(kid, 'the JWK could not be imported') })
    return undefined
  }
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) {
    listener?.({ kid, reason: 'private_members', detail: named(kid, 'private members ignored, the public key is kept') })
  }
  return key
}

/**
 * A fixed set of verification keys, from IdctxKeys (taken as given) or a JWKS document (RFC 7517
 * §5). From a JWKS only public keys are imported, one entry at a time: private
 * members are dropped, and `oct`, `use: "enc"`, weak and malformed entries are skipped and
 * reported to `options.onKeyIgnored`, so a verifier meets their kid as `unknown_kid`. A kid-less
 * JWK gets its RFC 7638 thumbprint as kid.
 *
 * @throws {KeyError} (`ERR_IDCTX_KEY`) when two usable keys share a kid, or a JWKS has no `keys` array.
 * @example
 * ```ts
 * const source = staticKeySource(JSON.parse(fs.readFileSync('orders.jwks.json', 'utf8')), {
 *   onKeyIgnored: ({ kid, reason }) => log.warn({ kid, reason }, 'JWK ignored'),
 * })
 * ```
 */
export function staticKeySource(keys: readonly IdctxKey[] | Jwks, options: StaticKeySourceOptions = {}): KeySource {
  const byKid = new Map<string, IdctxKey>()
  for (const k of Array.isArray(keys) ? (keys as readonly IdctxKey[]) : jwksKeys(keys as Jwks, options.onKeyIgnored)) {
    if (byKid.has(k.kid)) throw new KeyError('duplicate kid in key source')
    byKid.set(k.kid, k)
  }
  return { get: (kid) => byKid.get(kid) }
}

function jwksKeys(jwks: Jwks, listener: IgnoredKeyListener | undefined): IdctxKey[] {
  const entries: unknown = (jwks as { keys?: unknown } | null)?.keys
  if (!Array.isArray(entries)) throw new KeyError('a JWKS needs a keys array')
  return entries.flatMap((entry: unknown) => importVerificationJwk(entry, listener) ?? [])
}
