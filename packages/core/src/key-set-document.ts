import { z } from 'zod'
import { KeyError } from './errors.js'
import { ALGORITHMS, exportPrivateJwk, generateKey, importJwk, type Algorithm, type IdctxKey } from './keys.js'
import { createKeySet, type KeySet } from './key-set.js'

/**
 * The private key set of one issuer, as every replica of it loads it: a JSON document to keep in
 * a secret manager, a mounted file or an environment variable. Handle it as a secret: it holds
 * the private JWKs. `active` signs; `staged` is published but does not sign yet; `retiring` keys
 * only verify, until pruned.
 *
 * @example
 * ```json
 * { "idctx": "keyset-v1", "active": "orders-2", "staged": null, "stagedAt": null,
 *   "retiring": [{ "kid": "orders-1", "retiredAt": 1800000000000 }],
 *   "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": "…", "d": "…", "kid": "orders-2", "alg": "EdDSA" }, …] }
 * ```
 */
export interface KeySetDocument {
  readonly idctx: 'keyset-v1'
  readonly active: string
  readonly staged: string | null
  /** Epoch milliseconds the staged key was staged at; null without one. */
  readonly stagedAt: number | null
  readonly retiring: readonly { readonly kid: string; readonly retiredAt: number }[]
  /** Private JWKs (RFC 7517) with `kid` and `alg`, one per key above. */
  readonly keys: readonly Record<string, unknown>[]
}

const epochMs = z.number().int().nonnegative().max(2 ** 53)
const kid = z.string().min(1).max(256)
const documentSchema = z.strictObject({
  idctx: z.literal('keyset-v1'),
  active: kid,
  staged: kid.nullable(),
  stagedAt: epochMs.nullable(),
  retiring: z.array(z.strictObject({ kid, retiredAt: epochMs })),
  keys: z.array(z.record(z.string(), z.unknown())).min(1),
}).refine((d) => (d.staged === null) === (d.stagedAt === null), {
  // A staged key without its time would be stamped "now" at every load: advanceKeySet would wait
  // forever and every replica would believe the key was staged when it started.
  message: 'staged and stagedAt are both set or both null',
  path: ['stagedAt'],
})

/**
 * The private document of a key set, for `importKeySet` in every replica. Throws a
 * {@link KeyError} when a key cannot be exported (a key without its private part).
 *
 * @example
 * ```ts
 * await secrets.put('idctx/orders/keyset', JSON.stringify(exportKeySet(keys)))
 * ```
 */
export function exportKeySet(keySet: KeySet): KeySetDocument {
  const s = keySet.state()
  const all = [s.active, ...(s.staged === undefined ? [] : [s.staged]), ...s.retiring.map((r) => r.key)]
  return {
    idctx: 'keyset-v1',
    active: s.active.kid,
    staged: s.staged?.kid ?? null,
    stagedAt: s.stagedAt ?? null,
    retiring: s.retiring.map((r) => ({ kid: r.key.kid, retiredAt: r.retiredAt })),
    keys: all.map((k) => exportPrivateJwk(k) as unknown as Record<string, unknown>),
  }
}

/**
 * Loads the key set every replica of an issuer shares, from its private document — a string
 * (a file's or an environment variable's content) or the parsed object (a secret manager's
 * answer). All replicas then sign with the same active key and publish the same JWKS. Weak keys
 * are refused as by `importJwk`.
 *
 * @throws {KeyError} (`ERR_IDCTX_KEY`) when the document is not JSON, not a `keyset-v1` document
 *   (the message lists the paths, never values), names a kid it has no key for, or a key cannot
 *   be imported or cannot sign.
 * @example
 * ```ts
 * const keys = importKeySet(process.env.IDCTX_KEYSET!)                       // environment
 * const keys2 = importKeySet(await readFile('/run/secrets/idctx-keyset', 'utf8')) // mounted file
 * const keys3 = importKeySet(await secrets.getJson('idctx/orders/keyset'))    // secret manager
 * ```
 */
export function importKeySet(document: string | KeySetDocument, options: { clock?: () => number } = {}): KeySet {
  let raw: unknown = document
  if (typeof document === 'string') {
    try {
      raw = JSON.parse(document)
    } catch {
      throw new KeyError('key set document is not JSON')
    }
  }
  const r = documentSchema.safeParse(raw)
  if (!r.success) {
    const where = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ')
    throw new KeyError(`key set document is not a keyset-v1 document: ${where}`)
  }
  const doc = r.data
  const byKid = new Map<string, IdctxKey>()
  for (const jwk of doc.keys) {
    const key = importJwk(jwk as Parameters<typeof importJwk>[0])
    if (typeof jwk.kid !== 'string' || !ALGORITHMS.includes(jwk.alg as Algorithm)) {
      throw new KeyError(`key ${JSON.stringify(key.kid)}: a key set document key needs its kid and alg`)
    }
    if (byKid.has(key.kid)) throw new KeyError(`key ${JSON.stringify(key.kid)}: listed twice in the key set document`)
    byKid.set(key.kid, key)
  }
  const take = (k: string): IdctxKey => {
    const key = byKid.get(k)
    if (key === undefined) throw new KeyError(`key ${JSON.stringify(k)}: named by the key set document but not among its keys`)
    byKid.delete(k)
    return key
  }
  const active = take(doc.active)
  const staged = doc.staged === null ? undefined : take(doc.staged)
  const retiring = doc.retiring.map((r) => ({ key: take(r.kid), retiredAt: r.retiredAt }))
  if (byKid.size > 0) throw new KeyError(`key ${JSON.stringify([...byKid.keys()][0])}: in the key set document but neither active, staged nor retiring`)
  return createKeySet({
    active,
    ...(staged === undefined ? {} : doc.stagedAt === null ? { staged } : { staged, stagedAt: doc.stagedAt }),
    retiring,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  })
}

