import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = fileURLToPath(new URL('../../packages/cli/src/bin.ts', import.meta.url))

/** What one run of the `idctx` command gave. */
export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs the `idctx` command as a child process, from its TypeScript sources (tsx, with the
 * workspace's `@idctx/source` condition) so it never runs a stale build.
 */
export function idctx(
  args: readonly string[],
  options: { stdin?: string; env?: Record<string, string | undefined>; closedStdout?: boolean } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@idctx/source', '--import', 'tsx', BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    // A reader that went away before the command wrote (`idctx … | head` once head has its lines).
    if (options.closedStdout === true) child.stdout.destroy()
    else child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(options.stdin ?? '')
  })
}

/** The JSON document a `--json` run printed. */
export function json<T = Record<string, unknown>>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T
  } catch {
    throw new Error(`not JSON (exit ${run.code}): ${run.stdout.slice(0, 500)} | stderr: ${run.stderr.slice(0, 500)}`)
  }
}

/** Every text a secret could appear in: both streams. */
export function everything(run: CliRun): string {
  return `${run.stdout}\n${run.stderr}`
}
