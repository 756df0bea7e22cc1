/**
 * Heap per entry of core's in-memory replay store: 1,000,000 `check` calls (22-character jtis as
 * a verifier parses them, `orders/<p>/<offset>` coordinates built by concatenation as the kafkajs
 * wrapper does), `heapUsed` after a full GC before and after, in a child process per shape
 * (`node --expose-gc`). Run as a script it measures one shape: `replay-memory.ts <per token>`.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createMemoryReplayStore } from '@idctx/core'
import { table } from './harness.js'

const N = 1_000_000

function measureOne(perToken: number): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with node --expose-gc')
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  const store = createMemoryReplayStore({ maxEntries: 2 * N })
  const topic = 'orders'
  for (let t = 0; t < N / perToken; t++) {
    const jti = randomBytes(16).toString('base64url')
    for (let i = 0; i < perToken; i++) {
      const offset = String(100_000 + t * perToken + i)
      store.check({ jti, index: i, coordinates: `${topic}/${t % 12}/${offset}`, expiresAt: Date.now() + 600_000 })
    }
  }
  gc()
  gc()
  const perEntry = (process.memoryUsage().heapUsed - before) / store.size
  return perEntry
}

export function runReplayMemoryBench(log: (s: string) => void): string {
  const rows = [1, 16, 100].map((perToken) => {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--conditions=@idctx/source', fileURLToPath(import.meta.url), String(perToken)], { encoding: 'utf8' })
    const bytes = Number(out.trim())
    log(`memory: ${perToken} message(s) per token: ${bytes.toFixed(1)} B/entry`)
    return [String(perToken), bytes.toFixed(0)]
  })
  return `${table(['messages per token', 'heap per replay entry (bytes)'], rows)}\n\n${N.toLocaleString('en')} entries, \`heapUsed\` after a full GC before and after, one child process per row (${process.version}).`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(`${measureOne(Number(process.argv[2]))}\n`)
