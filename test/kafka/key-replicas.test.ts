import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import {
  advanceKeySet,
  createKeySet,
  createRemoteJwks,
  createVerifier,
  exportKeySet,
  generateKey,
  importKeySet,
  type KeySetDocument,
  type RemoteJwks,
  type RemoteJwksOptions,
} from '@idctx/core'
import { wrapConsumer } from '@idctx/kafkajs'
import type { RetryOptions } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { recordingThrows, type Thrown } from './jwks-server.js'
import { AUDIENCE, BROKERS, KafkaHarness, RecordingObserver, rejectReason, uniqueName, waitFor } from './helpers.js'

// Replicas of one producing service as separate OS processes (test/kafka/replica.ts), each serving
// its public JWKS with createJwksHandler; one consumer whose remote JWKS points at ONE replica, as
// a load balancer would give any one.

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '../..')
const REPLICA_SCRIPT = join(here, 'replica.ts')
const ISSUER = 'svc-orders'
const RETRY: RetryOptions = { retries: 50, initialRetryTime: 100, maxRetryTime: 1000 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const h = new KafkaHarness('keyrep')
const children = new Set<ChildProcess>()
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await h.close()
})

interface Sent {
  readonly replica: string
  readonly key: string
  readonly kid: string
}

interface Replica {
  readonly name: string
  readonly url: string
  readonly active: string
  readonly staged: string | null
  /** Stops it (SIGTERM): the record in flight is finished, then the process exits. */
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

/**
 * Starts one replica process. `keySet` is the shared private document, handed over as the
 * replica's environment variable IDCTX_KEYSET; without it the replica generates its own key.
 */
async function startReplica(options: {
  name: string
  generation: string
  topic: string
  sent: Sent[]
  keySet?: string
  port?: number
  count?: number
  intervalMs?: number
}): Promise<Replica> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KAFKA_BROKERS: BROKERS.join(','),
    REPLICA: options.name,
    GENERATION: options.generation,
    ISSUER,
    AUDIENCE,
    TOPIC: options.topic,
    PORT: String(options.port ?? 0),
    COUNT: String(options.count ?? 0),
    INTERVAL_MS: String(options.intervalMs ?? 50),
    IDCTX_KEYSET: options.keySet ?? '',
  }
  const child = spawn(process.execPath, ['--conditions=@idctx/source', '--import', 'tsx', REPLICA_SCRIPT], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => void (stderr = (stderr + d.toString('utf8')).slice(-4000)))
  const exited = new Promise<string | number>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? 'unknown')))
  void exited.then(() => children.delete(child))
  const ready = new Promise<{ url: string; active: string; staged: string | null }>((resolveReady, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const e = JSON.parse(line) as { event: string; url?: string; active?: string; staged?: string | null; key?: string; kid?: string }
      if (e.event === 'ready') resolveReady({ url: e.url as string, active: e.active as string, staged: e.staged ?? null })
      if (e.event === 'sent') options.sent.push({ replica: options.name, key: e.key as string, kid: e.kid as string })
    })
    void exited.then((code) => reject(new Error(`replica ${options.name} exited with ${String(code)} before it was ready: ${stderr}`)))
  })
  const info = await Promise.race([ready, sleep(30_000).then(() => Promise.reject(new Error(`replica ${options.name} not ready: ${stderr}`)))])
  return {
    name: options.name,
    ...info,
    async stop() {
      child.kill('SIGTERM')
      const code = await exited
      if (code !== 0) throw new Error(`replica ${options.name} exited with ${String(code)}: ${stderr}`)
    },
  }
}

/** A verifying consumer of the topic whose only key source is the JWKS at `url`. */
async function startConsumer(topic: string, url: string, remoteOptions: RemoteJwksOptions) {
  const remote: RemoteJwks = createRemoteJwks(url, remoteOptions)
  const observer = new RecordingObserver()
  const verifier = createVerifier({ audience: AUDIENCE, issuers: { [ISSUER]: remote }, observer })
  expect(await verifier.ready()).toEqual({ ok: true, issuers: { [ISSUER]: { ok: true } } })
  const handled: string[] = []
  const thrown: Thrown[] = []
  const consumer = wrapConsumer(recordingThrows(h.consumer({ retry: RETRY }), thrown), {
    verifier,
    tenant: 'acme',
    observer,
    deadLetter: { producer: await h.producer() },
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })
  return { remote, observer, handled, thrown, stop: () => consumer.disconnect() }
}

const newDocument = (name: string): string =>
  JSON.stringify(exportKeySet(createKeySet({ active: generateKey('EdDSA', { kid: uniqueName(`${name}-k1`) }) })))

