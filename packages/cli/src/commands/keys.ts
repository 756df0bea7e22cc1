import { ALGORITHMS, createKeySet, exportKeySet, generateKey, type Algorithm, type KeySet } from '@idctx/core'
import { Command, Option } from 'commander'
import { CliError, ExitCode } from '../lib/exit-codes.js'
import { emit, type CliIo } from '../lib/io.js'
import { readKeySetFile, writeKeySetFile } from '../lib/key-file.js'
import { seconds } from '../lib/numbers.js'

/** What every `keys` command prints: the set's kids and times, never key material. */
export function keySetSummary(file: string, keys: KeySet): Record<string, unknown> {
  const s = keys.state()
  return {
    file,
    active: { kid: s.active.kid, alg: s.active.alg },
    staged: s.staged === undefined ? null : { kid: s.staged.kid, alg: s.staged.alg, stagedAt: new Date(s.stagedAt ?? 0).toISOString() },
    retiring: s.retiring.map((r) => ({ kid: r.key.kid, alg: r.key.alg, retiredAt: new Date(r.retiredAt).toISOString() })),
  }
}

function summaryText(summary: Record<string, unknown>, action: string): string {
  const s = summary as ReturnType<typeof keySetSummary> & {
    active: { kid: string; alg: string }
    staged: { kid: string; stagedAt: string } | null
    retiring: { kid: string; retiredAt: string }[]
  }
  const lines = [`${action}: ${String(s.file)}`, `  active   ${s.active.kid} (${s.active.alg})`]
  if (s.staged !== null) lines.push(`  staged   ${s.staged.kid} since ${s.staged.stagedAt}`)
  for (const r of s.retiring) lines.push(`  retiring ${r.kid} since ${r.retiredAt}`)
  return lines.join('\n')
}

const algOption = () => new Option('--alg <alg>', 'key algorithm').choices(ALGORITHMS.filter((a) => a !== 'HS256'))

/** `idctx keys …`: the private key set file of one issuer (a `keyset-v1` document, mode 0600). */
export function keysCommand(io: CliIo): Command {
  const keys = new Command('keys').description(
    'manage the private key set file of one issuer (a keyset-v1 document, the format of exportKeySet/importKeySet; written with mode 0600)',
  )

  keys
    .command('generate')
    .description('create a key set file with one active key')
    .argument('<file>', 'the key set file to create')
    .addOption(algOption().default('EdDSA'))
    .option('--kid <kid>', 'the key id (default: its RFC 7638 thumbprint)')
    .option('--force', 'replace an existing file', false)
    .option('--json', 'print JSON', false)
    .action(async (file: string, o: { alg: Algorithm; kid?: string; force: boolean; json: boolean }) => {
      const key = generateKey(o.alg, o.kid === undefined ? {} : { kid: o.kid })
      const set = createKeySet({ active: key })
      await writeKeySetFile(file, exportKeySet(set), !o.force)
      const summary = keySetSummary(file, set)
      emit(io, o.json, { action: 'generated', ...summary }, () => summaryText(summary, 'generated'))
    })

  keys
    .command('stage')
    .description('add a new key that is published (in jwks) but does not sign yet; rotate once every verifier has fetched it')
    .argument('<file>', 'the key set file')
    .addOption(algOption())
    .option('--kid <kid>', 'the new key id (default: its RFC 7638 thumbprint)')
    .option('--json', 'print JSON', false)
    .action(async (file: string, o: { alg?: Algorithm; kid?: string; json: boolean }) => {
      const { keys: set } = await readKeySetFile(file)
      if (set.state().staged !== undefined) {
        throw new CliError(ExitCode.Usage, `a key is already staged (${set.state().staged?.kid}): rotate first`)
      }
      const next = generateKey(o.alg ?? set.active.alg, o.kid === undefined ? {} : { kid: o.kid })
      if (set.keys().some((k) => k.kid === next.kid)) throw new CliError(ExitCode.Usage, `kid ${JSON.stringify(next.kid)} is already in the set`)
      set.stage(next)
      await writeKeySetFile(file, exportKeySet(set), false)
      const summary = keySetSummary(file, set)
      emit(io, o.json, { action: 'staged', kid: next.kid, ...summary }, () => summaryText(summary, `staged ${next.kid}`))
    })

  keys
    .command('rotate')
    .description('make the staged key active and retire the active one, once it has been staged long enough')
    .argument('<file>', 'the key set file')
    .option('--stage-for <seconds>', 'how long a key must be staged before it signs: the verifiers\' JWKS max age + Cache-Control max-age', seconds, 660)
    .option('--force', 'rotate even if the staged key was staged more recently than --stage-for', false)
    .option('--json', 'print JSON', false)
    .action(async (file: string, o: { stageFor: number; force: boolean; json: boolean }) => {
      const { keys: set } = await readKeySetFile(file)
      const { staged, stagedAt } = set.state()
      if (staged === undefined) throw new CliError(ExitCode.Usage, 'no staged key: run `idctx keys stage` first')
      const due = (stagedAt ?? 0) + o.stageFor * 1000
      if (!o.force && Date.now() < due) {
        const summary = keySetSummary(file, set)
        emit(io, o.json, { action: 'waiting', kid: staged.kid, rotateAt: new Date(due).toISOString(), ...summary }, () =>
          `waiting: ${staged.kid} may sign from ${new Date(due).toISOString()} (verifiers may not have fetched it yet; --force to rotate now)`,
        )
        throw new CliError(ExitCode.Findings, '')
      }
      const previous = set.active.kid
      set.rotate()
      await writeKeySetFile(file, exportKeySet(set), false)
      const summary = keySetSummary(file, set)
      emit(io, o.json, { action: 'rotated', kid: staged.kid, retired: previous, ...summary }, () => summaryText(summary, `rotated to ${staged.kid}`))
    })

  keys
    .command('prune')
    .description('drop retired keys older than --retire-for (tokens they signed have all expired)')
    .argument('<file>', 'the key set file')
    .option('--retire-for <seconds>', 'how long a retired key keeps verifying: the verifiers\' max token lifetime + clock tolerance', seconds, 960)
    .option('--json', 'print JSON', false)
    .action(async (file: string, o: { retireFor: number; json: boolean }) => {
      const { keys: set } = await readKeySetFile(file)
      const pruned = set.prune(o.retireFor).map((k) => k.kid)
      if (pruned.length > 0) await writeKeySetFile(file, exportKeySet(set), false)
      const summary = keySetSummary(file, set)
      emit(io, o.json, { action: 'pruned', pruned, ...summary }, () =>
        summaryText(summary, pruned.length === 0 ? 'nothing to prune' : `pruned ${pruned.join(', ')}`),
      )
    })

  keys
    .command('show')
    .description('print the kids, algorithms and times of a key set file (never key material)')
    .argument('<file>', 'the key set file')
    .option('--json', 'print JSON', false)
    .action(async (file: string, o: { json: boolean }) => {
      const { keys: set } = await readKeySetFile(file)
      const summary = keySetSummary(file, set)
      emit(io, o.json, summary, () => summaryText(summary, 'key set'))
    })

  return keys
}

/** `idctx jwks <file>`: the public JWKS of a key set file (what verifiers fetch). */
export function jwksCommand(io: CliIo): Command {
  return new Command('jwks')
    .description('print the public JWKS of a key set file (active, staged and retiring keys; public parts only)')
    .argument('<file>', 'the key set file')
    .action(async (file: string) => {
      const { keys: set } = await readKeySetFile(file)
      io.stdout(`${JSON.stringify(set.jwks(), null, 2)}\n`)
    })
}
