import { coreWalkthrough, type Outcome } from './walkthrough.js'

function printSummary(outcomes: readonly Outcome[]): number {
  const width = Math.max(...outcomes.map((o) => o.case.length))
  let unexpected = 0
  let hop = ''
  for (const o of outcomes) {
    if (o.hop !== hop) {
      hop = o.hop
      console.log(`\n== ${hop}`)
    }
    const ok = o.got === o.expected
    if (!ok) unexpected++
    console.log(`  ${ok ? 'ok ' : 'BAD'}  ${o.case.padEnd(width)}  → ${o.got}${ok ? '' : ` (expected ${o.expected})`}`)
  }
  const byHop = new Map<string, { accepted: number; rejected: Map<string, number> }>()
  for (const o of outcomes) {
    const h = byHop.get(o.hop) ?? { accepted: 0, rejected: new Map() }
    if (o.got === 'accepted') h.accepted++
    else h.rejected.set(o.got, (h.rejected.get(o.got) ?? 0) + 1)
    byHop.set(o.hop, h)
  }
  console.log('\nsummary')
  for (const [name, h] of byHop) {
    const rej = [...h.rejected].map(([r, n]) => `${r}=${n}`).join(' ')
    console.log(`  ${name}: accepted ${h.accepted}, rejected ${[...h.rejected.values()].reduce((a, b) => a + b, 0)}${rej ? ` (${rej})` : ''}`)
  }
  console.log(unexpected === 0 ? '\nall outcomes as expected' : `\n${unexpected} unexpected outcome(s)`)
  return unexpected
}

async function main(): Promise<number> {
  process.stderr.write('[demo] core walkthrough\n')
  const outcomes = await coreWalkthrough()
  return printSummary(outcomes)
}

main().then(
  (unexpected) => process.exit(unexpected === 0 ? 0 : 1),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