const byKey = (a: string, b: string) => a.localeCompare(b)

describe('replicas of one producing service', () => {
  it('3 replicas loading one key set document (IDCTX_KEYSET), the consumer fetching one replica’s JWKS: 0 rejects', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('shared')
    const doc = newDocument('shared') // generated once, handed to every replica
    const sent: Sent[] = []
    const replicas = await Promise.all(
      ['a', 'b', 'c'].map((name) => startReplica({ name, generation: `shared-${name}`, topic, sent, keySet: doc, count: 20, intervalMs: 10 })),
    )
    // Every replica publishes the same JWKS (same body, same ETag) and signs with the same key.
    const answers = await Promise.all(replicas.map(async (r) => {
      const res = await fetch(r.url)
      return { etag: res.headers.get('etag'), cacheControl: res.headers.get('cache-control'), body: await res.text() }
    }))
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1)
    expect(answers[0]?.cacheControl).toBe('public, max-age=1')
    const active = (JSON.parse(doc) as KeySetDocument).active
    expect(replicas.map((r) => r.active)).toEqual([active, active, active])

    const c = await startConsumer(topic, (replicas[1] as Replica).url, { cooldownMs: 1000, timeoutMs: 1000 })
    await waitFor('60 records sent', () => sent.length === 60, 30_000)
    await waitFor('60 records handled', () => c.handled.length === 60, 30_000)
    await Promise.all(replicas.map((r) => r.stop()))
    expect([...c.handled].sort(byKey)).toEqual(sent.map((s) => s.key).sort(byKey))
    expect(c.observer.dispositions).toEqual([])
    expect(await h.recordCount(dlq)).toBe(0)
    expect(c.observer.kids).toEqual(new Set([active]))
    await c.stop()
    console.log(`[key-replicas] shared key set: 3 replicas × 20 = ${sent.length} records, ${c.handled.length} handled, 0 rejects, ${c.remote.fetches} JWKS fetch(es)`)
  })

  it('counter-case: replicas that each generate their own key — the consumer rejects the other replicas’ records as unknown_kid (exactly 2/3)', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('own')
    const sent: Sent[] = []
    const replicas = await Promise.all(
      ['a', 'b', 'c'].map((name) => startReplica({ name, generation: `own-${name}`, topic, sent, count: 20, intervalMs: 10 })),
    )
    expect(new Set(replicas.map((r) => r.active)).size).toBe(3)
    const seen = replicas[2] as Replica // the one the consumer's URL happens to reach
    const c = await startConsumer(topic, seen.url, { cooldownMs: 1000, timeoutMs: 1000 })
    await waitFor('60 records sent', () => sent.length === 60, 30_000)
    await waitFor('60 records handled or dead-lettered', () => c.handled.length + c.observer.dispositions.length === 60, 30_000)
    await Promise.all(replicas.map((r) => r.stop()))
    const own = sent.filter((s) => s.replica === seen.name).map((s) => s.key)
    const others = sent.filter((s) => s.replica !== seen.name).map((s) => s.key)
    expect([...c.handled].sort(byKey)).toEqual(own.sort(byKey))
    const dead = await h.readAll(dlq)
    expect(dead).toHaveLength(40)
    expect(dead.map((r) => r.key as string).sort(byKey)).toEqual(others.sort(byKey))
    expect(new Set(dead.map(rejectReason))).toEqual(new Set(['unknown_kid']))
    await c.stop()
    console.log(`[key-replicas] own key per replica: ${sent.length} records, ${c.handled.length} handled, ${dead.length} unknown_kid (${c.remote.fetches} JWKS fetches)`)
  })

  it('rotation as deploy steps (advanceKeySet: stage → deploy → wait → rotate → deploy → prune) while the replicas keep sending: 0 rejects', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('rotate')
    // The consumer's JWKS cache and the JWKS response's Cache-Control decide how long a staged key
    // must be published before it signs: stageForMs ≥ maxAgeMs + max-age (1 s, see replica.ts).
    const maxAgeMs = 1000
    const stageForMs = maxAgeMs + 1000
    // In production at least maxLifetimeSeconds + clockToleranceSeconds; short here, the records are consumed at once.
    const retireForMs = 2000
    const names = ['a', 'b', 'c']
    const jwksPort = await freePort() // replica a's: the one the consumer's JWKS URL reaches
    const sent: Sent[] = []
    let doc = newDocument('rotate')
    const k1 = (JSON.parse(doc) as KeySetDocument).active
    const start = (i: number, generation: string) =>
      startReplica({ name: names[i] as string, generation: `${generation}-${names[i] as string}`, topic, sent, keySet: doc, port: i === 0 ? jwksPort : 0, intervalMs: 50 })
    let replicas = await Promise.all(names.map((_, i) => start(i, 'g0')))
    const c = await startConsumer(topic, (replicas[0] as Replica).url, { cooldownMs: 1000, timeoutMs: 1000, maxAgeMs })
    await waitFor('every replica sending', () => names.every((n) => sent.filter((s) => s.replica === n).length >= 5), 30_000)

    /**
     * A rolling deploy of a new document: replica a (behind the consumer's JWKS URL) is stopped,
     * then started again on its port; b and c are replaced surge-style (the new one starts, then
     * the old one stops). Old and new documents sign side by side meanwhile.
     */
    const rollOut = async (generation: string) => {
      replicas = await Promise.all(
        replicas.map(async (old, i) => {
          if (i === 0) {
            await old.stop()
            return start(i, generation)
          }
          const next = await start(i, generation)
          await old.stop()
          return next
        }),
      )
    }

    // Step 1 — stage: the new key is published by every replica, nothing signs with it yet.
    const staged = advanceKeySet(doc, { stageForMs, retireForMs })
    expect(staged.action).toBe('staged')
    const k2 = staged.kid
    doc = JSON.stringify(staged.document)
    await rollOut('g1')
    expect(replicas.map((r) => [r.active, r.staged])).toEqual(names.map(() => [k1, k2]))
    // Wait stageForMs from the end of the roll-out: every verifier has refreshed meanwhile.
    await sleep(stageForMs)
    expect(c.remote.get(k2)?.kid).toBe(k2) // the consumer knows the staged key before it signs

    // Step 2 — rotate: the staged key signs, the old one retires (still published).
    const rotated = advanceKeySet(doc, { stageForMs, retireForMs })
    expect([rotated.action, rotated.kid, rotated.pruned]).toEqual(['rotated', k2, []])
    doc = JSON.stringify(rotated.document)
    await rollOut('g2')
    expect(replicas.map((r) => r.active)).toEqual(names.map(() => k2))
    await sleep(retireForMs) // no replica has signed with k1 since the end of the roll-out

    // Step 3 — prune: the retired key leaves the document (and the next key is staged). That
    // document is the next deploy; replicas restarted with it no longer publish k1.
    const pruned = advanceKeySet(doc, { stageForMs, retireForMs })
    expect([pruned.action, pruned.pruned]).toEqual(['staged', [k1]])
    expect(importKeySet(JSON.stringify(pruned.document)).jwks().keys.map((k) => k.kid)).toEqual([k2, pruned.kid])
    await waitFor('records of the rotated generation', () => sent.filter((s) => s.key.startsWith('g2-')).length >= 15, 30_000)
    await Promise.all(replicas.map((r) => r.stop()))

    await waitFor(`${sent.length} records handled`, () => c.handled.length + c.observer.dispositions.length >= sent.length, 30_000)
    expect(c.observer.dispositions).toEqual([])
    expect(await h.recordCount(dlq)).toBe(0)
    expect([...c.handled].sort(byKey)).toEqual(sent.map((s) => s.key).sort(byKey))
    const byKid = (kid: string) => sent.filter((s) => s.kid === kid).length
    expect(byKid(k1) + byKid(k2)).toBe(sent.length)
    expect(byKid(k1)).toBeGreaterThan(0)
    expect(byKid(k2)).toBeGreaterThan(0)
    expect(c.observer.kids).toEqual(new Set([k1, k2]))
    // Staged first, so the consumer never met an unknown kid: no retry was needed.
    expect(c.thrown).toEqual([])
    await c.stop()
    console.log(
      `[key-replicas] rotation: ${sent.length} records (${byKid(k1)} signed by k1, ${byKid(k2)} by k2) over 2 rolling deploys of 3 replicas, ` +
        `0 rejects, 0 KeyError retries, ${c.remote.fetches} JWKS fetches`,
    )
  })
})

describe('core: a key set document with a staged key but no stagedAt', () => {
  // importKeySet used to stamp "now" on such a document at every load, so advanceKeySet answered
  // `waiting` forever and every replica believed the key was staged when it started.
  it('is refused by importKeySet instead of waiting forever in advanceKeySet', () => {
    const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'k-active' }), staged: generateKey('EdDSA', { kid: 'k-staged' }), stagedAt: 1 })
    const document: KeySetDocument = { ...exportKeySet(keys), stagedAt: null }
    const years = 10 * 365 * 86_400_000
    const step = () => advanceKeySet(document, { now: Date.now() + years, stageForMs: 1000 })
    expect(step).toThrow(/stagedAt/)
  })
})
