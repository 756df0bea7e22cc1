import type { HopStats } from '@idctx/example-shared'
import type { DemoReport } from './flow.js'
import { formatTraceTree } from './trace-tree.js'
import type { Outcome } from './walkthrough.js'

const HOP_ORDER = ['gateway', 'orders', 'billing', 'invoice-worker'] as const

function counts(c: Readonly<Record<string, number>>): string {
  return Object.entries(c)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
}

function walkthroughLines(outcomes: readonly Outcome[]): string[] {
  const width = Math.max(...outcomes.map((o) => o.case.length))
  return outcomes.map((o) => {
    const ok = o.got === o.expected
    return `  ${ok ? 'ok ' : 'BAD'}  ${o.case.padEnd(width)}  → ${o.got}${ok ? '' : ` (expected ${o.expected})`}`
  })
}

function hopLine(name: string, s: HopStats): string {
  const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0)
  return `  ${name.padEnd(16)}${String(s.accepted).padStart(8)}${String(rejected).padStart(10)}   ${counts(s.rejected)}`
}

/**
 * The demo's report as text: the core walkthrough, then per hop what was accepted and rejected
 * (by reason), the dead letters and failed jobs, the legitimate orders and the attacks, and one
 * request's trace as a tree.
 *
 * @example
 * ```ts
 * console.log(formatSummary(await runDemo(options)))
 * ```
 */
export function formatSummary(r: DemoReport): string {
  const out: string[] = []
  out.push('== 1. core walkthrough: one signer, one verifier, no broker')
  out.push(...walkthroughLines(r.walkthrough))

  const traffic = r.legit.filter((l) => l.placedBy === 'traffic')
  const tenants = [...new Set(traffic.map((l) => l.tenant))]
  out.push('')
  out.push('== 2. the example cluster: gateway → orders → Kafka → billing → BullMQ → invoice-worker')
  out.push(`  run ${r.names.runId}: topics ${r.names.ordersTopic}, ${r.names.priorityTopic}; queue ${r.names.queue}`)
  out.push(
    `  traffic: ${traffic.length} orders (${tenants.map((t) => `${t} ${traffic.filter((l) => l.tenant === t).length}`).join(', ')}; acme signs in with Keycloak, globex with Auth0)` +
      (r.legit.length > traffic.length ? ` + ${r.legit.length - traffic.length} the attacker placed as a real acme user` : ''),
  )
  out.push('')
  out.push(`  ${'hop'.padEnd(16)}${'accepted'.padStart(8)}${'rejected'.padStart(10)}   by reason`)
  for (const h of HOP_ORDER) out.push(hopLine(h, r.hops[h]))
  const o = r.ordersReplicas
  out.push(
    `  orders ran ${o.accepted.length} replicas sharing one key set (${o.sameJwks ? 'one JWKS' : 'DIFFERENT JWKS'}, kid ${o.kids.join(', ')}): ` +
      `${o.accepted.join(' + ')} requests; billing fetched the first replica's JWKS only`,
  )
  const dlq = Object.entries(r.deadLetters)
  out.push('')
  out.push(`  dead-letter records: ${dlq.length === 0 ? '0' : dlq.map(([t, n]) => `${t} ${n}`).join(' · ')}`)
  out.push(`  failed jobs: ${r.failedJobs} (BullMQ failed set, "idctx rejected: <reason>")`)
  out.push(`  invoices: ${counts(r.invoices) || 'none'} (each written inside a verified context of its own tenant)`)

  const accepted = r.legit.filter((l) => l.accepted).length
  out.push('')
  out.push(`  legitimate requests accepted end to end: ${accepted}/${r.legit.length}`)
  for (const l of r.legit.filter((x) => !x.accepted)) out.push(`  BAD  ${l.orderId ?? '?'} (${l.tenant}): ${l.detail}`)

  out.push('')
  out.push('  attacks:')
  const titleWidth = Math.max(0, ...r.attacks.map((a) => a.title.length))
  for (const a of r.attacks) {
    const ok = a.skipped !== undefined || a.got === a.expected
    const got = a.skipped !== undefined ? `skipped (${a.skipped})` : `${a.got ?? 'NOT REJECTED'}  [${a.evidence}]`
    out.push(`  ${ok ? 'ok ' : 'BAD'}  ${a.hop.padEnd(15)}${a.title.padEnd(titleWidth)}  → ${got}${ok ? '' : ` (expected ${a.expected})`}`)
  }

  out.push('')
  if (r.trace === undefined) out.push('  (no trace recorded)')
  else {
    out.push(`  one request's trace (tenant ${r.trace.tenant}, txn ${r.trace.txn ?? '?'}, trace ${r.trace.traceId}):`)
    out.push(...formatTraceTree(r.trace.nodes).map((l) => `    ${l}`))
  }

  out.push('')
  if (r.unexpected.length === 0) out.push(`all outcomes as expected (${(r.durationMs / 1000).toFixed(1)} s)`)
  else {
    out.push(`${r.unexpected.length} unexpected outcome(s):`)
    for (const u of r.unexpected) out.push(`  - ${u}`)
  }
  return out.join('\n')
}
