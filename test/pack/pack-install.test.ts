/**
 * The packages as a user gets them: every workspace package under packages/ is packed with
 * `pnpm pack` (which runs its prepack build and rewrites `workspace:^`), checked (contents,
 * manifest, publint, are-the-types-wrong), and installed with npm into fresh projects outside the
 * workspace, next to its peers from the npm registry. There, an ESM and a CommonJS smoke run a
 * signed Kafka round trip and a signed BullMQ job against the real broker and Redis, with the
 * Redis replay store, and a strict TypeScript compile checks a user's files and every TypeScript
 * block of the READMEs against the installed .d.ts. A second project does the BullMQ part with
 * the latest BullMQ 5.x, which the @idctx/bullmq peer range admits.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, relative, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const fixtures = join(import.meta.dirname, 'fixtures')
const bin = (name: string) => join(root, 'node_modules/.bin', name)

/**
 * Peers installed beside the tarballs, as the READMEs tell users to. `@types/debug`: the .d.ts of
 * @platformatic/kafka import `debug` without declaring its types, which a user compiling without
 * skipLibCheck must add (packages/platformatic-kafka/README.md says so).
 */
const PEERS = ['kafkajs@2.2.4', '@platformatic/kafka@^1.35.0', '@types/debug@^4', 'ioredis@^5.9.2', '@opentelemetry/api@^1.9.0', '@types/node@^20.19.0']
const BULLMQ_CURRENT = 'bullmq@^6.7.0'
const BULLMQ_5 = 'bullmq@5' // the latest 5.x

interface Run {
  stdout: string
  stderr: string
  ms: number
}

/** The environment for npm and node in the fresh projects: none of pnpm's npm_* settings. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    const lower = k.toLowerCase()
    if (lower.startsWith('npm_') && !/^npm_config_(registry|cache|.*proxy|cafile|strict_ssl)$/.test(lower)) continue
    if (lower.startsWith('pnpm_') || k === 'NODE_OPTIONS' || k === 'VITEST' || k.startsWith('VITEST_')) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv(), timeoutMs = 180_000): Promise<Run> {
  const start = Date.now()
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const ms = Date.now() - start
      if (error) {
        const tail = (s: string) => s.split('\n').slice(-60).join('\n')
        reject(new Error(`${basename(cmd)} ${args.join(' ')} (in ${cwd}) failed: ${error.message}\n--- stdout\n${tail(stdout)}\n--- stderr\n${tail(stderr)}`))
      } else resolvePromise({ stdout, stderr, ms })
    })
  })
}

const timings: Record<string, number> = {}
async function timed<T extends Run>(label: string, p: Promise<T>): Promise<T> {
  const r = await p
  timings[label] = r.ms
  return r
}

interface Packed {
  dir: string // packages/<dir>
  tarball: string
  files: string[] // entries without the leading package/
  manifest: Record<string, unknown> & {
    name: string
    dependencies?: Record<string, string>
    peerDependencies?: Record<string, string>
    peerDependenciesMeta?: Record<string, { optional?: boolean }>
  }
}

/** The last JSON line a smoke printed. */
function resultOf(r: Run): Record<string, any> {
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1)
  if (line === undefined) throw new Error(`no result line\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`)
  return JSON.parse(line) as Record<string, any>
}

/**
 * Package names a built file imports: from .js, what runs (type-only imports are gone); from
 * .d.ts, what the types name. Relative and node: specifiers are left out.
 */
function moduleSpecifiers(js: string): string[] {
  const specs = new Set<string>()
  for (const m of js.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2] ?? m[3] ?? m[4]
    if (spec === undefined || spec.startsWith('.') || spec.startsWith('node:')) continue
    specs.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string))
  }
  return [...specs]
}

