/**
 * Test instances as OS processes: `node --import tsx <script>.ts` children with an IPC channel.
 * A child gets its configuration as JSON in `IDCTX_INSTANCE`, reports with `process.send`, and
 * exits by itself when the parent goes away (see procs/ipc.ts).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const all = new Set<ChildProcess>()
process.once('exit', () => {
  for (const p of all) p.kill('SIGKILL')
})

/** A running child process and every message it sent so far. */
export interface Instance<Out extends { type: string }> {
  readonly name: string
  readonly proc: ChildProcess
  readonly messages: Out[]
  /** Sends a message to the child. */
  send(message: object): void
  /** The first message (already received or to come) that matches, or a timeout error. */
  waitFor<T extends Out>(what: string, match: (m: Out) => m is T, timeoutMs?: number): Promise<T>
  waitFor(what: string, match: (m: Out) => boolean, timeoutMs?: number): Promise<Out>
  /** Called for every message from now on. */
  onMessage(fn: (m: Out) => void): void
  /** SIGKILL, resolved when the process is gone. */
  kill(): Promise<void>
  /** Asks the child to stop (`{ type: 'stop' }`), SIGKILL after `graceMs`; resolved when it is gone. */
  stop(graceMs?: number): Promise<void>
}

/** Starts `procs/<script>` (a path relative to this folder) as a child process. */
export function startInstance<Out extends { type: string }>(name: string, script: string, config: object): Instance<Out> {
  const file = fileURLToPath(new URL(script, import.meta.url))
  const proc = fork(file, [], {
    execArgv: ['--import', 'tsx', '--conditions=@idctx/source'],
    env: { ...process.env, IDCTX_INSTANCE: JSON.stringify(config), IDCTX_INSTANCE_NAME: name },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  all.add(proc)
  const exited = new Promise<void>((resolve) => proc.once('exit', () => (all.delete(proc), resolve())))
  const messages: Out[] = []
  const listeners: ((m: Out) => void)[] = []
  proc.on('message', (m) => {
    const msg = m as Out
    messages.push(msg)
    for (const l of listeners) l(msg)
  })
  const gone = () => proc.exitCode !== null || proc.signalCode !== null
  const instance: Instance<Out> = {
    name,
    proc,
    messages,
    send(message) {
      if (!gone() && proc.connected) proc.send(message)
    },
    waitFor(what: string, match: (m: Out) => boolean, timeoutMs = 30_000): Promise<Out> {
      const found = messages.find(match)
      if (found !== undefined) return Promise.resolve(found)
      return new Promise<Out>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: timed out waiting for ${what}`)), timeoutMs)
        const onExit = () => {
          clearTimeout(timer)
          reject(new Error(`${name} exited while waiting for ${what}`))
        }
        proc.once('exit', onExit)
        listeners.push((m) => {
          if (match(m)) {
            clearTimeout(timer)
            proc.off('exit', onExit)
            resolve(m)
          }
        })
      })
    },
    onMessage(fn) {
      listeners.push(fn)
    },
    async kill() {
      if (!gone()) proc.kill('SIGKILL')
      await exited
    },
    async stop(graceMs = 5_000) {
      if (gone()) return
      instance.send({ type: 'stop' })
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
  return instance
}

/** Stops every instance (in parallel), ignoring errors: for `finally` blocks. */
export async function stopAll(instances: readonly Instance<{ type: string }>[], graceMs = 5_000): Promise<void> {
  await Promise.all(instances.map((i) => i.stop(graceMs).catch(() => undefined)))
}

/** The p-th percentile (0..100) of numbers, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number
}
