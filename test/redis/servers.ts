/**
 * Throwaway redis-server processes for the tests that need a Redis of their own (one they may
 * stop and restart) or a local Redis Cluster. Every server started here runs without persistence
 * in a temporary directory, is stopped by `stop()`, and is killed when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

const HOST = '127.0.0.1'
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL')
})

/** The path of a command on PATH, or undefined. */
function which(command: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' })
  const p = r.stdout.trim()
  return r.status === 0 && p !== '' ? p : undefined
}

/**
 * Why the tests that start their own redis-server cannot run here, or undefined when they can
 * (redis-server and redis-cli on PATH).
 */
export function redisServerMissing(): string | undefined {
  const missing = ['redis-server', 'redis-cli'].filter((c) => which(c) === undefined)
  return missing.length === 0 ? undefined : `${missing.join(' and ')} not on PATH (install the redis-server package, e.g. apt-get install redis-server)`
}

/** True when nothing listens on the port (checked by binding it on loopback). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, HOST, () => s.close(() => resolve(true)))
  })
}

/**
 * A free loopback port; with `busOffset`, the port plus that offset is free too (a cluster node
 * listens on port + 10000 for its bus).
 */
export async function freePort(busOffset?: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if ((await portFree(port)) && (busOffset === undefined || (await portFree(port + busOffset)))) return port
  }
  throw new Error('no free port found')
}

async function ping(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
    r.on('error', () => {})
    try {
      await r.connect()
      if ((await r.ping()) === 'PONG') return
    } catch {
      // not up yet
    } finally {
      r.disconnect()
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${HOST}:${port} did not answer PING within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** One redis-server process on loopback. */
export interface RedisServer {
  readonly host: string
  readonly port: number
  readonly url: string
  /** Stops the process (SIGTERM, then SIGKILL after 5 s); resolves when it has exited. */
  stop(): Promise<void>
  /** Starts it again on the same port with the same arguments: with `stop`, a Redis restart. */
  start(): Promise<void>
  /** Stops the process and removes its directory. */
  close(): Promise<void>
}

/**
 * Starts `redis-server` on a free loopback port, without persistence (`--save '' --appendonly
 * no`), in a temporary directory; `args` are added to the command line.
 */
export async function startRedisServer(options: { port?: number; args?: readonly string[] } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'idctx-test-redis-'))
  const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...(options.args ?? [])]
  let proc: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const start = async () => {
    if (proc !== undefined) throw new Error('redis-server is already running')
    const p = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    live.add(p)
    proc = p
    exited = new Promise((resolve) => p.once('exit', () => (live.delete(p), resolve())))
    try {
      await ping(port, 10_000)
    } catch (e) {
      p.kill('SIGKILL')
      proc = undefined
      throw new Error(`${(e as Error).message}\n${stderr}`)
    }
  }
  const stop = async () => {
    const p = proc
    if (p === undefined) return
    proc = undefined
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM')
      const timer = setTimeout(() => p.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    }
  }
  try {
    await start()
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    start,
    stop,
    async close() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A local Redis Cluster of masters only. */
export interface LocalCluster {
  readonly nodes: readonly { host: string; port: number }[]
  stop(): Promise<void>
}

/**
 * Starts `size` redis-server processes with `--cluster-enabled yes` on loopback, joins them with
 * `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes` and waits until every node
 * reports `cluster_state:ok`. On any failure everything started is stopped before it throws.
 */
export async function startLocalCluster(size = 3): Promise<LocalCluster> {
  const servers: RedisServer[] = []
  const stop = async () => {
    await Promise.all(servers.map((s) => s.close().catch(() => {})))
  }
  try {
    for (let i = 0; i < size; i++) {
      const port = await freePort(10_000)
      servers.push(
        await startRedisServer({
          port,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000'],
        }),
      )
    }
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...servers.map((s) => `${HOST}:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    )
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed (${created.status}): ${created.stdout}\n${created.stderr}`)
    const deadline = Date.now() + 20_000
    for (const s of servers) {
      for (;;) {
        const r = new Redis({ host: HOST, port: s.port, maxRetriesPerRequest: 1 })
        const info = await r.cluster('INFO').catch(() => '')
        r.disconnect()
        if (String(info).includes('cluster_state:ok')) break
        if (Date.now() > deadline) throw new Error(`cluster node ${s.port} never reached cluster_state:ok`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  } catch (e) {
    await stop()
    throw e
  }
  return { nodes: servers.map((s) => ({ host: HOST, port: s.port })), stop }
}
