import { readFileSync, writeFileSync } from 'node:fs'
import { arch, cpus, platform } from 'node:os'
import { runBatchBench, runCryptoBench } from './crypto.js'

type Section = { title: string; body: string }

const args = process.argv.slice(2)
const writeDocs = args.includes('--write-docs')
const only = args.filter((a) => !a.startsWith('--'))
const wanted = (name: string) => only.length === 0 || only.includes(name)
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

async function main(): Promise<void> {
  const sections: Section[] = []
  if (wanted('crypto')) {
    const c = await runCryptoBench(log)
    sections.push({ title: 'Sign and verify, one token per message', body: c.markdown })
    sections.push({ title: 'One token over a batch of 1000 records (EdDSA)', body: await runBatchBench(log) })
  }
  if (wanted('kafka')) {
    const { runKafkaBench } = await import('./kafka.js')
    sections.push({ title: 'Kafka: plain kafkajs vs wrapped, same broker', body: await runKafkaBench(log) })
  }
  if (wanted('bullmq')) {
    const { runBullmqBench } = await import('./bullmq.js')
    sections.push({ title: 'BullMQ: plain vs wrapped, same Redis', body: await runBullmqBench(log) })
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
    // Replace the generated part of docs/benchmarks.md; the analysis around it is written by hand.
    const file = new URL('../../docs/benchmarks.md', import.meta.url)
    const doc = readFileSync(file, 'utf8')
    const start = '<!-- results:start -->'
    const end = '<!-- results:end -->'
    const a = doc.indexOf(start)
    const b = doc.indexOf(end)
    if (a < 0 || b < a) throw new Error('docs/benchmarks.md has no results markers')
    writeFileSync(file, `${doc.slice(0, a + start.length)}\n\n${md}\n${doc.slice(b)}`)
    log('docs/benchmarks.md updated')
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
