import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatSummary, HOPS, runDemo, type DemoReport } from '@idctx/example-demo'

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const ORDERS = 12

/** Every attack of examples/attacker, the hop that must stop it and the exact reason. */
const ATTACKS: Record<string, { hop: string; reason: string }> = {
  'expired-user-jwt': { hop: 'gateway', reason: 'expired' },
  'unknown-idp': { hop: 'gateway', reason: 'unknown_kid' },
  'bypass-gateway': { hop: 'orders', reason: 'missing' },
  'forged-token': { hop: 'billing', reason: 'bad_signature' },
  'expired-token': { hop: 'billing', reason: 'expired' },
  'cross-tenant': { hop: 'billing', reason: 'tenant_mismatch' },
  'lifted-header': { hop: 'billing', reason: 'binding_mismatch' },
  'replay-same-topic': { hop: 'billing', reason: 'replayed' },
  'replay-other-topic': { hop: 'billing', reason: 'binding_mismatch' },
  'job-copied': { hop: 'invoice-worker', reason: 'replayed' },
  'job-tampered': { hop: 'invoice-worker', reason: 'binding_mismatch' },
}

let report: DemoReport

// One run of the demo's flow — the same function `npm run demo` calls — against the real broker
// and Redis; the tests below read what it saw.
beforeAll(async () => {
  report = await runDemo({ kafkaBrokers: BROKERS, redisUrl: REDIS_URL, orders: ORDERS })
}, 120_000)

afterAll(() => {
  if (report !== undefined && report.unexpected.length > 0) console.log(formatSummary(report))
})

describe('the demo flow against Kafka and Redis', () => {
  it('reports nothing unexpected', () => {
    expect(report.unexpected).toEqual([])
  })

  it('accepts every legitimate request end to end: an invoice for the right tenant, in the request’s transaction', () => {
    expect(report.legit).toHaveLength(ORDERS + 1) // + the attacker's own, legitimate bait order
    expect(report.legit.filter((l) => !l.accepted)).toEqual([])
    expect(report.legit.filter((l) => l.placedBy === 'attacker')).toHaveLength(1)
    const perTenant: Record<string, number> = {}
    for (const l of report.legit) perTenant[l.tenant] = (perTenant[l.tenant] ?? 0) + 1
    expect(perTenant).toEqual({ acme: ORDERS / 2 + 1, globex: ORDERS / 2 })
    expect(report.invoices).toEqual(perTenant)
  })

  it('rejects every attack at its hop with its exact reason', () => {
    const got = Object.fromEntries(report.attacks.map((a) => [a.id, { hop: a.hop, reason: a.got }]))
    expect(got).toEqual(ATTACKS)
    expect(report.attacks.filter((a) => a.skipped !== undefined)).toEqual([])
  })

  it('counts, at every hop, each legitimate request as accepted and each attack on it as rejected by reason', () => {
    const accepted = ORDERS + 1
    expect(Object.fromEntries(HOPS.map((h) => [h, report.hops[h].accepted]))).toEqual({
      gateway: accepted,
      orders: accepted,
      billing: accepted,
      'invoice-worker': accepted,
    })
    expect(report.hops.gateway.rejected).toEqual({ expired: 1, unknown_kid: 1 })
    expect(report.hops.orders.rejected).toEqual({ missing: 1 })
    expect(report.hops.billing.rejected).toEqual({ bad_signature: 1, expired: 1, tenant_mismatch: 1, binding_mismatch: 2, replayed: 1 })
    expect(report.hops['invoice-worker'].rejected).toEqual({ binding_mismatch: 1, replayed: 1 })
  })

  it('dead-letters every rejected record and fails every rejected job', () => {
    expect(report.deadLetters).toEqual({
      [`${report.names.ordersTopic}.idctx-dlq`]: 5,
      [`${report.names.priorityTopic}.idctx-dlq`]: 1,
    })
    expect(report.failedJobs).toBe(2)
    const evidence = Object.fromEntries(report.attacks.map((a) => [a.id, a.evidence]))
    expect(evidence['replay-other-topic']).toBe(`dead letter on ${report.names.priorityTopic}.idctx-dlq`)
    expect(evidence['job-tampered']).toMatch(/^failed job inv-/)
  })

  it('traces one request through all four hops, with the same tenant and transaction on every idctx span', () => {
    const trace = report.trace
    if (trace === undefined) throw new Error('the demo report has no trace')
    const nodes: { service: string; attributes: Readonly<Record<string, string>> }[] = []
    const walk = (n: NonNullable<typeof trace>['nodes'][number]) => {
      nodes.push(n)
      n.children.forEach(walk)
    }
    trace?.nodes.forEach(walk)
    expect(trace?.nodes).toHaveLength(1)
    expect(trace?.nodes[0]?.service).toBe('gateway')
    expect(new Set(nodes.map((n) => n.service))).toEqual(new Set(['gateway', 'orders', 'billing', 'invoice-worker']))
    const annotated = nodes.filter((n) => n.attributes.tenant !== undefined)
    expect(annotated.length).toBeGreaterThanOrEqual(4)
    expect(new Set(annotated.map((n) => n.attributes.tenant))).toEqual(new Set([trace?.tenant]))
    expect(new Set(annotated.map((n) => n.attributes.txn))).toEqual(new Set([`${trace?.txn?.slice(0, 8)}…`]))
    // the worker verified a job billing signed
    expect(nodes.some((n) => n.service === 'invoice-worker' && n.attributes.result === 'accepted' && n.attributes.producer === 'billing')).toBe(true)
  })

  it('prints a summary with every hop and the trace', () => {
    const text = formatSummary(report)
    for (const h of HOPS) expect(text).toContain(h)
    expect(text).toContain('all outcomes as expected')
    expect(text).toContain("one request's trace")
  })
})
