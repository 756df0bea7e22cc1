import { randomBytes } from 'node:crypto'
import { Queue } from 'bullmq'
import { createKafka, deadLetterTopicOf, redisConnection } from '@idctx/example-shared'
import { httpAttacks, placeBaitOrder } from './http-attacks.js'
import { failedJobReason, jobAttacks } from './job-attacks.js'
import { kafkaAttacks } from './kafka-attacks.js'
import { headerText, tailTopics, type TailRecord } from './tail.js'
import type { AttackOutcome, AttackTargets } from './targets.js'

export { asExpected } from './targets.js'
export type { AttackOutcome, AttackTargets, Hop } from './targets.js'
export { jobRejectReason } from './job-attacks.js'

/** Options of {@link runAttacks}. */
export interface AttackOptions {
  /** Suffix of the attack record keys and job ids, unique per run (default: random). */
  readonly runId?: string
  /** How long to wait for every rejection to show (default 60 s). */
  readonly timeoutMs?: number
  /** Called as outcomes come in. */
  readonly onProgress?: (seen: number, total: number) => void
}

/** What {@link runAttacks} did. */
export interface AttackReport {
  readonly outcomes: readonly AttackOutcome[]
  /** The attacker's own, legitimate order (placed as a real acme user): it must be invoiced once, unchanged. */
  readonly bait: { readonly orderId: string; readonly amount: number }
}

async function until<T>(what: string, deadline: number, probe: () => T | undefined): Promise<T> {
  for (;;) {
    const v = probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Runs every attack on a running cluster and waits until each one's rejection shows where it
 * must: the HTTP answer (gateway, orders), a dead-letter record with `idctx-reject-reason`
 * (billing), a failed job with `idctx rejected: <reason>` (invoice worker).
 *
 * @example
 * ```ts
 * const { outcomes } = await runAttacks({ kafkaBrokers, redisUrl, audience: 'shop', idpUrl, gatewayUrl, ordersUrl,
 *   topics: { orders: 'orders', priority: 'orders-priority' }, queue: 'invoices' })
 * for (const o of outcomes) console.log(o.title, o.expected, o.got)
 * ```
 */
export async function runAttacks(t: AttackTargets, options: AttackOptions = {}): Promise<AttackReport> {
  const run = options.runId ?? randomBytes(4).toString('hex')
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  const kafka = createKafka('attacker', t.kafkaBrokers, 'nothing')
  const dlqs = [deadLetterTopicOf(t.topics.orders), deadLetterTopicOf(t.topics.priority)]
  // Opened before anything is sent: the order topic (to read the bait back) and the dead letters.
  const tail = await tailTopics(kafka, [t.topics.orders, ...dlqs], `attacker-${run}`)
  const queue = new Queue(t.queue, { connection: redisConnection(t.redisUrl), prefix: t.bullPrefix ?? 'bull' })
  try {
    const answered = await httpAttacks(t)
    const bait = await placeBaitOrder(t)
    const baitRecord = await until('the bait record', deadline, () =>
      tail.records.find((r) => r.topic === t.topics.orders && r.key === bait.orderId),
    )
    const onKafka = await kafkaAttacks(t, kafka, baitRecord, run)
    const onJobs = await jobAttacks(t, bait.orderId, run, deadline)

    const total = answered.length + onKafka.length + onJobs.length
    const deadLetterReason = (topic: string, key: string) => {
      const r: TailRecord | undefined = tail.records.find((x) => x.topic === topic && x.key === key)
      return r === undefined ? undefined : headerText(r.headers, 'idctx-reject-reason')
    }
    for (;;) {
      const fromKafka = onKafka.map(
        (a): AttackOutcome => ({
          id: a.id,
          title: a.title,
          hop: a.hop,
          expected: a.expected,
          got: a.skipped === undefined ? deadLetterReason(a.dlqTopic, a.key) : undefined,
          evidence: `dead letter on ${a.dlqTopic}`,
          ...(a.skipped !== undefined ? { skipped: a.skipped } : {}),
        }),
      )
      const fromJobs: AttackOutcome[] = []
      for (const a of onJobs) {
        fromJobs.push({ id: a.id, title: a.title, hop: a.hop, expected: a.expected, got: await failedJobReason(queue, a.jobId), evidence: `failed job ${a.jobId}` })
      }
      const outcomes = [...answered, ...fromKafka, ...fromJobs]
      const seen = outcomes.filter((o) => o.got !== undefined || o.skipped !== undefined).length
      options.onProgress?.(seen, total)
      if (seen === total || Date.now() > deadline) return { outcomes, bait }
      await new Promise((r) => setTimeout(r, 100))
    }
  } finally {
    await tail.close()
    await queue.close()
  }
}
