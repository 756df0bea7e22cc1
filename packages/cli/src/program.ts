import { Command, CommanderError } from 'commander'
import { dlqInspectCommand } from './commands/dlq-inspect.js'
import { dlqRedriveCommand } from './commands/dlq-redrive.js'
import { inspectCommand } from './commands/inspect.js'
import { jwksCommand, keysCommand } from './commands/keys.js'
import { revokeCommand, unrevokeCommand } from './commands/revoke.js'
import { tailCommand } from './commands/tail.js'
import { CliError, ExitCode } from './lib/exit-codes.js'
import { processIo, type CliIo } from './lib/io.js'

const VERSION = '0.1.0'

const EXIT_CODES_HELP = `
Exit codes: 0 ok · 1 findings (a rejection, records in a DLQ, records left by a redrive) ·
2 usage or input error · 3 Kafka, Redis or a JWKS URL unreachable.
Environment: KAFKA_BROKERS, REDIS_URL, IDCTX_USER_SALT (secret salt of printed user id hashes).`

/** Every command of the tree, the root included. */
function* everyCommand(c: Command): Generator<Command> {
  yield c
  for (const sub of c.commands) yield* everyCommand(sub)
}

/**
 * The `idctx` command tree (commander), writing to `io`. Commands throw {@link CliError} for
 * their outcome; {@link runCli} turns everything into an exit code.
 *
 * @example
 * ```ts
 * const program = createProgram(processIo())
 * program.commands.map((c) => c.name()) // ['keys', 'jwks', 'inspect', 'tail', 'dlq', 'revoke', 'unrevoke']
 * ```
 */
export function createProgram(io: CliIo): Command {
  const program = new Command('idctx')
    .description('idctx: key sets and JWKS, inspect tokens, tail topics verified, dead-letter inspect and redrive, revoke ids')
    .version(VERSION)
    .addHelpText('after', EXIT_CODES_HELP)
  program.addCommand(keysCommand(io))
  program.addCommand(jwksCommand(io))
  program.addCommand(inspectCommand(io))
  program.addCommand(tailCommand(io))
  const dlq = new Command('dlq').description('dead-letter topics: inspect and redrive')
  dlq.addCommand(dlqInspectCommand(io))
  dlq.addCommand(dlqRedriveCommand(io))
  program.addCommand(dlq)
  program.addCommand(revokeCommand(io))
  program.addCommand(unrevokeCommand(io))
  for (const c of everyCommand(program)) {
    c.exitOverride()
      .showHelpAfterError('(add --help for usage)')
      .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
  }
  return program
}

/**
 * Runs `idctx` with `argv` (without the node and script paths) and returns its exit code:
 * 0 ok, 1 findings, 2 usage or input error, 3 infrastructure unreachable (see {@link ExitCode}).
 * Never calls `process.exit`.
 *
 * @example
 * ```ts
 * const code = await runCli(['inspect', token, '--json'], processIo())
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  const program = createProgram(io)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return ExitCode.Ok
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with exit code 0; `idctx keys` without a subcommand shows help.
      return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage
    }
    if (e instanceof CliError) {
      if (e.message !== '') io.stderr(`idctx: ${e.message}\n`)
      return e.exitCode
    }
    io.stderr(`idctx: unexpected ${(e as Error)?.name ?? 'error'}: ${(e as Error)?.message ?? String(e)}\n`)
    return ExitCode.Usage
  }
}