/** Every ```ts block of the READMEs, as a module file name → its text. */
function readmeBlocks(): Map<string, string> {
  const out = new Map<string, string>()
  const readmes = ['README.md', ...readdirSync(join(root, 'packages')).map((d) => `packages/${d}/README.md`)].filter((f) => existsSync(join(root, f)))
  for (const file of readmes) {
    const text = readFileSync(join(root, file), 'utf8')
    let i = 0
    for (const m of text.matchAll(/^```ts\n([\s\S]*?)^```/gm)) {
      const line = text.slice(0, m.index).split('\n').length + 1
      const name = `readme-${file.replace(/\/README\.md$|\.md$/, '').replace(/\W+/g, '-')}-${++i}.ts`
      const body = m[1] as string
      const isModule = /^\s*(import|export)\s/m.test(body)
      out.set(name, `// ${file}, the block from line ${line} (one line down here)\n${body}${isModule ? '' : '\nexport {}\n'}`)
    }
  }
  return out
}

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    lib: ['es2023'],
    types: ['node'],
    noEmit: true,
    // The installed .d.ts are checked too, as a user without skipLibCheck sees them.
    skipLibCheck: false,
  },
  include: ['*.ts', '*.cts', '*.d.ts'],
}

/** A fresh npm project in `dir` with the tarballs and `deps` installed, and the fixtures copied in. */
async function makeProject(dir: string, tarballs: readonly string[], deps: readonly string[], label: string): Promise<void> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: basename(dir), private: true, type: 'module' }, null, 2))
  await timed(
    `npm install (${label})`,
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs, ...deps], dir),
  )
  for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(dir, f))
  for (const [name, text] of readmeBlocks()) writeFileSync(join(dir, name), text)
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
}

const services = (extra: Record<string, string> = {}) =>
  cleanEnv({
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:39092',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    ...extra,
  })

const work = mkdtempSync(join(tmpdir(), 'idctx-pack-'))
const tarDir = join(work, 'tarballs')
const current = join(work, 'app')
const legacy = join(work, 'app-bullmq5')
const packed: Packed[] = []

beforeAll(async () => {
  expect(relative(root, work).startsWith('..')).toBe(true) // outside the workspace: no pnpm links to fall back on
  const pnpm = (await run('bash', ['scripts/ensure-pnpm.sh'], root, process.env)).stdout.trim()
  await timed('pnpm pack', run(pnpm, ['-r', '--filter', './packages/*', 'pack', '--pack-destination', tarDir], root, process.env))
  for (const dir of readdirSync(join(root, 'packages'))) {
    const source = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as { name: string; version: string; private?: boolean }
    if (source.private === true) continue
    const tarball = join(tarDir, `${source.name.replace('@', '').replace('/', '-')}-${source.version}.tgz`)
    const files = (await run('tar', ['-tzf', tarball], work)).stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''))
    const manifest = JSON.parse((await run('tar', ['-xzOf', tarball, 'package/package.json'], work)).stdout) as Packed['manifest']
    packed.push({ dir, tarball, files, manifest })
  }
  const tarballs = packed.map((p) => p.tarball)
  await Promise.all([
    makeProject(current, tarballs, [...PEERS, BULLMQ_CURRENT], 'bullmq 6'),
    makeProject(legacy, tarballs, [...PEERS, BULLMQ_5], 'bullmq 5'),
  ])
}, 420_000)

afterAll(() => {
  console.log(`[pack] ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(', ')}`)
  if (process.env.IDCTX_KEEP_PACK_DIR === undefined) rmSync(work, { recursive: true, force: true })
  else console.log(`[pack] kept ${work}`)
})

