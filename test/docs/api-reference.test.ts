/**
 * The API reference (`npm run docs:api`) stays whole: typedoc converts the packages of
 * typedoc.json with no error and no warning (an undocumented member it checks, a `{@link}` to a
 * name that is not exported), and every top-level export of every package carries an `@example`
 * block — style.md: "TSDoc with an example on every export". Typedoc runs in-process, as the
 * script does after `tsc -b` (a package's types resolve the others' through their built .d.ts),
 * and writes its JSON model to a temporary file, which the checks read.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Application, Logger, LogLevel, ReflectionKind } from 'typedoc'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')

/** Collects what typedoc logs, warnings and errors with their text. */
class CollectingLogger extends Logger {
  readonly problems: string[] = []
  override log(message: string, level: LogLevel): void {
    super.log(message, level)
    if (level >= LogLevel.Warn) this.problems.push(`${LogLevel[level]}: ${message}`)
  }
}

interface JsonComment {
  blockTags?: { tag: string }[]
}
interface JsonReflection {
  name: string
  kind: number
  comment?: JsonComment
  signatures?: { comment?: JsonComment }[]
  children?: JsonReflection[]
}

const hasExample = (comment: JsonComment | undefined) => comment?.blockTags?.some((t) => t.tag === '@example') ?? false

let dir: string
let logger: CollectingLogger
let model: JsonReflection

beforeAll(async () => {
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-b'], { cwd: root, stdio: 'pipe' })
  dir = mkdtempSync(join(tmpdir(), 'idctx-api-'))
  const app = await Application.bootstrapWithPlugins({ options: join(root, 'typedoc.json') })
  logger = new CollectingLogger()
  // Problems met while reading the options were counted by the logger typedoc started with.
  if (app.logger.hasErrors() || app.logger.hasWarnings()) logger.problems.push('typedoc reported problems reading typedoc.json')
  app.logger = logger
  const project = await app.convert()
  expect(project, logger.problems.join('\n')).toBeDefined()
  app.validate(project!)
  const file = join(dir, 'api.json')
  await app.generateJson(project!, file)
  model = JSON.parse(readFileSync(file, 'utf8')) as JsonReflection
}, 180_000)

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe('API reference (typedoc)', () => {
  it('converts with 0 errors and 0 warnings', () => {
    expect(logger.problems).toEqual([])
    expect(logger.errorCount).toBe(0)
    expect(logger.warningCount).toBe(0)
  })

  it('documents every package of typedoc.json', () => {
    const config = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8')) as { entryPoints: string[] }
    const expected = config.entryPoints.map((p) => (JSON.parse(readFileSync(join(root, p, 'package.json'), 'utf8')) as { name: string }).name)
    expect((model.children ?? []).map((p) => p.name).sort()).toEqual(expected.sort())
  })

  it('gives every top-level export an @example', () => {
    const missing: string[] = []
    let checked = 0
    for (const pkg of model.children ?? []) {
      for (const decl of pkg.children ?? []) {
        if (decl.kind === ReflectionKind.Reference) continue // a re-export: its target is checked
        checked++
        const ok = hasExample(decl.comment) || (decl.signatures ?? []).some((s) => hasExample(s.comment))
        if (!ok) missing.push(`${pkg.name} ${decl.name} (${ReflectionKind[decl.kind]})`)
      }
    }
    expect(checked).toBeGreaterThan(200)
    expect(missing, `exports without an @example block:\n${missing.join('\n')}`).toEqual([])
  })
})
