import { ConfigError, defaultContextStore, type ContextStore } from '@idctx/core'

/**
 * One problem found in an options object: where (dotted path) and what to do about it. Never
 * holds the offending value.
 */
export interface OptionIssue {
  path: string
  message: string
}

/** An option name as it may appear in an error: printable ASCII, at most 64 characters. */
export function safeName(name: string): string {
  return name.slice(0, 64).replace(/[^\x21-\x7e]/g, '?')
}

/** Levenshtein distance, for "did you mean" hints over a handful of short option names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] as number
      row[j] = Math.min(up + 1, (row[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return row[b.length] as number
}

/**
 * The message for an unknown option: its (sanitized) name, then the fix — the closest known name
 * (by edit distance, or one containing the other, as `lifetime` is in `lifetimeSeconds`), else
 * the list of known names.
 */
export function unknownOptionMessage(name: string, known: readonly string[]): string {
  const shown = `unknown option '${safeName(name)}'`
  const lower = name.toLowerCase()
  let best: string | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const k of known) {
    const kl = k.toLowerCase()
    const score = lower.includes(kl) || kl.includes(lower) ? 0 : distance(lower, kl)
    if (score < bestScore) {
      best = k
      bestScore = score
    }
  }
  if (best !== undefined && bestScore <= Math.max(2, Math.floor(best.length / 3))) return `${shown}; did you mean '${best}'?`
  return `${shown}; known options are ${known.join(', ')}`
}

/**
 * One issue per own enumerable key of `value` not in `known`, unless `removed` explains it (an
 * option that no longer exists, with where its job went). Symbol keys are ignored.
 */
export function unknownOptions(
  value: object,
  known: readonly string[],
  removed: Readonly<Record<string, string>> = {},
): OptionIssue[] {
  const issues: OptionIssue[] = []
  for (const k of Object.keys(value)) {
    if (known.includes(k)) continue
    const why = Object.prototype.hasOwnProperty.call(removed, k) ? removed[k] : undefined
    issues.push({ path: safeName(k), message: why ?? unknownOptionMessage(k, known) })
  }
  return issues
}

/** Whether `v` is a ContextStore: `run`, `current` and `exit` are functions. */
export function isContextStore(v: unknown): v is ContextStore {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  return typeof s.run === 'function' && typeof s.current === 'function' && typeof s.exit === 'function'
}

/**
 * Checks the per-call options object of a wrapped call (the last argument of `add`, `addBulk`,
 * flow calls, `upsertJobScheduler`): undefined or a plain object with only `known` keys. Throws a
 * {@link ConfigError} naming each unknown key with a "did you mean".
 */
export function checkCallOptions(what: string, value: unknown, known: readonly string[]): void {
  if (value === undefined) return
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(what, [{ path: '', message: `must be an object with ${known.join(', ')}` }])
  }
  const issues = unknownOptions(value, known)
  if (issues.length > 0) throw new ConfigError(what, issues)
}

/**
 * Runs `fn` with no current identity context in `store`, and none in core's default store either
 * (a wrapped producer inside may read that one): whatever context surrounded the caller — e.g.
 * a Worker created inside `runWithContext` — does not reach `fn`.
 */
export function withoutContext<T>(store: ContextStore, fn: () => T): T {
  if (store === defaultContextStore) return store.exit(fn)
  return defaultContextStore.exit(() => store.exit(fn))
}
