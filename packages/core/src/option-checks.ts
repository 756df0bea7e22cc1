import type { ContextStore } from './context.js'

/**
 * One problem found in an options object: where (dotted path) and what to do about it. Never
 * holds the offending value.
 *
 * @example
 * ```ts
 * try {
 *   createVerifier({ audience: 'shop', issuers, clockToleranceSecond: 30 } as VerifierOptions)
 * } catch (e) {
 *   if (e instanceof ConfigError) for (const issue of e.issues) console.error(issue.path, issue.message)
 *   // clockToleranceSecond unknown option 'clockToleranceSecond'; did you mean 'clockToleranceSeconds'?
 * }
 * ```
 */
export interface OptionIssue {
  /** The dotted path of the option, e.g. `retry.retries` (empty for the options object itself). */
  readonly path: string
  /** What is wrong and what to do, e.g. the option name it was likely meant to be. */
  readonly message: string
}

/**
 * An option name as it may appear in an error: printable ASCII only (anything else becomes `?`),
 * at most 64 characters.
 *
 * @example
 * ```ts
 * safeOptionName('a\nb') // 'a?b'
 * ```
 */
export function safeOptionName(name: string): string {
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
 * The message for an unknown option: its (sanitized) name, then the fix. A name close to one of
 * `hints` (an option of another object, or one that was removed) gets that hint; else the closest
 * known name (by edit distance, or one containing the other, as `replayStore` contains `replay`);
 * else the list of known names.
 *
 * @example
 * ```ts
 * unknownOptionMessage('replayStore', ['audience', 'issuers', 'replay']) // "unknown option 'replayStore'; did you mean 'replay'?"
 * ```
 */
export function unknownOptionMessage(name: string, known: readonly string[], hints: Readonly<Record<string, string>> = {}): string {
  const shown = `unknown option '${safeOptionName(name)}'`
  const lower = name.toLowerCase()
  for (const [k, hint] of Object.entries(hints)) {
    if (lower === k.toLowerCase() || distance(lower, k.toLowerCase()) <= 1) return `${shown}; ${hint}`
  }
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
 * One issue per own enumerable key of `value` that is not in `known`, paths prefixed with
 * `prefix.` when given. Symbol keys are ignored: no option is a symbol. Every idctx factory uses
 * it, so a misspelt option never silently turns a protection off.
 *
 * @example
 * ```ts
 * const issues = unknownOptions(options, ['verifier', 'tenant'], { hints: { replay: 'an option of createVerifier' } })
 * if (issues.length > 0) throw new ConfigError('consumer options', issues)
 * ```
 */
export function unknownOptions(
  value: object,
  known: readonly string[],
  options: { readonly prefix?: string; readonly hints?: Readonly<Record<string, string>> } = {},
): OptionIssue[] {
  const prefix = options.prefix ?? ''
  const issues: OptionIssue[] = []
  for (const k of Object.keys(value)) {
    if (known.includes(k)) continue
    issues.push({ path: `${prefix === '' ? '' : `${prefix}.`}${safeOptionName(k)}`, message: unknownOptionMessage(k, known, options.hints) })
  }
  return issues
}

/**
 * Whether `v` is a {@link ContextStore}: `run`, `current` and `exit` are functions (`exit` is what
 * keeps an unverified message's handler out of any identity).
 *
 * @example
 * ```ts
 * isContextStore(defaultContextStore) // true
 * ```
 */
export function isContextStore(v: unknown): v is ContextStore {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  return typeof s.run === 'function' && typeof s.current === 'function' && typeof s.exit === 'function'
}
