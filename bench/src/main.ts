import { writeFileSync } from 'node:fs'
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
  const machine = `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${platform()} ${arch()}`
  const md = [
    `Run: \`pnpm bench${only.length ? ` ${only.join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 10)} — ${machine}.`,
    '',
    ...sections.flatMap((s) => [`### ${s.title}`, '', s.body, '']),
  ].join('\n')
  process.stdout.write(`${md}\n`)
  if (writeDocs) writeFileSync(new URL('../results.md', import.meta.url), md)
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
