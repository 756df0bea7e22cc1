import { runWithContext } from '@idctx/core'
import { asExpected, runAttacks, type AttackOutcome, type Hop } from '@idctx/example-attacker'
import type { Invoice } from '@idctx/example-invoice-worker/store'
import { combinedStats, invoiceJobId, rejectedTotal, startTelemetry, type HopStats } from '@idctx/example-shared'
import { startCluster, type Cluster, type ClusterNames } from './cluster.js'
import { driveTraffic, type PlacedOrder } from './traffic.js'
import { servicesOf, traceTree, type TraceNode } from './trace-tree.js'
import { coreWalkthrough, type Outcome } from './walkthrough.js'

export { startCluster, driveTraffic, traceTree }
export { CUSTOMERS } from './traffic.js'
export { formatTraceTree } from './trace-tree.js'
export { formatSummary } from './summary.js'
export type { Cluster, ClusterNames, PlacedOrder, TraceNode, Outcome }

/** The hops of the cluster, in the order a request crosses them. */
export const HOPS: readonly Hop[] = ['gateway', 'orders', 'billing', 'invoice-worker']

/** Options of {@link runDemo}. */
export interface DemoOptions {
  readonly kafkaBrokers: readonly string[]
  readonly redisUrl: string
  /** Legitimate orders to place (default 20, split between the two tenants). */
  readonly orders?: number
  /** Give up waiting for outcomes after this long (default 90 s). */
  readonly timeoutMs?: number
  /** Also export the spans over OTLP/HTTP (e.g. to Jaeger). */
  readonly otlpEndpoint?: string | undefined
  /** A one-line status, updated as the demo runs. */
  readonly onProgress?: (text: string) => void
}

/** A legitimate order and whether it made it through every hop. */
export interface LegitOutcome {
  readonly orderId: string | undefined
  readonly tenant: string
  readonly placedBy: 'traffic' | 'attacker'
  /** 202 at the gateway, and an invoice in its tenant's store with the order's amount, user and transaction. */
  readonly accepted: boolean
  readonly detail: string
}

/** The trace of one legitimate request. */
export interface DemoTrace {
  readonly traceId: string
  readonly tenant: string
  readonly txn: string | undefined
  readonly nodes: readonly TraceNode[]
}

/** Everything the demo saw. */
export interface DemoReport {
  readonly walkthrough: readonly Outcome[]
  readonly names: ClusterNames
  readonly hops: Readonly<Record<Hop, HopStats>>
  /** Records per dead-letter topic, as billing's consumer reported writing them. */
  readonly deadLetters: Readonly<Record<string, number>>
  /** Jobs the invoice worker's processor failed (rejected). */
  readonly failedJobs: number
  readonly legit: readonly LegitOutcome[]
  /** Invoices per tenant in the worker's store. */
  readonly invoices: Readonly<Record<string, number>>
  readonly attacks: readonly AttackOutcome[]
  readonly trace: DemoTrace | undefined
  /**
   * The orders replicas: requests each accepted, and whether they published the same JWKS (one
   * shared key set) — billing fetched only the first one's.
   */
  readonly ordersReplicas: { readonly accepted: readonly number[]; readonly sameJwks: boolean; readonly kids: readonly string[] }
  /** Everything that did not happen as it should; empty on success. */
  readonly unexpected: readonly string[]
  readonly durationMs: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitUntil(deadline: number, done: () => boolean): Promise<boolean> {
  while (!done()) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}

/** Reads an invoice the way an auditor of that tenant would: inside a context of that tenant. */
function invoiceOf(cluster: Cluster, tenant: string, orderId: string): Invoice | undefined {
  const audit = { sub: 'svc-demo-audit', tid: tenant, txn: `audit-${cluster.names.runId}`, pty: 'system' as const }
  return runWithContext(audit, () => cluster.worker.store.get(tenant, invoiceJobId(orderId)))
}

function checkLegit(cluster: Cluster, o: PlacedOrder): LegitOutcome {
  const base = { orderId: o.orderId, tenant: o.tenant, placedBy: 'traffic' as const }
  if (o.status !== 202 || o.orderId === undefined) return { ...base, accepted: false, detail: `gateway answered HTTP ${o.status}` }
  const invoice = invoiceOf(cluster, o.tenant, o.orderId)
  if (invoice === undefined) return { ...base, accepted: false, detail: 'no invoice' }
  if (invoice.amount !== o.amount || invoice.user !== o.user || invoice.txn !== o.txn || invoice.tenant !== o.tenant) {
    return { ...base, accepted: false, detail: 'the invoice does not match the order' }
  }
  return { ...base, accepted: true, detail: `invoiced in txn ${o.txn?.slice(0, 8) ?? '?'}…` }
}

function copyStats(s: HopStats): HopStats {
  return { accepted: s.accepted, rejected: { ...s.rejected }, dispositions: { ...s.dispositions } }
}

function sameCounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  return [...keys].every((k) => (a[k] ?? 0) === (b[k] ?? 0))
}

