import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Job, Queue } from 'bullmq'
import { createProcessor } from '@idctx/bullmq'
import { createKeySet, createMemoryReplayStore, createRemoteJwks, createVerifier, exportKeySet, generateKey } from '@idctx/core'
import { Redis } from 'ioredis'
import { Kafka, logLevel } from 'kafkajs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CUSTOMERS } from '@idctx/example-demo'
import { asExpected, runAttacks, type AttackOutcome } from '../../examples/attacker/src/attacker.js'

// The docker example cluster (docker/compose.yaml), started for real: `docker compose up`, every
// container healthy, then the demo's traffic and the attacker's attacks against the published
// ports (with the orders signing key, as the demo has it), and the same outcomes the demo asserts
// (test/examples/demo-flow.test.ts). Run by
// `npm run test:docker` (scripts/docker.mjs), which provides the engine and the images; this file
// starts the cluster and always tears it down.

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const compose: string[] = process.env.IDCTX_COMPOSE
  ? (JSON.parse(process.env.IDCTX_COMPOSE) as string[])
  : ['docker-compose', '-f', join(root, 'docker/compose.yaml'), '-p', 'idctx-docker-test']
const composeArgs = [...compose, '-f', join(root, 'test/docker/compose.published.yaml')]
const ORDERS = 12
const HEALTH_TIMEOUT_MS = 300_000

/** Every attack of examples/attacker, the hop that must stop it and the exact reason (as in the demo test). */
const ATTACKS: Record<string, { hop: string; reason: string }> = {
  'expired-user-jwt': { hop: 'gateway', reason: 'expired' },
  'unknown-idp': { hop: 'gateway', reason: 'unknown_kid' },
  'bypass-gateway': { hop: 'orders', reason: 'missing' },
  'forged-token': { hop: 'billing', reason: 'bad_signature' },
  'expired-token': { hop: 'billing', reason: 'expired' },
  'cross-tenant': { hop: 'billing', reason: 'tenant_mismatch' },
  'lifted-header': { hop: 'billing', reason: 'binding_mismatch' },
  'replay-same-topic': { hop: 'billing', reason: 'replayed' },
  'replay-other-topic': { hop: 'billing', reason: 'binding_mismatch' },
  'job-copied': { hop: 'invoice-worker', reason: 'replayed' },
  'job-tampered': { hop: 'invoice-worker', reason: 'binding_mismatch' },
}
/**
 * The orders service's signing keys, given to its container as its key set document (IDCTX_KEYSET):
 * the test holds them too, for the two attacks that stand for a compromised orders producer.
 */
const ordersKeys = createKeySet({ active: generateKey('EdDSA', { kid: `orders-docker-test-${Date.now().toString(36)}` }) })

interface Run {
  code: number
  out: string
}

function run(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const [cmd, ...rest] = args
    const child = spawn(cmd as string, rest, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolvePromise({ code: code ?? 1, out })
    })
  })
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(250)
  }
}

interface HopStats {
  accepted: number
  rejected: Record<string, number>
  dispositions: Record<string, number>
  invoices?: Record<string, number>
}

interface Placed {
  tenant: string
  user: string
  amount: number
  priority: boolean
  status: number
  orderId: string | undefined
  txn: string | undefined
}

const ports = { idp: 0, gateway: 0, kafka: 0, orders: 0, billing: 0, worker: 0, redis: 0 }
let env: NodeJS.ProcessEnv
const url = (port: number, path = '') => `http://127.0.0.1:${port}${path}`
const timings: Record<string, number> = {}
let started = false
let failed = false
let placed: Placed[] = []
let attacks: AttackOutcome[] = []
let bait: { orderId: string; amount: number } | undefined

async function stats(port: number): Promise<HopStats> {
  const res = await fetch(url(port, '/stats'))
  return (await res.json()) as HopStats
}

/** `docker inspect` of every container of the project: name → health (or state without a healthcheck). */
async function containerStates(): Promise<Record<string, string>> {
  const ids = (await run([...composeArgs, 'ps', '-q'], env)).out.split('\n').map((s) => s.trim()).filter((s) => /^[0-9a-f]{12,}$/.test(s))
  if (ids.length === 0) return {}
  const format = '{{index .Config.Labels "com.docker.compose.service"}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}} {{.RestartCount}}'
  const r = await run(['docker', 'inspect', '--format', format, ...ids], env)
  const states: Record<string, string> = {}
  for (const line of r.out.split('\n')) {
    const m = /^([a-z-]+) (\S+) (\d+)$/.exec(line.trim())
    if (m) states[m[1] as string] = m[3] === '0' ? (m[2] as string) : `${m[2] as string} (restarted ${m[3] as string}×)`
  }
  return states
}

