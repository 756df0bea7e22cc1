import { ConfigError, defaultContextStore, unknownOptions, type ContextStore } from '@idctx/core'

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