const fmt = (counts: Readonly<Record<string, number>>) =>
  Object.keys(counts).length === 0 ? 'none' : Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ')

/**
 * The whole demo: the core walkthrough, then every example service in this process, legitimate
 * orders of two tenants, the attacker, and the checks — every legitimate order invoiced for its
 * tenant in its transaction, every attack rejected at its hop with its exact reason, the hop
 * counters agreeing, one request traced through all four hops. Stops everything it started.
 *
 * @example
 * ```ts
 * const report = await runDemo({ kafkaBrokers: ['127.0.0.1:39092'], redisUrl: 'redis://127.0.0.1:6379' })
 * console.log(formatSummary(report))
 * process.exitCode = report.unexpected.length === 0 ? 0 : 1
 * ```
 */
export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const started = Date.now()
  const deadline = started + (options.timeoutMs ?? 90_000)
  const progress = options.onProgress ?? (() => {})
  const count = options.orders ?? 20
  const unexpected: string[] = []

  progress('core walkthrough')
  const walkthrough = await coreWalkthrough()
  for (const o of walkthrough) if (o.got !== o.expected) unexpected.push(`core: ${o.case}: ${o.got} (expected ${o.expected})`)

  const telemetry = startTelemetry({ serviceName: 'idctx-demo', inMemory: true, otlpEndpoint: options.otlpEndpoint })
  try {
    progress('starting services')
    const cluster = await startCluster({ kafkaBrokers: options.kafkaBrokers, redisUrl: options.redisUrl })
    try {
      progress(`traffic: 0/${count} orders placed`)
      const placed = await driveTraffic(cluster, count, (n) => progress(`traffic: ${n}/${count} orders placed`))
      const invoiced = () => placed.filter((o) => o.orderId !== undefined && invoiceOf(cluster, o.tenant, o.orderId) !== undefined).length
      await waitUntil(deadline, () => {
        progress(`invoices: ${invoiced()}/${count} written`)
        return invoiced() === count
      })

      progress('attacks: launching')
      let attacks: AttackOutcome[] = []
      let bait: { orderId: string; amount: number } | undefined
      try {
        const report = await runAttacks(cluster.attackTargets(), {
          runId: cluster.names.runId,
          timeoutMs: Math.max(1000, deadline - Date.now()),
          onProgress: (seen, total) => progress(`attacks: ${seen}/${total} rejections seen`),
        })
        attacks = [...report.outcomes]
        bait = report.bait
      } catch (e) {
        unexpected.push(`the attacker failed: ${e instanceof Error ? e.message : String(e)}`)
      }
      for (const a of attacks) {
        if (!asExpected(a)) unexpected.push(`attack "${a.title}" at ${a.hop}: ${a.got ?? 'not rejected'} (expected ${a.expected})`)
      }

      const legit = placed.map((o) => checkLegit(cluster, o))
      if (bait !== undefined) {
        const invoice = invoiceOf(cluster, 'acme', bait.orderId)
        const ok = invoice !== undefined && invoice.amount === bait.amount && invoice.user === 'u-mallory'
        legit.push({
          orderId: bait.orderId,
          tenant: 'acme',
          placedBy: 'attacker',
          accepted: ok,
          detail: ok ? 'invoiced once, amount unchanged' : 'missing or altered invoice',
        })
      }
      for (const l of legit) if (!l.accepted) unexpected.push(`legitimate order ${l.orderId ?? '?'} (${l.tenant}): ${l.detail}`)

      // Each hop must have accepted every legitimate request and rejected exactly the attacks aimed at it.
      const expectedRejections = Object.fromEntries(HOPS.map((h) => [h, {} as Record<string, number>])) as Record<Hop, Record<string, number>>
      for (const a of attacks) if (a.skipped === undefined) expectedRejections[a.hop][a.expected] = (expectedRejections[a.hop][a.expected] ?? 0) + 1
      const stats: Record<Hop, HopStats> = {
        gateway: cluster.gateway.stats,
        orders: combinedStats(cluster.orders.map((o) => o.stats)),
        billing: cluster.billing.stats,
        'invoice-worker': cluster.worker.stats,
      }
      const total = (h: Hop) => Object.values(expectedRejections[h]).reduce((a, b) => a + b, 0)
      await waitUntil(deadline, () => HOPS.every((h) => rejectedTotal(stats[h]) >= total(h) && stats[h].accepted >= legit.length))
      const hops = Object.fromEntries(HOPS.map((h) => [h, copyStats(stats[h])])) as Record<Hop, HopStats>
      for (const h of HOPS) {
        if (hops[h].accepted !== legit.length) unexpected.push(`${h} accepted ${hops[h].accepted} (expected ${legit.length})`)
        if (!sameCounts(hops[h].rejected, expectedRejections[h])) {
          unexpected.push(`${h} rejected ${fmt(hops[h].rejected)} (expected ${fmt(expectedRejections[h])})`)
        }
      }
      const invoices = { ...cluster.worker.store.counts() }
      const perTenant: Record<string, number> = {}
      for (const l of legit) perTenant[l.tenant] = (perTenant[l.tenant] ?? 0) + 1
      if (!sameCounts(invoices, perTenant)) unexpected.push(`invoices per tenant ${fmt(invoices)} (expected ${fmt(perTenant)})`)

      const trace = await oneTrace(placed, () => telemetry.spans(), Math.min(deadline, Date.now() + 5000))
      if (trace === undefined) unexpected.push('no trace of a legitimate request was recorded')
      else {
        const services = servicesOf(trace.nodes)
        const missing = HOPS.filter((h) => !services.has(h))
        if (missing.length > 0) unexpected.push(`the trace has no span of ${missing.join(', ')}`)
      }

      // Replicas of orders share one key set: one JWKS, and billing (which fetched only the first
      // replica's) accepted the records of every replica.
      const jwks = await Promise.all(cluster.orders.map(async (o) => (await fetch(new URL('/.well-known/idctx-jwks.json', o.url))).text()))
      const ordersReplicas = {
        accepted: cluster.orders.map((o) => o.stats.accepted),
        sameJwks: new Set(jwks).size === 1,
        kids: (JSON.parse(jwks[0] ?? '{"keys":[]}') as { keys: { kid: string }[] }).keys.map((k) => k.kid),
      }
      if (!ordersReplicas.sameJwks) unexpected.push('the orders replicas publish different JWKS')
      ordersReplicas.accepted.forEach((n, i) => {
        if (n === 0) unexpected.push(`orders replica ${i + 1} accepted no request`)
      })

      progress('stopping services')
      return {
        walkthrough,
        names: cluster.names,
        hops,
        deadLetters: { ...hops.billing.dispositions },
        failedJobs: hops['invoice-worker'].dispositions.failed ?? 0,
        legit,
        invoices,
        attacks,
        trace,
        ordersReplicas,
        unexpected,
        durationMs: Date.now() - started,
      }
    } finally {
      await cluster.close()
    }
  } finally {
    await telemetry.shutdown()
  }
}

/** The trace of the first legitimate acme order, once the worker's span of it has ended. */
async function oneTrace(placed: readonly PlacedOrder[], spans: () => Parameters<typeof traceTree>[0], deadline: number): Promise<DemoTrace | undefined> {
  const order = placed.find((o) => o.status === 202 && o.traceId !== undefined && o.tenant === 'acme')
  if (order?.traceId === undefined) return undefined
  const traceId = order.traceId
  await waitUntil(deadline, () => servicesOf(traceTree(spans(), traceId)).has('invoice-worker'))
  return { traceId, tenant: order.tenant, txn: order.txn, nodes: traceTree(spans(), traceId) }
}
