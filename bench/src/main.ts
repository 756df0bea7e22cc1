import { readFileSync, writeFileSync } from 'node:fs'
import { arch, cpus, platform } from 'node:os'
import { runBatchBench, runCryptoBench } from './crypto.js'
import type { Ratios } from './harness.js'
import { saveRatios, writeComparison } from './report.js'

type Section = { title: string; body: string }

const args = process.argv.slice(2)
const writeDocs = args.includes('--write-docs')
const only = args.filter((a) => !a.startsWith('--'))
const wanted = (name: string) => only.length === 0 || only.includes(name)
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

async function main(): Promise<void> {
  const sections: Section[] = []
  const ratios: Ratios = {}
  if (wanted('crypto')) {
    const c = await runCryptoBench(log)
    for (const r of c.ratios) {
      ratios[`crypto.verify.${r.alg}`] = r.verify
      ratios[`crypto.sign.${r.alg}`] = r.sign
    }
    sections.push({ title: 'Sign and verify, one token per message', body: c.markdown })
    sections.push({ title: 'One token over a batch of 1000 records (EdDSA)', body: await runBatchBench(log) })
  }
  if (wanted('memory')) {
    const { runReplayMemoryBench } = await import('./replay-memory.js')
    sections.push({ title: 'In-memory replay store: heap per entry', body: runReplayMemoryBench(log) })
  }
  if (wanted('kafka')) {
    const { runKafkaBench } = await import('./kafka.js')
    sections.push({ title: 'Kafka: plain kafkajs vs wrapped, same broker', body: await runKafkaBench(log, ratios) })
  }
  if (wanted('platformatic')) {
    const { runPlatformaticKafkaBench } = await import('./platformatic-kafka.js')
    sections.push({ title: 'Kafka: @platformatic/kafka beside kafkajs, plain vs wrapped, same broker', body: await runPlatformaticKafkaBench(log, ratios) })
  }
  if (wanted('bullmq')) {
    const { runBullmqBench } = await import('./bullmq.js')
    sections.push({ title: 'BullMQ: plain vs wrapped, same Redis', body: await runBullmqBench(log, ratios) })
  }
  if (wanted('redis')) {
    const { runRedisBench } = await import('./redis.js')
    sections.push({ title: 'Shared stores on Redis vs in-memory, same run', body: await runRedisBench(log) })
    const { runRedisMemoryBench } = await import('./redis-memory.js')
    sections.push({ title: 'Redis memory per replay entry', body: await runRedisMemoryBench(log) })
  }
  const machine = `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${platform()} ${arch()}`
  const md = [
    `Run: \`pnpm bench${only.length ? ` ${only.join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 10)} — ${machine}.`,
    '',
    ...sections.flatMap((s) => [`### ${s.title}`, '', s.body, '']),
  ].join('\n')
  process.stdout.write(`${md}\n`)
  if (writeDocs) {
    // Replace the generated parts of docs/benchmarks.md (this Node version's results, and the
    // comparison across versions); the analysis around them is written by hand.
    const docs = new URL('../../docs/', import.meta.url)
    const file = new URL('benchmarks.md', docs)
    const major = process.version.slice(1).split('.')[0]
    saveRatios(docs, ratios, process.version)
    let doc = readFileSync(file, 'utf8')
    doc = replaceBetween(doc, `<!-- results:node${major}:start -->`, `<!-- results:node${major}:end -->`, md)
    doc = replaceBetween(doc, '<!-- comparison:start -->', '<!-- comparison:end -->', writeComparison(docs))
    writeFileSync(file, doc)
    log('docs/benchmarks.md, docs/bench/ updated')
  }
}

function replaceBetween(doc: string, start: string, end: string, body: string): string {
  const a = doc.indexOf(start)
  const b = doc.indexOf(end)
  if (a < 0 || b < a) throw new Error(`docs/benchmarks.md has no ${start} … ${end} markers`)
  return `${doc.slice(0, a + start.length)}\n\n${body}\n${doc.slice(b)}`
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
