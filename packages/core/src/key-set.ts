import { KeyError } from './errors.js'
import { importJwk, toJwks, type IdctxKey, type Jwks } from './keys.js'

/**
 * Where a verifier finds an issuer's keys. `get` is synchronous and cheap (called per token on a
 * cache miss); `refresh` is called at most once per unknown kid, rate-limited by the source.
 */
export interface KeySource {
  get(kid: string): IdctxKey | undefined
  refresh?(): Promise<void>
}

/**
 * A producer's keys: one active signing key and retiring keys still published for verification
 * until every token they signed has expired.
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
}

/** Options of {@link createKeySet}. */
export interface KeySetOptions {
  active: IdctxKey
  retiring?: readonly IdctxKey[]
  /** Milliseconds since the epoch; defaults to Date.now. */
  clock?: () => number
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
  let staged: IdctxKey | undefined
  const retiring: { key: IdctxKey; retiredAt: number }[] = (options.retiring ?? []).map((key) => ({
    key,
    retiredAt: clock(),
  }))
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
      if (staged?.kid === key.kid || next === undefined) staged = undefined
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
  }
}

/**
 * A fixed set of verification keys, from IdctxKeys or a JWKS document.
 *
 * @example
 * ```ts
 * const source = staticKeySource(JSON.parse(fs.readFileSync('orders.jwks.json', 'utf8')))
 * ```
 */
export function staticKeySource(keys: readonly IdctxKey[] | Jwks): KeySource {
  const list = Array.isArray(keys) ? (keys as readonly IdctxKey[]) : (keys as Jwks).keys.map((jwk) => importJwk(jwk))
  const byKid = new Map<string, IdctxKey>()
  for (const k of list) {
    if (byKid.has(k.kid)) throw new KeyError('duplicate kid in key source')
    byKid.set(k.kid, k)
  }
  return { get: (kid) => byKid.get(kid) }
}
