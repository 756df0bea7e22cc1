import type { IdctxKey, KeySet } from '@idctx/core'

/** A hop of the example cluster. */
export type Hop = 'gateway' | 'orders' | 'billing' | 'invoice-worker'

/**
 * What the attacker can reach: the public HTTP endpoints, Kafka (read and write, as a compromised
 * host in the cluster could) and Redis (read and write).
 */
export interface AttackTargets {
  readonly kafkaBrokers: readonly string[]
  readonly redisUrl: string
  /** The idctx audience (trust domain) of the cluster. */
  readonly audience: string
  readonly idpUrl: string
  readonly gatewayUrl: string
  readonly ordersUrl: string
  /** The topics billing consumes. */
  readonly topics: { readonly orders: string; readonly priority: string }
  /** The invoice queue and its BullMQ key prefix (default `bull`). */
  readonly queue: string
  readonly bullPrefix?: string
  /**
   * The orders service's signing keys. Only for the two attacks that stand for a compromised or
   * buggy producer, and for time: a cross-tenant record, and a record that waited past its
   * token's lifetime. Without it those two are skipped (an outside attacker cannot sign as orders).
   */
  readonly insider?: { readonly ordersKey: IdctxKey | KeySet }
}

/** One attack and what became of it. */
export interface AttackOutcome {
  readonly id: string
  readonly title: string
  /** The hop that must reject it. */
  readonly hop: Hop
  /** The reason code it must be rejected with. */
  readonly expected: string
  /** The reason it was rejected with; undefined when no rejection was seen before the timeout. */
  readonly got: string | undefined
  /** Where the rejection was seen: `HTTP 401`, a dead-letter topic, a failed job. */
  readonly evidence: string
  /** Set when the attack was not run (it needs the insider keys). */
  readonly skipped?: string
}

/** True when the attack was run and rejected with exactly the expected reason. */
export function asExpected(o: AttackOutcome): boolean {
  return o.skipped !== undefined || o.got === o.expected
}
