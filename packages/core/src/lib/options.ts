import type { z } from 'zod'
import { ConfigError } from '../errors.js'

/** An option name as it may appear in an error: printable ASCII, at most 64 characters. */
function safeName(name: string): string {
  return name.slice(0, 64).replace(/[^\x21-\x7e]/g, '?')
}

/** Levenshtein distance, for "did you mean" hints on a handful of short option names. */
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
 * The fix for an unknown option: the closest known name (by edit distance, or one containing the
 * other, as `replayStore` contains `replay`), else the list of known names.
 */
export function unknownOptionHint(name: string, known: readonly string[]): string {
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
  if (best !== undefined && bestScore <= Math.max(2, Math.floor(best.length / 3))) return `unknown option; did you mean '${best}'?`
  return `unknown option; known options are ${known.join(', ')}`
}

function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema
  for (const p of path) {
    const shape = (s as { shape?: Record<string, unknown> }).shape
    s = shape?.[String(p)]
    // Unwrap optional/default wrappers to reach a nested object schema.
    for (let i = 0; i < 4 && s !== undefined && (s as { shape?: unknown }).shape === undefined; i++) {
      s = (s as { unwrap?: () => unknown }).unwrap?.() ?? (s as { def?: { innerType?: unknown } }).def?.innerType
    }
  }
  const shape = (s as { shape?: Record<string, unknown> } | undefined)?.shape
  return shape === undefined ? [] : Object.keys(shape)
}

/**
 * Parses options once at construction; a ZodError becomes a ConfigError with paths, no values.
 * Unknown keys (on strict schemas) are listed one by one with the likely intended name, so a
 * misspelt option never silently turns a protection off.
 */
export function parseOptions<S extends z.ZodType>(what: string, schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input)
  if (!r.success) {
    const issues: { path: string; message: string }[] = []
    for (const i of r.error.issues) {
      const base = i.path.map((p) => safeName(String(p)))
      if (i.code === 'unrecognized_keys') {
        const known = knownKeys(schema, i.path)
        for (const k of i.keys) issues.push({ path: [...base, safeName(k)].join('.'), message: unknownOptionHint(k, known) })
      } else {
        issues.push({ path: base.join('.'), message: i.message })
      }
    }
    throw new ConfigError(what, issues)
  }
  return r.data
}
