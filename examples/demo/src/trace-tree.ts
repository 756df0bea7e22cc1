import type { ReadableSpan } from '@idctx/example-shared'

/** One span of a trace, as the demo prints it. */
export interface TraceNode {
  readonly name: string
  /** The service that recorded it: the tracer's instrumentation scope (every service names its tracer). */
  readonly service: string
  readonly durationMs: number
  readonly error: boolean
  /** The idctx attributes worth reading, short names (`tenant`, `producer`, `dst`, `result`, …). */
  readonly attributes: Readonly<Record<string, string>>
  /** Names of the idctx events on the span (`idctx.signed`, `idctx.rejected`). */
  readonly events: readonly string[]
  readonly children: readonly TraceNode[]
}

const SHOWN: readonly (readonly [string, string, (v: string) => string])[] = [
  ['idctx.result', 'result', (v) => v],
  ['idctx.reason', 'reason', (v) => v],
  ['idctx.tenant', 'tenant', (v) => v],
  ['idctx.producer', 'producer', (v) => v],
  ['idctx.destination', 'dst', (v) => v],
  ['idctx.txn', 'txn', (v) => `${v.slice(0, 8)}…`],
  ['idctx.user', 'user#', (v) => `${v.slice(0, 8)}…`],
  ['idctx.cache.hit', 'cached', (v) => v],
  ['http.response.status_code', 'http', (v) => v],
]

const ms = (t: readonly [number, number]) => t[0] * 1000 + t[1] / 1e6

/**
 * The spans of one trace as a tree: parents before children, siblings by start time. A span whose
 * parent is not among them (a remote parent, or one not exported) is a root.
 *
 * @example
 * ```ts
 * formatTraceTree(traceTree(telemetry.spans(), traceId)).forEach((line) => console.log(line))
 * ```
 */
export function traceTree(spans: readonly ReadableSpan[], traceId: string): TraceNode[] {
  const mine = spans.filter((s) => s.spanContext().traceId === traceId)
  const ids = new Set(mine.map((s) => s.spanContext().spanId))
  const byParent = new Map<string | undefined, ReadableSpan[]>()
  for (const s of mine) {
    const parent = s.parentSpanContext?.spanId
    const key = parent !== undefined && ids.has(parent) ? parent : undefined
    byParent.set(key, [...(byParent.get(key) ?? []), s])
  }
  const build = (s: ReadableSpan): TraceNode => {
    const attributes: Record<string, string> = {}
    for (const [key, label, show] of SHOWN) {
      const v = s.attributes[key]
      if (v !== undefined) attributes[label] = show(String(v))
    }
    return {
      name: s.name,
      service: s.instrumentationScope.name,
      durationMs: ms(s.duration),
      error: s.status.code === 2,
      attributes,
      events: s.events.map((e) => e.name).filter((n) => n.startsWith('idctx.')),
      children: (byParent.get(s.spanContext().spanId) ?? []).sort((a, b) => ms(a.startTime) - ms(b.startTime)).map(build),
    }
  }
  return (byParent.get(undefined) ?? []).sort((a, b) => ms(a.startTime) - ms(b.startTime)).map(build)
}

/** The services that recorded at least one span of the tree. */
export function servicesOf(nodes: readonly TraceNode[]): Set<string> {
  const out = new Set<string>()
  const walk = (n: TraceNode) => {
    out.add(n.service)
    n.children.forEach(walk)
  }
  nodes.forEach(walk)
  return out
}

/** The tree as indented lines: `name [service] 3.1 ms  key=value …` and the idctx events. */
export function formatTraceTree(nodes: readonly TraceNode[]): string[] {
  const lines: string[] = []
  const walk = (n: TraceNode, prefix: string, branch: string) => {
    const inner = prefix + (branch === '' ? '' : branch === '└─ ' ? '   ' : '│  ')
    const detail = inner + (n.children.length > 0 ? '│  ' : '   ')
    lines.push(`${prefix}${branch}${n.name}  [${n.service}] ${n.durationMs.toFixed(1)} ms${n.error ? '  ERROR' : ''}`)
    const attrs = Object.entries(n.attributes).map(([k, v]) => `${k}=${v}`)
    if (attrs.length > 0) lines.push(`${detail}${attrs.join(' ')}`)
    if (n.events.length > 0) lines.push(`${detail}events: ${n.events.join(', ')}`)
    n.children.forEach((c, i) => walk(c, inner, i === n.children.length - 1 ? '└─ ' : '├─ '))
  }
  nodes.forEach((n) => walk(n, '', ''))
  return lines
}
