import { readFile } from 'node:fs/promises'
import {
  createRemoteJwks,
  createVerifier,
  importKeySet,
  KeyError,
  staticKeySource,
  type IdctxObserver,
  type Jwks,
  type KeySource,
  type RemoteJwks,
  type Verifier,
} from '@idctx/core'
import { CliError, ExitCode } from './exit-codes.js'

/** The options every verifying command takes (`--issuer`, `--jwks` repeatable in pairs). */
export interface TrustOptions {
  readonly issuer?: readonly string[]
  readonly jwks?: readonly string[]
  readonly audience?: string
}

/** Commander collector for a repeatable option. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** Whether the command was given what a verification needs. */
export function wantsVerification(o: TrustOptions): boolean {
  return (o.jwks?.length ?? 0) > 0 || (o.issuer?.length ?? 0) > 0 || o.audience !== undefined
}

/** A `--jwks` URL as an error may show it: origin and path, never credentials, query or fragment. */
function shownUrl(source: string): string {
  try {
    const url = new URL(source)
    return JSON.stringify(`${url.protocol}//${url.host}${url.pathname}`)
  } catch {
    return '(not a valid URL)'
  }
}

async function keySourceOf(source: string): Promise<{ keys: KeySource; remote?: RemoteJwks }> {
  if (/^https?:\/\//i.test(source)) {
    try {
      // No cooldown: a command looks a kid up once, and a miss must mean the JWKS lacks it now.
      const remote = createRemoteJwks(source, { cooldownMs: 0, timeoutMs: 5000 })
      return { keys: remote, remote }
    } catch (e) {
      throw new CliError(ExitCode.Usage, `--jwks ${shownUrl(source)}: ${(e as Error).message}`)
    }
  }
  let text: string
  try {
    text = await readFile(source, 'utf8')
  } catch (e) {
    throw new CliError(ExitCode.Usage, `cannot read --jwks ${JSON.stringify(source)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    const doc = JSON.parse(text) as { idctx?: unknown }
    // A private key set file is accepted too: only its public JWKS is used.
    const jwks: Jwks = doc?.idctx === 'keyset-v1' ? importKeySet(text).jwks() : (doc as Jwks)
    return { keys: staticKeySource(jwks) }
  } catch (e) {
    const why = e instanceof KeyError ? e.message : 'not JSON'
    throw new CliError(ExitCode.Usage, `--jwks ${JSON.stringify(source)}: not a JWKS or key set document (${why})`)
  }
}

/**
 * Builds a verifier from `--issuer`/`--jwks` pairs and `--audience`, and checks that every remote
 * JWKS answers (exit 3 when one does not).
 */
export async function verifierFrom(
  o: TrustOptions,
  extra: { observer?: IdctxObserver; maxExpiryGraceSeconds?: number } = {},
): Promise<Verifier> {
  const issuers = o.issuer ?? []
  const sources = o.jwks ?? []
  if (issuers.length === 0 || sources.length === 0 || o.audience === undefined) {
    throw new CliError(ExitCode.Usage, 'verification needs --issuer, --jwks and --audience')
  }
  if (issuers.length !== sources.length) {
    throw new CliError(ExitCode.Usage, 'give --issuer and --jwks in pairs: one --jwks per --issuer, in the same order')
  }
  const map: Record<string, KeySource> = {}
  for (const [i, iss] of issuers.entries()) {
    if (Object.prototype.hasOwnProperty.call(map, iss)) throw new CliError(ExitCode.Usage, `--issuer ${JSON.stringify(iss)} is given twice`)
    map[iss] = (await keySourceOf(sources[i] as string)).keys
  }
  let verifier: Verifier
  try {
    verifier = createVerifier({
      audience: o.audience,
      issuers: map,
      ...(extra.observer === undefined ? {} : { observer: extra.observer }),
      ...(extra.maxExpiryGraceSeconds === undefined ? {} : { maxExpiryGraceSeconds: extra.maxExpiryGraceSeconds }),
    })
  } catch (e) {
    throw new CliError(ExitCode.Usage, (e as Error).message)
  }
  const report = await verifier.ready()
  for (const [iss, r] of Object.entries(report.issuers)) {
    if (!r.ok) throw new CliError(ExitCode.Unreachable, `the JWKS of issuer ${JSON.stringify(iss)} could not be loaded: ${r.error.message}`)
  }
  return verifier
}
