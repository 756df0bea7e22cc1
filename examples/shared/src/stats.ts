import type { DispositionEvent, IdctxObserver } from '@idctx/core'

/** What one hop of the cluster accepted and rejected, as its service counted it. */
export interface HopStats {
  readonly accepted: number
  /** Rejections by reason code (idctx reason codes; the gateway's own for user tokens). */
  readonly rejected: Readonly<Record<string, number>>
  /** Rejected messages by where the rejection policy put them (a dead-letter topic, `failed`). */
  readonly dispositions: Readonly<Record<string, number>>
}

/** A live counter behind a service's `stats`. */
export interface HopCounter {
  readonly stats: HopStats
  accept(): void
  reject(reason: string): void
  /** Counts adapter dispositions: the rejection by reason, and where it went. */
  readonly observer: IdctxObserver
}

/**
 * Creates a hop counter. Kafka and BullMQ hops count rejections from `onDisposition`, which the
 * adapters emit once the rejected message was dealt with (dead-lettered, failed).
 *
 * @example
 * ```ts
 * const counter = createHopCounter()
 * wrapConsumer(consumer, { ..., observer: combineObservers(otel, counter.observer) })
 * ```
 */
export function createHopCounter(): HopCounter {
  let accepted = 0
  const rejected: Record<string, number> = {}
  const dispositions: Record<string, number> = {}
  const reject = (reason: string) => {
    rejected[reason] = (rejected[reason] ?? 0) + 1
  }
  return {
    stats: {
      get accepted() {
        return accepted
      },
      rejected,
      dispositions,
    },
    accept: () => {
      accepted++
    },
    reject,
    observer: {
      onDisposition(e: DispositionEvent) {
        reject(e.reason)
        const target = e.target ?? e.policy
        dispositions[target] = (dispositions[target] ?? 0) + 1
      },
    },
  }
}

/** Sum of a hop's rejections. */
export function rejectedTotal(stats: HopStats): number {
  return Object.values(stats.rejected).reduce((a, b) => a + b, 0)
}

/**
 * One live view of several replicas' counters (e.g. every orders replica): accepted, rejections
 * and dispositions summed at each read.
 */
export function combinedStats(parts: readonly HopStats[]): HopStats {
  const sum = (pick: (s: HopStats) => Readonly<Record<string, number>>) => {
    const out: Record<string, number> = {}
    for (const p of parts) for (const [k, v] of Object.entries(pick(p))) out[k] = (out[k] ?? 0) + v
    return out
  }
  return {
    get accepted() {
      return parts.reduce((n, p) => n + p.accepted, 0)
    },
    get rejected() {
      return sum((p) => p.rejected)
    },
    get dispositions() {
      return sum((p) => p.dispositions)
    },
  }
}
