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
  /** Makes `next` the active key; the previous active key is kept as retiring. */
  rotate(next: IdctxKey): void
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
 * keys.rotate(generateKey('EdDSA', { kid: 'orders-2' }))
 * setInterval(() => keys.prune(15 * 60), 60_000)
 * ```
 */
export function createKeySet(options: KeySetOptions): KeySet {
  const clock = options.clock ?? Date.now
  if (options.active.signingKey === undefined) throw new KeyError('the active key must be able to sign')
  let active = options.active
  const retiring: { key: IdctxKey; retiredAt: number }[] = (options.retiring ?? []).map((key) => ({
    key,
    retiredAt: clock(),
  }))
  const byKid = new Map<string, IdctxKey>()
  const reindex = () => {
    byKid.clear()
    for (const { key } of retiring) byKid.set(key.kid, key)
    byKid.set(active.kid, active)
  }
  reindex()
  return {
    get active() {
      return active
    },
    get: (kid) => byKid.get(kid),
    keys: () => [active, ...retiring.map((r) => r.key)],
    rotate(next) {
      if (next.signingKey === undefined) throw new KeyError('the active key must be able to sign')
      if (next.kid === active.kid) throw new KeyError('the new key must have a new kid')
      retiring.unshift({ key: active, retiredAt: clock() })
      active = next
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
    jwks: () => toJwks([active, ...retiring.map((r) => r.key)]),
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
