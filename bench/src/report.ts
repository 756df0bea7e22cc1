/**
 * The comparison the docs show: for each case the performance work aimed at, the ratio before it
 * (docs/benchmarks.md as of 2026-11-30, Node 20), the ratio of the latest run on each Node
 * version (docs/bench/ratios-node<major>.json, written by `pnpm bench --write-docs`), and the
 * target — as a Markdown table and as an SVG chart (docs/bench/ratios.svg).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import type { Ratios } from './harness.js'

interface Case {
  key: string
  label: string
  before: number
  target: number
}

/** The targets of the performance work and where each case stood before it. */
export const CASES: readonly Case[] = [
  { key: 'kafka.consume.100.one-user.vs-headers', label: 'consume, 100 per send, vs plain + same-size headers', before: 0.34, target: 0.6 },
  { key: 'kafka.consume.1.users.vs-headers', label: 'consume, 1 per send, 16 users in flight, vs plain + headers', before: 0.03, target: 0.3 },
  { key: 'bullmq.worker.single.users.vs-plain', label: 'BullMQ worker, single adds from 50 users, vs plain', before: 0.18, target: 0.5 },
  { key: 'bullmq.worker.bulk.vs-plain', label: 'BullMQ worker, addBulk, vs plain', before: 0.54, target: 0.8 },
  { key: 'bullmq.add.single.users.vs-plain', label: 'Queue.add, 50 in flight from 50 users, vs plain', before: 0.3, target: 0.7 },
  { key: 'crypto.verify.EdDSA', label: 'verify uncached, EdDSA, vs raw node:crypto', before: 0.86, target: 0.85 },
  { key: 'crypto.verify.ES256', label: 'verify uncached, ES256, vs raw node:crypto', before: 0.82, target: 0.85 },
  { key: 'crypto.verify.RS256', label: 'verify uncached, RS256, vs raw node:crypto', before: 0.68, target: 0.8 },
  { key: 'crypto.verify.HS256', label: 'verify uncached, HS256, vs raw node:crypto', before: 0.37, target: 0.5 },
]

const dir = (docs: URL) => new URL('bench/', docs)

/** Saves a run's ratios, merged over the previous ones of that Node version (a partial run keeps the rest). */
export function saveRatios(docs: URL, ratios: Ratios, nodeVersion: string): void {
  const d = dir(docs)
  mkdirSync(d, { recursive: true })
  const file = new URL(`ratios-node${nodeVersion.replace(/^v/, '').split('.')[0]}.json`, d)
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { node: string; ratios: Ratios }).ratios : {}
  writeFileSync(file, `${JSON.stringify({ node: nodeVersion, date: new Date().toISOString().slice(0, 10), ratios: { ...previous, ...ratios } }, null, 2)}\n`)
}

/** Every saved run: Node version → ratios, by major version ascending. */
export function loadRuns(docs: URL): { node: string; ratios: Ratios }[] {
  const d = dir(docs)
  if (!existsSync(d)) return []
  return readdirSync(d)
    .filter((f) => /^ratios-node\d+\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(new URL(f, d), 'utf8')) as { node: string; ratios: Ratios })
    .sort((a, b) => Number(a.node.slice(1).split('.')[0]) - Number(b.node.slice(1).split('.')[0]))
}

const pc = (r: number | undefined) => (r === undefined ? '–' : `${Math.round(r * 100)}%`)

export function comparisonTable(runs: readonly { node: string; ratios: Ratios }[]): string {
  const head = ['case', 'before (Node 20)', ...runs.map((r) => `now, Node ${r.node.slice(1)}`), 'target']
  const rows = CASES.map((c) => [c.label, pc(c.before), ...runs.map((r) => pc(r.ratios[c.key])), `≥ ${pc(c.target)}`])
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A horizontal bar chart: per case, before and each Node version's ratio, with the target marked. */
export function comparisonSvg(runs: readonly { node: string; ratios: Ratios }[]): string {
  const colors = ['#9e9e9e', '#1f77b4', '#2ca02c', '#ff7f0e']
  const series = [{ name: 'before (Node 20)', get: (c: Case) => c.before }, ...runs.map((r) => ({ name: `now, Node ${r.node.slice(1)}`, get: (c: Case) => r.ratios[c.key] }))]
  const labelW = 420
  const barW = 380
  const barH = 10
  const rowH = series.length * (barH + 2) + 18
  const top = 40
  const height = top + CASES.length * rowH + 20
  const x = (r: number) => labelW + Math.min(r, 1.25) * (barW / 1.25)
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 60}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ]
  series.forEach((s, i) => {
    out.push(`<rect x="${labelW + i * 150}" y="8" width="10" height="10" fill="${colors[i % colors.length]}"/><text x="${labelW + i * 150 + 14}" y="17">${esc(s.name)}</text>`)
  })
  out.push(`<line x1="${x(0)}" y1="${top - 6}" x2="${x(0)}" y2="${height - 20}" stroke="#333"/>`)
  for (const t of [0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${height - 20}" stroke="#ddd"/><text x="${x(t) - 10}" y="${height - 6}">${t * 100}%</text>`)
  }
  CASES.forEach((c, row) => {
    const y0 = top + row * rowH
    out.push(`<text x="4" y="${y0 + rowH / 2}">${esc(c.label)}</text>`)
    series.forEach((s, i) => {
      const v = s.get(c)
      const y = y0 + i * (barH + 2)
      if (v === undefined) return
      out.push(`<rect x="${x(0)}" y="${y}" width="${x(v) - x(0)}" height="${barH}" fill="${colors[i % colors.length]}"/><text x="${x(v) + 3}" y="${y + barH - 1}" font-size="9">${pc(v)}</text>`)
    })
    out.push(`<line x1="${x(c.target)}" y1="${y0 - 2}" x2="${x(c.target)}" y2="${y0 + series.length * (barH + 2)}" stroke="#d62728" stroke-width="2"><title>target ${pc(c.target)}</title></line>`)
  })
  out.push(`<text x="4" y="${height - 6}" fill="#d62728">red mark: target</text>`, '</svg>')
  return `${out.join('\n')}\n`
}

/** Writes docs/bench/ratios.svg and returns the comparison table, from every saved run. */
export function writeComparison(docs: URL): string {
  const runs = loadRuns(docs)
  writeFileSync(new URL('ratios.svg', dir(docs)), comparisonSvg(runs))
  return comparisonTable(runs)
}