/**
 * Options of {@link advanceKeySet}.
 *
 * @example
 * ```ts
 * // verifiers that keep a JWKS 5 min and accept tokens of up to 30 min:
 * const step = advanceKeySet(document, {
 *   stageForMs: 5 * 60_000 + 60_000,
 *   retireForMs: (1800 + 30) * 1000,
 *   alg: 'EdDSA',
 * })
 * ```
 */
export interface AdvanceKeySetOptions {
  /** Epoch milliseconds (default Date.now()). */
  now?: number
  /**
   * How long a staged key is published before it may sign, in milliseconds: at least the
   * verifiers' JWKS `maxAgeMs` plus the JWKS response's Cache-Control max-age (default 660000:
   * 10 min + 60 s, the defaults).
   */
  stageForMs?: number
  /**
   * How long a retired key keeps verifying, in milliseconds: at least the verifiers'
   * `maxLifetimeSeconds` + `clockToleranceSeconds` (default 960000: 900 s + 60 s).
   */
  retireForMs?: number
  /** The algorithm of a newly staged key (default the active key's). */
  alg?: Algorithm
  /** The kid of a newly staged key (default its RFC 7638 thumbprint). */
  kid?: string
}

/**
 * What {@link advanceKeySet} did.
 *
 * @example
 * ```ts
 * const step: AdvancedKeySet = advanceKeySet(process.env.IDCTX_KEYSET!)
 * if (step.action !== 'waiting') await secrets.put('idctx/orders/keyset', JSON.stringify(step.document))
 * console.log(step.action, step.kid, step.pruned, new Date(step.nextStepAt).toISOString())
 * ```
 */
export interface AdvancedKeySet {
  /** The next private document, to store and roll out to every replica. */
  readonly document: KeySetDocument
  /**
   * `staged` (a new key is published, not signing yet), `rotated` (the staged key signs, the old
   * active one retires), `waiting` (the staged key is not yet published long enough), with
   * `pruned` listing retired keys dropped in the same step.
   */
  readonly action: 'staged' | 'rotated' | 'waiting'
  /** The kid staged or made active; for `waiting`, the staged kid. */
  readonly kid: string
  /** Retired keys older than `retireForMs`, dropped by this step. */
  readonly pruned: readonly string[]
  /** Epoch ms from which the next call can do more than wait. */
  readonly nextStepAt: number
}

/**
 * One step of key rotation, as a deploy pipeline runs it: it takes the current private document
 * and returns the next one, to store and roll out to every replica. Call it on a schedule (e.g.
 * weekly) and after each roll-out; each call does the next safe thing:
 *
 * 1. prunes retired keys older than `retireForMs`;
 * 2. with no staged key, generates and stages one (published by every replica after the roll-out,
 *    signing with nothing yet);
 * 3. with a key staged for at least `stageForMs`, rotates: it becomes active, the old active key
 *    retires.
 *
 * So no verifier meets an unknown kid (the key was published one JWKS refresh before it signed)
 * and no token is rejected for a key pruned too early.
 *
 * @throws {KeyError} as {@link importKeySet} does for a bad document.
 * @example
 * ```ts
 * const { document, action, kid } = advanceKeySet(await secrets.getJson('idctx/orders/keyset'))
 * await secrets.put('idctx/orders/keyset', JSON.stringify(document)) // then roll out
 * console.log(action, kid) // 'staged' 'orders-…'
 * ```
 */
export function advanceKeySet(document: string | KeySetDocument, options: AdvanceKeySetOptions = {}): AdvancedKeySet {
  const now = options.now ?? Date.now()
  const stageForMs = options.stageForMs ?? 660_000
  const retireForMs = options.retireForMs ?? 960_000
  for (const [name, v] of [['now', now], ['stageForMs', stageForMs], ['retireForMs', retireForMs]] as const) {
    if (!Number.isFinite(v) || v < 0) throw new TypeError(`advanceKeySet: ${name} must be a finite number of milliseconds ≥ 0`)
  }
  const keys = importKeySet(document, { clock: () => now })
  const pruned = keys.prune(retireForMs / 1000).map((k) => k.kid)
  const { staged, stagedAt } = keys.state()
  let action: AdvancedKeySet['action']
  let kid: string
  let nextStepAt = now
  if (staged === undefined) {
    const next = generateKey(options.alg ?? keys.active.alg, options.kid === undefined ? {} : { kid: options.kid })
    keys.stage(next)
    action = 'staged'
    kid = next.kid
    nextStepAt = now + stageForMs
  } else if ((stagedAt ?? now) + stageForMs <= now) {
    keys.rotate()
    action = 'rotated'
    kid = staged.kid
    nextStepAt = now + retireForMs
  } else {
    action = 'waiting'
    kid = staged.kid
    nextStepAt = (stagedAt ?? now) + stageForMs
  }
  return { document: exportKeySet(keys), action, kid, pruned, nextStepAt }
}
