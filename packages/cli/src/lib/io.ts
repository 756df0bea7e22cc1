/**
 * What a command reads and writes: stdout for results (text or `--json`), stderr for progress and
 * errors, the environment for defaults. Tests and embedders pass their own.
 *
 * @example
 * ```ts
 * let out = ''
 * const io: CliIo = { ...processIo(), stdout: (t) => void (out += t) }
 * await runCli(['jwks', 'orders.keyset.json'], io)
 * ```
 */
export interface CliIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
  /** Reads all of standard input (for `inspect -`). */
  readonly readStdin: () => Promise<string>
}

/**
 * The process's own streams and environment.
 *
 * @example
 * ```ts
 * const code = await runCli(process.argv.slice(2), processIo())
 * ```
 */
export function processIo(): CliIo {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    readStdin: async () => {
      const chunks: Buffer[] = []
      for await (const c of process.stdin) chunks.push(Buffer.from(c as Buffer))
      return Buffer.concat(chunks).toString('utf8')
    },
  }
}

/** Prints a command's result: one JSON document with `--json`, else the text lines. */
export function emit(io: CliIo, json: boolean, data: unknown, text: () => string): void {
  io.stdout(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`)
}

/** A progress line on stderr at most once per `everyMs`, so long operations show they move. */
export function progress(io: CliIo, quiet: boolean, everyMs = 1000): (line: () => string, force?: boolean) => void {
  let last = 0
  return (line, force = false) => {
    if (quiet) return
    const now = Date.now()
    if (!force && now - last < everyMs) return
    last = now
    io.stderr(`idctx: ${line()}\n`)
  }
}