const SERVICES = ['billing', 'gateway', 'identity-provider', 'invoice-worker', 'kafka', 'orders', 'redis']

beforeAll(async () => {
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort()
  env = {
    ...process.env,
    IDCTX_IDP_PORT: String(ports.idp),
    IDCTX_GATEWAY_PORT: String(ports.gateway),
    IDCTX_KAFKA_PORT: String(ports.kafka),
    IDCTX_KAFKA_HOST: '127.0.0.1',
    IDCTX_TEST_ORDERS_PORT: String(ports.orders),
    IDCTX_TEST_BILLING_PORT: String(ports.billing),
    IDCTX_TEST_WORKER_PORT: String(ports.worker),
    IDCTX_TEST_REDIS_PORT: String(ports.redis),
    IDCTX_ORDERS_KEYSET: JSON.stringify(exportKeySet(ordersKeys)),
  }
  const t0 = Date.now()
  started = true
  failed = true // until every container is healthy: the logs are printed if it never is
  const up = await run([...composeArgs, 'up', '-d'], env)
  if (up.code !== 0) throw new Error(`docker-compose up failed (exit ${up.code}):\n${up.out}`)
  await until('every container healthy', HEALTH_TIMEOUT_MS, async () => {
    const s = await containerStates()
    return SERVICES.every((name) => s[name] === 'healthy') ? s : undefined
  })
  timings.upHealthy = Date.now() - t0
  failed = false
}, HEALTH_TIMEOUT_MS + 120_000)

beforeEach((ctx) => {
  ctx.onTestFailed(() => {
    failed = true
  })
})

afterAll(async () => {
  if (!started) return
  const states = await containerStates().catch(() => ({}))
  if (failed || Object.values(states).some((s) => s !== 'healthy')) {
    const logs = await run([...composeArgs, 'logs', '--no-color', '--tail', '60'], env)
    console.log(`container states: ${JSON.stringify(states)}\n${logs.out}`)
  }
  const t0 = Date.now()
  const down = await run([...composeArgs, '--profile', 'attack', 'down', '--volumes', '--remove-orphans', '--timeout', '10'], env)
  timings.down = Date.now() - t0
  console.log(`docker test times (s): ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(', ')}`)
  if (down.code !== 0) throw new Error(`docker-compose down failed:\n${down.out}`)
}, 180_000)

