import { ConfigError } from '@idctx/core'
import type { z } from 'zod'

/**
 * Parses a store's options once; a ZodError becomes a ConfigError listing paths (unknown keys by
 * name), never values.
 */
export function parseStoreOptions<S extends z.ZodType>(what: string, schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input)
  if (r.success) return r.data
  const issues: { path: string; message: string }[] = []
  for (const i of r.error.issues) {
    const base = i.path.map((p) => String(p).slice(0, 64).replace(/[^\x21-\x7e]/g, '?'))
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) issues.push({ path: [...base, k.slice(0, 64).replace(/[^\x21-\x7e]/g, '?')].join('.'), message: 'unknown option' })
    } else issues.push({ path: base.join('.'), message: i.message })
  }
  throw new ConfigError(what, issues)
}
