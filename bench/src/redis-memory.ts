/**
 * Redis memory per replay entry of `@idctx/redis`: 100,000 entries (22-character jtis,
 * `orders/<p>/<offset>` coordinates) checked into a private redis-server (no persistence, nothing
 * else in it), `used_memory` before and after — with one message per token, and with 100.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { createRedisReplayStore } from '../../packages/redis/src/index.js'
import { table } from './harness.js'

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

export async function runRedisMemoryBench(log: (s: string) => void, entries = 100_000): Promise<string> {
  const port = await freePort()
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const client = new Redis({ host: '127.0.0.1', port, retryStrategy: (n) => (n > 50 ? null : 100) })
  // The server may still be starting: ioredis retries; its connection errors until then are expected.
  client.on('error', () => {})
  try {
    await client.ping()
    const used = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1])
    const rows: string[][] = []
    for (const perToken of [1, 100]) {
      await client.flushall()
      const store = createRedisReplayStore({ client })
      const before = await used()
      for (let t = 0; t < entries / perToken; t++) {
        const jti = randomUUID().replace(/-/g, '').slice(0, 22)
        await store.checkMany(
          Array.from({ length: perToken }, (_, i) => ({ jti, index: i, coordinates: `orders/${t % 12}/${100_000 + t * perToken + i}`, expiresAt: Date.now() + 600_000 })),
        )
      }
      const perEntry = ((await used()) - before) / entries
      log(`redis memory: ${perToken} message(s) per token: ${perEntry.toFixed(1)} B/entry`)
      rows.push([String(perToken), perEntry.toFixed(0)])
    }
    const version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?'
    return `${table(['messages per token', 'Redis memory per replay entry (bytes)'], rows)}\n\n${entries.toLocaleString('en')} entries into a private redis-server ${version} (\`used_memory\` before and after).`
  } finally {
    client.disconnect()
    server.kill()
  }
}
