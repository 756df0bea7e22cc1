import { createHash } from 'node:crypto'
import { KeyError, StoreError } from '@idctx/core'
import { Command } from 'commander'
import { CliError, ExitCode } from '../lib/exit-codes.js'
import { emit, type CliIo } from '../lib/io.js'
import { collect, verifierFrom, wantsVerification, type TrustOptions } from '../lib/trust.js'
import { userHasher } from '../lib/user-hash.js'

interface Decoded {
  readonly header: Record<string, unknown> | undefined
  readonly claims: Record<string, unknown> | undefined
}

function decodeSegment(segment: string | undefined): Record<string, unknown> | undefined {
  if (segment === undefined || !/^[A-Za-z0-9_-]*$/.test(segment)) return undefined
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The header and claims of a compact JWS, read without any check (for display only). */
function decode(token: string): Decoded {
  const parts = token.split('.')
  if (parts.length !== 3) return { header: undefined, claims: undefined }
  return { header: decodeSegment(parts[0]), claims: decodeSegment(parts[1]) }
}

/** `sub` as printed: `sha256:` and its hash (HMAC with IDCTX_USER_SALT), like `idctx revoke sub`. */
function hashedSub(io: CliIo, sub: unknown): string {
  return `sha256:${userHasher(io.env.IDCTX_USER_SALT)(typeof sub === 'string' ? sub : JSON.stringify(sub) ?? '')}`
}

function time(v: unknown): string | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? new Date(v * 1000).toISOString() : undefined
}

interface InspectOptions extends TrustOptions {
  readonly tenant?: string
  readonly json: boolean
}

/**
 * `idctx inspect <token|->`: a token's header and claims, and with `--issuer`, `--jwks` and
 * `--audience` a verification by core's verifier with the reason code of a failure.
 */
export function inspectCommand(io: CliIo): Command {
  return new Command('inspect')
    .description(
      'decode an idctx token (header, claims) and, with --issuer/--jwks/--audience, verify it with the verifier consumers use. ' +
        'No message is given, so the binding to a record (mh, dst) is not checked: use `idctx tail` for records.',
    )
    .argument('<token>', 'the compact token, or - to read it from stdin')
    .option('--issuer <id>', 'a trusted issuer (repeatable, paired with --jwks)', collect)
    .option('--jwks <file|url>', "the issuer's JWKS: a file (a JWKS or a key set file) or an http(s) URL (repeatable)", collect)
    .option('--audience <aud>', 'the audience the token must be issued for')
    .option('--tenant <tid>', 'the tenant the token must be scoped to (default: any)')
    .option('--json', 'print JSON', false)
    .action(async (arg: string, o: InspectOptions) => {
      const token = (arg === '-' ? await io.readStdin() : arg).trim()
      const tokenSha256 = createHash('sha256').update(token).digest('hex')
      const decoded = decode(token)
      const { header } = decoded
      // docs/cli.md: a user id (`sub`) is printed only as its hash, as `tail` and `revoke` print it.
      const claims = decoded.claims === undefined || !Object.hasOwn(decoded.claims, 'sub') ? decoded.claims : { ...decoded.claims, sub: hashedSub(io, decoded.claims.sub) }
      let verification: { ok: true } | { ok: false; reason: string; claim: string | undefined } | undefined
      if (wantsVerification(o)) {
        const verifier = await verifierFrom(o)
        // The token's own root as the leaf: a message-less check of everything but the binding.
        const mh = typeof claims?.mh === 'string' ? Buffer.from(claims.mh, 'base64url') : Buffer.alloc(32)
        const dst = typeof claims?.dst === 'string' ? claims.dst : 'kafka:idctx-inspect'
        try {
          const r = await verifier.verify({
            tokens: [token],
            destination: dst,
            leaf: mh,
            expectedTenant: o.tenant ?? { any: true },
          })
          verification = r.ok ? { ok: true } : { ok: false, reason: r.error.reason, claim: r.error.claim }
        } catch (e) {
          if (e instanceof KeyError || e instanceof StoreError) throw new CliError(ExitCode.Unreachable, `verification could not complete: ${e.message}`)
          throw e
        }
      }
      const result = {
        tokenSha256,
        bytes: Buffer.byteLength(token, 'utf8'),
        header: header ?? null,
        claims: claims ?? null,
        times: claims === undefined ? null : { iat: time(claims.iat) ?? null, nbf: time(claims.nbf) ?? null, exp: time(claims.exp) ?? null },
        verification: verification === undefined ? null : { ...verification, binding: 'not checked (no message)' },
      }
      emit(io, o.json, result, () => {
        const lines = [`token sha256 ${tokenSha256} (${result.bytes} bytes)`]
        lines.push(`header ${header === undefined ? '(not decodable)' : JSON.stringify(header)}`)
        lines.push(`claims ${claims === undefined ? '(not decodable)' : JSON.stringify(claims, null, 2)}`)
        if (result.times !== null) lines.push(`issued ${result.times.iat ?? '?'}, expires ${result.times.exp ?? '?'}`)
        if (verification !== undefined) {
          lines.push(verification.ok ? 'verified (binding to a message not checked)' : `rejected: ${verification.reason}${verification.claim === undefined ? '' : ` (${verification.claim})`}`)
        } else {
          lines.push('not verified (pass --issuer, --jwks and --audience to verify)')
        }
        return lines.join('\n')
      })
      const undecodable = header === undefined || claims === undefined
      if ((verification !== undefined && !verification.ok) || (verification === undefined && undecodable)) throw new CliError(ExitCode.Findings, '')
    })
}
