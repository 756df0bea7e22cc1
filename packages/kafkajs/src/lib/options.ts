/** One problem found in an options object: where (dotted path) and what to do about it. */
export interface OptionIssue {
  path: string
  message: string
}

/** An option name as it may appear in an error: printable ASCII, at most 64 characters. */
function safeName(name: string): string {
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
 * The message for an unknown option: its (sanitized) name, then the fix. A name that belongs to
 * another object (`elsewhere`, e.g. `replay` → "an option of createVerifier") says so; else the
 * closest known name (by edit distance, or one containing the other, as `deadLetterTopic`
 * contains `deadLetter`); else the list of known names.
 */
export function unknownOptionMessage(
  name: string,
  known: readonly string[],
  elsewhere: Readonly<Record<string, string>> = {},
): string {
  const shown = `unknown option '${safeName(name)}'`
  const lower = name.toLowerCase()
  for (const [k, where] of Object.entries(elsewhere)) {
    if (lower === k.toLowerCase() || distance(lower, k.toLowerCase()) <= 1) return `${shown}; ${where}`
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
 * One issue per own enumerable key of `value` that is not in `known` (paths prefixed with
 * `prefix.` when given). Symbol keys are ignored: no option is a symbol.
 */
export function unknownOptions(
  value: object,
  known: readonly string[],
  prefix = '',
  elsewhere: Readonly<Record<string, string>> = {},
): OptionIssue[] {
  const issues: OptionIssue[] = []
  for (const k of Object.keys(value)) {
    if (known.includes(k)) continue
    issues.push({ path: `${prefix === '' ? '' : `${prefix}.`}${safeName(k)}`, message: unknownOptionMessage(k, known, elsewhere) })
  }
  return issues
}

/** Whether `v` is a ContextStore: `run`, `current` and `exit` are functions. */
export function isContextStore(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  return typeof s.run === 'function' && typeof s.current === 'function' && typeof s.exit === 'function'
}
