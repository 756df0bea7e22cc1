import type { z } from 'zod'
import { ConfigError } from '../errors.js'

/** Parses options once at construction; a ZodError becomes a ConfigError with paths, no values. */
export function parseOptions<S extends z.ZodType>(what: string, schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input)
  if (!r.success) {
    throw new ConfigError(
      what,
      r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    )
  }
  return r.data
}
