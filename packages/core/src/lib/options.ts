import type { z } from 'zod'
import { ConfigError } from '../errors.js'
import { safeOptionName, unknownOptionMessage } from '../option-checks.js'

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
 *
 * Returns the parsed output; throws a {@link ConfigError} (`ERR_IDCTX_CONFIG`) whose `issues`
 * list every path and reason. For adapters and stores built on `@idctx/core`.
 *
 * @example
 * ```ts
 * const schema = z.strictObject({ keyPrefix: z.string().min(1).optional(), ttlMs: z.number().int().positive().optional() })
 * const o = parseOptions('my replay store options', schema, options) // throws ConfigError on a misspelt key
 * ```
 */
export function parseOptions<S extends z.ZodType>(what: string, schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input)
  if (!r.success) {
    const issues: { path: string; message: string }[] = []
    for (const i of r.error.issues) {
      const base = i.path.map((p) => safeOptionName(String(p)))
      if (i.code === 'unrecognized_keys') {
        const known = knownKeys(schema, i.path)
        for (const k of i.keys) issues.push({ path: [...base, safeOptionName(k)].join('.'), message: unknownOptionMessage(k, known) })
      } else {
        issues.push({ path: base.join('.'), message: i.message })
      }
    }
    throw new ConfigError(what, issues)
  }
  return r.data
}