describe('packed packages', () => {
  it('every package is packed', () => {
    expect(packed.map((p) => p.manifest.name).sort()).toEqual(expect.arrayContaining(['@idctx/bullmq', '@idctx/core', '@idctx/ingress', '@idctx/kafkajs', '@idctx/otel', '@idctx/platformatic-kafka', '@idctx/redis']))
  })

  it('each tarball holds the build of every source file, README and LICENSE, and no build state', () => {
    const license = readFileSync(join(root, 'LICENSE'), 'utf8')
    for (const p of packed) {
      const where = p.manifest.name
      expect(p.files, where).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']))
      expect(p.files.filter((f) => f.endsWith('.tsbuildinfo')), where).toEqual([])
      // A package with commands ships their entry points (bin/), which must be in the tarball.
      const bins = Object.values((p.manifest.bin ?? {}) as Record<string, string>).map((f) => f.replace(/^\.\//, ''))
      for (const b of bins) expect(p.files, where).toContain(b)
      expect(p.files.filter((f) => !/^(dist|src)\/|^(package\.json|README\.md|LICENSE)$/.test(f) && !bins.includes(f)), where).toEqual([])
      // dist matches src one to one: nothing missing, nothing stale from a deleted source file.
      const sources = p.files.filter((f) => f.startsWith('src/') && f.endsWith('.ts')).map((f) => f.slice(4, -3)).sort()
      const built = p.files.filter((f) => f.startsWith('dist/') && f.endsWith('.js')).map((f) => f.slice(5, -3)).sort()
      const declared = p.files.filter((f) => f.startsWith('dist/') && f.endsWith('.d.ts')).map((f) => f.slice(5, -5)).sort()
      expect(built, where).toEqual(sources)
      expect(declared, where).toEqual(sources)
    }
    return Promise.all(
      packed.map(async (p) => expect((await run('tar', ['-xzOf', p.tarball, 'package/LICENSE'], work)).stdout, p.manifest.name).toBe(license)),
    )
  })

  it('each manifest is publishable: real ranges, no source condition, metadata, engines', () => {
    for (const p of packed) {
      const m = p.manifest
      const text = JSON.stringify(m)
      expect(text, m.name).not.toContain('workspace:')
      expect(text, m.name).not.toContain('@idctx/source')
      expect(text, m.name).not.toMatch(/src\/[^"]*\.ts"/)
      expect(m, m.name).toMatchObject({
        type: 'module',
        license: 'Apache-2.0',
        engines: { node: '>=20.19' },
        publishConfig: { access: 'public' },
        repository: { type: 'git', directory: `packages/${p.dir}` },
        homepage: expect.stringMatching(/^https:\/\//),
        bugs: { url: expect.stringMatching(/^https:\/\//) },
        keywords: expect.arrayContaining(['idctx']),
      })
      for (const [dep, range] of Object.entries(m.dependencies ?? {})) {
        if (dep.startsWith('@idctx/')) expect(range, `${m.name} → ${dep}`).toBe(`^${packed.find((q) => q.manifest.name === dep)?.manifest.version}`)
      }
    }
  })

  it('dependencies are exactly what the built code and types import; optional peers are never imported at run time', async () => {
    for (const p of packed) {
      const atRuntime = new Set<string>()
      const inTypes = new Set<string>()
      for (const f of p.files.filter((x) => x.startsWith('dist/') && (x.endsWith('.js') || x.endsWith('.d.ts')))) {
        const text = (await run('tar', ['-xzOf', p.tarball, `package/${f}`], work)).stdout
        for (const spec of moduleSpecifiers(text)) (f.endsWith('.d.ts') ? inTypes : atRuntime).add(spec)
      }
      const deps = Object.keys(p.manifest.dependencies ?? {})
      const peers = Object.keys(p.manifest.peerDependencies ?? {})
      const optional = peers.filter((n) => p.manifest.peerDependenciesMeta?.[n]?.optional === true)
      const where = p.manifest.name
      // What runs is declared and always there (no optional peer); what the types name is declared.
      expect([...atRuntime].filter((s) => !deps.includes(s) && !(peers.includes(s) && !optional.includes(s))), `${where}: run-time imports not declared`).toEqual([])
      expect([...inTypes].filter((s) => !deps.includes(s) && !peers.includes(s)), `${where}: type imports not declared`).toEqual([])
      // Nothing is installed for users that neither the code nor the types use.
      expect(deps.filter((d) => !atRuntime.has(d) && !inTypes.has(d)), `${where}: unused dependencies`).toEqual([])
    }
    expect(packed.find((p) => p.manifest.name === '@idctx/kafkajs')?.manifest.peerDependenciesMeta).toEqual({ kafkajs: { optional: true } })
    expect(packed.find((p) => p.manifest.name === '@idctx/core')?.manifest.dependencies).toEqual({ zod: expect.any(String) })
    // express and fastify are typed structurally: neither is a dependency or a peer of the ingress
    expect(packed.find((p) => p.manifest.name === '@idctx/ingress')?.manifest).toMatchObject({ dependencies: { '@idctx/core': expect.any(String), jose: expect.any(String), zod: expect.any(String) } })
    expect(packed.find((p) => p.manifest.name === '@idctx/ingress')?.manifest.peerDependencies).toBeUndefined()
  })

  it('publint (strict) passes on every tarball', async () => {
    for (const p of packed) {
      const r = await run(bin('publint'), ['run', p.tarball, '--strict'], work)
      expect(r.stdout, p.manifest.name).toContain('All good!')
    }
  })

  it('are-the-types-wrong passes on every tarball; the only ignored rule is require() resolving to ESM', async () => {
    // Node >= 20.19 (engines) loads ES modules from require(), and TypeScript >= 5.8 models that
    // under --module nodenext (user.cts below compiles). attw's bundled TypeScript predates that,
    // so it still reports CJSResolvesToESM; every other rule stays on, for every resolution mode.
    for (const p of packed) {
      const r = await run(bin('attw'), [p.tarball, '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'table-flipped', '--no-color', '--no-emoji'], work)
      expect(r.stdout, p.manifest.name).not.toMatch(/No types|Resolution failed|Masquerading|Missing `export =`|Internal resolution error/)
    }
  })
})

describe('installed from the tarballs into a fresh npm project (bullmq 6)', () => {
  it('ESM: a signed Kafka round trip, a signed BullMQ job, the Redis replay store', async () => {
    const r = resultOf(await timed('smoke.mjs', run(process.execPath, ['smoke.mjs'], current, services(), 90_000)))
    expectSmoke(r, 'esm')
  })

  it('CommonJS: the same through require()', async () => {
    const r = resultOf(await timed('smoke.cjs', run(process.execPath, ['smoke.cjs'], current, services(), 90_000)))
    expectSmoke(r, 'cjs')
  })

  it('TypeScript --strict --module nodenext: a user ESM file, a CommonJS file and every README block compile', async () => {
    const blocks = [...readmeBlocks().keys()]
    expect(blocks.length).toBeGreaterThanOrEqual(9)
    const listed = await timed('tsc (bullmq 6)', run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.', '--listFilesOnly'], current))
    for (const f of ['user.ts', 'user.cts', ...blocks]) expect(listed.stdout).toContain(join(current, f))
    // The packages' types come from the tarballs, not from the workspace sources.
    expect(listed.stdout).toContain(join(current, 'node_modules/@idctx/core/dist/index.d.ts'))
    expect(listed.stdout.split('\n').filter((f) => f.startsWith(root) && !f.includes('/node_modules/typescript/lib/'))).toEqual([])
    await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], current)
  })
})

describe('installed beside the latest BullMQ 5.x', () => {
  it('a signed job runs in the wrapped processor, a copy is replayed, and the user files compile', async () => {
    const version = (JSON.parse(readFileSync(join(legacy, 'node_modules/bullmq/package.json'), 'utf8')) as { version: string }).version
    expect(version).toMatch(/^5\./)
    const r = resultOf(await timed('smoke.mjs (bullmq 5)', run(process.execPath, ['smoke.mjs'], legacy, services({ IDCTX_SMOKE_ONLY: 'bullmq' }), 90_000)))
    expectSmoke(r, 'esm', { kafka: false })
    await timed('tsc (bullmq 5)', run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], legacy))
    console.log(`[pack] bullmq ${version}: signed round trip, replay rejection and strict compile passed`)
  })
})

function expectSmoke(r: Record<string, any>, mode: string, { kafka = true } = {}): void {
  expect(r.mode).toBe(mode)
  if (kafka) {
    expect(r.kafka.seen).toEqual([{ key: 'o-1', sub: 'u-pack', tid: 'acme', txn: expect.any(String), iss: 'orders', current: 'u-pack' }])
    expect(r.kafka.txnMatches).toBe(true)
    expect(r.kafka.dispositions).toEqual([{ reason: 'missing', target: expect.stringMatching(/\.idctx-dlq$/) }])
  } else expect(r.kafka).toBeUndefined()
  expect(r.bullmq.processed).toEqual([{ id: 'inv-1', data: { invoiceId: 'inv-1', tenant: 'acme' }, sub: 'u-pack', tid: 'acme', txnMatches: true }])
  expect(r.bullmq.carrierKept).toBe(true)
  expect(r.bullmq.failed).toEqual([{ id: 'inv-1-copy', message: 'idctx rejected: replayed' }])
  // One replay entry per verified message: the Kafka record and the job (the copy found the job's).
  expect(r.replayKeys).toBe(kafka ? 2 : 1)
}
