/**
 * The exit codes of every `idctx` command, for scripts:
 *
 * - `0` ok: the command did what it was asked, and found nothing wrong;
 * - `1` findings: a token or record failed verification, a dead-letter topic holds records,
 *   records were left pending by a redrive, a key rotation is not due yet;
 * - `2` usage: a bad option or argument, or an input file that is missing or not what it
 *   should be (nothing was changed);
 * - `3` unreachable: Kafka, Redis or a JWKS URL could not be reached or did not answer in time.
 *
 * @example
 * ```ts
 * if (code === ExitCode.Findings) alert('idctx found rejected records')
 * ```
 */
export const ExitCode = {
  Ok: 0,
  Findings: 1,
  Usage: 2,
  Unreachable: 3,
} as const

/** One of the values of {@link ExitCode}. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * A failure a command reports to its user: a message without secrets and the exit code.
 *
 * @example
 * ```ts
 * throw new CliError(ExitCode.Usage, 'the key set file already exists (use --force to replace it)')
 * ```
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}
