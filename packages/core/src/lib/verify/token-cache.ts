import type { VerifiedNodes } from '../../merkle.js'
import type { Entry } from './checked.js'

/**
 * The verified-token cache: token string → the result of steps 2–6, bounded (oldest first past
 * `size`), plus the budget of batch-proof nodes remembered across all cached tokens (each holds a
 * hash and a proof suffix), so that many large cached batches cannot grow memory without limit.
 */
export interface TokenCache {
  get(token: string): Entry | undefined
  add(token: string, entry: Entry): void
  evict(token: string, entry: Entry): void
  clear(): void
  /**
   * The token's node map while the budget lasts; past it, records are verified in full. A spent
   * budget first releases the nodes of cached tokens that expired (at most once a second), so
   * the shortcut comes back once their records are done.
   */
  nodesOf(entry: Entry, nowSeconds: number): VerifiedNodes | undefined
  /** Counts nodes a walk added to a token's map. */
  addedNodes(count: number): void
}

/**
 * @param slackSeconds how long after `exp` a token may still verify (clock tolerance plus the
 *   largest retry grace): past it a cached entry can only ever give `expired`, and may go.
 */
export function createTokenCache(size: number, nodeBudget: number, slackSeconds: number): TokenCache {
  const cache = new Map<string, Entry>()
  let provenNodes = 0
  let sweptAt = Number.NEGATIVE_INFINITY
  const evict = (token: string, entry: Entry) => {
    cache.delete(token)
    provenNodes -= entry.nodes.size
  }
  return {
    get: (token) => cache.get(token),
    add(token, entry) {
      if (size === 0) return
      if (cache.size >= size) {
        const oldest = cache.entries().next()
        if (oldest.done !== true) evict(oldest.value[0], oldest.value[1])
      }
      cache.set(token, entry)
    },
    evict,
    clear() {
      cache.clear()
      provenNodes = 0
    },
    nodesOf(entry, nowSeconds) {
      if (provenNodes >= nodeBudget && nowSeconds - sweptAt >= 1) {
        sweptAt = nowSeconds
        for (const [token, e] of cache) if (e.claims.exp + slackSeconds < nowSeconds) evict(token, e)
      }
      return provenNodes < nodeBudget ? entry.nodes : undefined
    },
    addedNodes(count) {
      provenNodes += count
    },
  }
}