describe('the docker example cluster (docker/compose.yaml)', () => {
  it('starts every service healthy: Kafka, Redis, the identity provider, gateway, orders, billing, the invoice worker', async () => {
    const states = await containerStates()
    expect(states).toEqual(Object.fromEntries(SERVICES.map((s) => [s, 'healthy'])))
  })

  it('accepts the demo traffic at the gateway: orders of two tenants, Keycloak- and Auth0-shaped tokens', async () => {
    const t0 = Date.now()
    const tokens: string[] = []
    for (const c of CUSTOMERS) {
      const res = await fetch(url(ports.idp, '/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ shape: c.shape, user: c.user, tenant: c.tenant, roles: c.roles }),
      })
      expect(res.status).toBe(200)
      tokens.push(((await res.json()) as { access_token: string }).access_token)
    }
    // As examples/demo/src/traffic.ts: alternating customers, four at a time, every fourth a priority order.
    const items = ['widget', 'gadget', 'sprocket', 'gizmo', 'doohickey']
    const place = async (i: number): Promise<Placed> => {
      const c = i % CUSTOMERS.length
      const customer = CUSTOMERS[c] as (typeof CUSTOMERS)[number]
      const body = { item: items[i % items.length] as string, qty: 1 + (i % 3), amount: 12.5 * (i + 1), priority: i % 4 === 3 }
      const res = await fetch(url(ports.gateway, '/orders'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[c] as string}` },
        body: JSON.stringify(body),
      })
      const answer = (await res.json()) as { orderId?: unknown }
      return {
        tenant: customer.tenant,
        user: customer.user,
        amount: body.amount,
        priority: body.priority,
        status: res.status,
        orderId: typeof answer.orderId === 'string' ? answer.orderId : undefined,
        txn: res.headers.get('x-idctx-txn') ?? undefined,
      }
    }
    placed = []
    for (let i = 0; i < ORDERS; i += 4) {
      placed.push(...(await Promise.all(Array.from({ length: Math.min(4, ORDERS - i) }, (_, j) => place(i + j)))))
    }
    timings.traffic = Date.now() - t0
    expect(placed.map((p) => p.status)).toEqual(Array(ORDERS).fill(202))
    expect(placed.filter((p) => p.orderId === undefined || p.txn === undefined)).toEqual([])
  })

  it('carries every order end to end: an invoice job for the right tenant, user, amount and transaction', async () => {
    const t0 = Date.now()
    const perTenant = { acme: ORDERS / 2, globex: ORDERS / 2 }
    await until('an invoice for every order', 120_000, async () => {
      const s = await stats(ports.worker)
      return s.invoices?.acme === perTenant.acme && s.invoices.globex === perTenant.globex ? s : undefined
    })
    timings.invoiced = Date.now() - t0
    // The jobs as the worker verified them: a processor with the worker's verifier settings (billing's
    // JWKS over the published port, the queue's ACL) and a replay store of its own, run on each stored job.
    const verifier = createVerifier({
      audience: 'shop',
      issuers: { billing: createRemoteJwks(url(ports.billing, '/.well-known/idctx-jwks.json'), { allowInsecureHttp: true }) },
      producerAcl: { billing: { destinations: ['bullmq:invoices/*'] } },
      replay: createMemoryReplayStore(),
    })
    const seen = new Map<string, { iss: string; sub: string; tid: string; txn: string; amount: number; priority: boolean }>()
    const check = createProcessor<{ orderId: string; tenant: string; amount: number; priority: boolean }, void>(
      async (job, { identity }) => {
        seen.set(job.data.orderId, { iss: identity.claims.iss, sub: identity.sub, tid: identity.tid, txn: identity.txn, amount: job.data.amount, priority: job.data.priority })
      },
      { verifier, tenant: { any: true }, payloadTenant: (data) => data.tenant },
    )
    const queue = new Queue('invoices', { connection: { host: '127.0.0.1', port: ports.redis, maxRetriesPerRequest: null } })
    try {
      for (const p of placed) {
        const job = await Job.fromId(queue, `inv-${p.orderId as string}`)
        expect(job, `the invoice job of order ${p.orderId as string}`).toBeDefined()
        expect(await job?.getState()).toBe('completed')
        expect(job?.returnvalue).toEqual({ invoiceId: `inv-${p.orderId as string}`, created: true })
        await check(job as Job)
        // Signed by billing, for the user, tenant and transaction of the request at the gateway.
        expect(seen.get(p.orderId as string)).toEqual({ iss: 'billing', sub: p.user, tid: p.tenant, txn: p.txn, amount: p.amount, priority: p.priority })
      }
    } finally {
      await queue.close()
    }
  })

  it('rejects every attack at its hop with its exact reason', async () => {
    const t0 = Date.now()
    const report = await runAttacks(
      {
        kafkaBrokers: [`127.0.0.1:${ports.kafka}`],
        redisUrl: `redis://127.0.0.1:${ports.redis}`,
        audience: 'shop',
        idpUrl: url(ports.idp),
        gatewayUrl: url(ports.gateway),
        ordersUrl: url(ports.orders),
        topics: { orders: 'orders', priority: 'orders-priority' },
        queue: 'invoices',
        insider: { ordersKey: ordersKeys },
      },
      { timeoutMs: 90_000 },
    )
    timings.attacks = Date.now() - t0
    attacks = [...report.outcomes]
    bait = report.bait
    const got = Object.fromEntries(attacks.filter((a) => a.skipped === undefined).map((a) => [a.id, { hop: a.hop, reason: a.got }]))
    expect(got).toEqual(ATTACKS)
    expect(attacks.filter((a) => a.skipped !== undefined)).toEqual([])
    expect(attacks.filter((a) => !asExpected(a))).toEqual([])
  })

  it("counts, at every hop, each legitimate request as accepted and each attack on it as rejected by reason; the attacker's own order is invoiced once", async () => {
    const accepted = ORDERS + 1 // + the attacker's bait order, legitimate
    const expected = {
      gateway: { accepted, rejected: { expired: 1, unknown_kid: 1 }, dispositions: {} },
      orders: { accepted, rejected: { missing: 1 }, dispositions: {} },
      billing: {
        accepted,
        rejected: { bad_signature: 1, expired: 1, tenant_mismatch: 1, binding_mismatch: 2, replayed: 1 },
        dispositions: { 'orders.idctx-dlq': 5, 'orders-priority.idctx-dlq': 1 },
      },
      'invoice-worker': {
        accepted,
        rejected: { binding_mismatch: 1, replayed: 1 },
        dispositions: { failed: 2 },
        invoices: { acme: ORDERS / 2 + 1, globex: ORDERS / 2 },
      },
    }
    const sorted = (o: object) => JSON.parse(JSON.stringify(o, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v))) as unknown
    const read = async () => ({
      gateway: await stats(ports.gateway),
      orders: await stats(ports.orders),
      billing: await stats(ports.billing),
      'invoice-worker': await stats(ports.worker),
    })
    // Rejections are counted once dealt with (dead-lettered, failed): wait for the last ones.
    const hops = await until('the hop counters', 30_000, async () => {
      const h = await read()
      return JSON.stringify(sorted(h)) === JSON.stringify(sorted(expected)) ? h : undefined
    }).catch(read)
    expect(sorted(hops)).toEqual(sorted(expected))
    expect(bait).toBeDefined()
    const queue = new Queue('invoices', { connection: { host: '127.0.0.1', port: ports.redis, maxRetriesPerRequest: null } })
    try {
      const job = await Job.fromId(queue, `inv-${bait?.orderId as string}`)
      // Its job was rewritten in Redis and re-queued by the attack: that run failed, the invoice stays the first one.
      expect(await job?.getState()).toBe('failed')
    } finally {
      await queue.close()
    }
  })

  it('dead-letters every rejected record with its reason header and fails every rejected job with its reason', async () => {
    const kafka = new Kafka({ clientId: 'idctx-docker-test', brokers: [`127.0.0.1:${ports.kafka}`], logLevel: logLevel.NOTHING })
    const consumer = kafka.consumer({ groupId: `idctx-docker-test-${Date.now()}` })
    const dlq: Record<string, string[]> = {}
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: ['orders.idctx-dlq', 'orders-priority.idctx-dlq'], fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ topic, message }) => {
          const reason = message.headers?.['idctx-reject-reason']
          ;(dlq[topic] ??= []).push(Buffer.isBuffer(reason) ? reason.toString() : String(reason))
        },
      })
      await until('the dead-letter records', 60_000, async () =>
        (dlq['orders.idctx-dlq']?.length ?? 0) >= 5 && (dlq['orders-priority.idctx-dlq']?.length ?? 0) >= 1 ? true : undefined,
      ).catch(() => undefined)
      await sleep(1000) // anything more would show now
    } finally {
      await consumer.disconnect()
    }
    expect({ orders: dlq['orders.idctx-dlq']?.sort(), priority: dlq['orders-priority.idctx-dlq']?.sort() }).toEqual({
      orders: ['bad_signature', 'binding_mismatch', 'expired', 'replayed', 'tenant_mismatch'],
      priority: ['binding_mismatch'],
    })

    const redis = new Redis({ host: '127.0.0.1', port: ports.redis })
    try {
      const failed = await redis.zrange('bull:invoices:failed', 0, -1)
      const reasons: Record<string, string | null> = {}
      for (const id of failed) reasons[id.startsWith('atk-copy-') ? 'copied' : id] = await redis.hget(`bull:invoices:${id}`, 'failedReason')
      expect(reasons).toEqual({ copied: 'idctx rejected: replayed', [`inv-${bait?.orderId as string}`]: 'idctx rejected: binding_mismatch' })
    } finally {
      redis.disconnect()
    }
  })

  it('runs the attacker container (compose profile `attack`): every attack rejected, exit 0', async () => {
    const t0 = Date.now()
    const r = await run([...composeArgs, '--profile', 'attack', 'run', '--rm', 'attacker'], env, 180_000)
    timings.attackerContainer = Date.now() - t0
    expect(r.out).toContain('every attack was rejected with its expected reason')
    expect(r.out).not.toMatch(/^BAD /m)
    expect(r.code).toBe(0)
  })

  it('has no container that restarted or became unhealthy', async () => {
    expect(await containerStates()).toEqual(Object.fromEntries(SERVICES.map((s) => [s, 'healthy'])))
  })
})
