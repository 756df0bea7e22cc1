/**
 * The replay suite of a consumer group whose instances are separate OS processes sharing the
 * Redis replay store (one Redis, or a Redis Cluster): replays sent to a partition owned by another
 * instance are dead-lettered, and rebalance churn (an instance joins, one is SIGKILLed mid-stream)
 * makes no false `replayed` and loses nothing.
 */
import { randomUUID } from 'node:crypto'
import { createSigner, exportPublicJwk, generateKey, runWithContext } from '@idctx/core'
import { headerString, IdctxHeader, wrapProducer } from '@idctx/kafkajs'
import { expect } from 'vitest'
import { AUDIENCE, BROKERS, KafkaHarness, uniqueName, waitFor } from '../kafka/helpers.js'
import { startInstance, stopAll, type Instance } from './children.js'
import type { KafkaInstanceConfig, KafkaInstanceMessage } from './procs/kafka-instance.js'
import type { RedisTarget } from './procs/ipc.js'

const PARTITIONS = 6
const REPLAYS = 200
const CTX = { sub: 'u-42', tid: 'acme', txn: randomUUID(), pty: 'user' as const }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type Handled = Extract<KafkaInstanceMessage, { type: 'handled' }>

export interface GroupScenarioResult {
  readonly genuine: number
  readonly replaysDetected: number
  readonly rejectedBy: Record<string, number>
  readonly redeliveredToAnother: number
}

/**
 * Runs the scenario against `redis`; `victim` is the instance SIGKILLed mid-stream ('a':
 * eachMessage, 'b': eachBatch; 'c', eachBatch, is the one that joins).
 */
export async function groupReplayScenario(redis: RedisTarget, victim: 'a' | 'b'): Promise<GroupScenarioResult> {
  const h = new KafkaHarness('idctx-redis-group')
  const instances: Instance<KafkaInstanceMessage>[] = []
  let producing = true
  let stream: Promise<void> | undefined
  try {
    const { topic, dlq } = await h.createTopicWithDlq('redis-group', PARTITIONS)
    const key = generateKey('EdDSA', { kid: uniqueName('orders') })
    const wrapped = wrapProducer(await h.producer(), { signer: createSigner({ issuer: 'orders', audience: AUDIENCE, key }) })
    const plain = await h.producer()
    const base: Omit<KafkaInstanceConfig, 'variant' | 'autoCommit'> = {
      brokers: BROKERS,
      topic,
      groupId: uniqueName('redis-group'),
      redis,
      prefix: `test:${randomUUID()}:`,
      issuer: 'orders',
      audience: AUDIENCE,
      tenant: 'acme',
      jwk: exportPublicJwk(key),
    }

    // What the instances report.
    const assigned = new Map<string, number[]>()
    const handledBy = new Map<string, Set<string>>() // coordinates → instances
    const firstHandled = new Map<string, Handled>() // genuine key → its record
    const rejected: { instance: string; reason: string; coordinates: string | undefined }[] = []
    let unverified = 0
    let assignments = 0 // partition assignments reported so far (one per member per rebalance)
    const fatal: string[] = []
    // A probe that fails the wait as soon as an instance reports a fatal error.
    const until = <T>(probe: () => T) => () => {
      if (fatal.length > 0) throw new Error(`instance failed: ${fatal.join('; ')}`)
      return probe()
    }
    const start = (name: string, variant: KafkaInstanceConfig['variant']) => {
      // The victim never commits: all it handles goes to the others again after the SIGKILL.
      const config: KafkaInstanceConfig = { ...base, variant, autoCommit: name !== victim }
      const i = startInstance<KafkaInstanceMessage>(name, './procs/kafka-instance.ts', config)
      instances.push(i)
      i.onMessage((m) => {
        if (m.type === 'assigned') {
          assigned.set(name, m.partitions)
          assignments++
        }
        else if (m.type === 'rejected') rejected.push({ instance: name, reason: m.reason, coordinates: m.coordinates })
        else if (m.type === 'fatal') fatal.push(`${name}: ${m.message}`)
        else if (m.type === 'handled') {
          if (m.sub !== CTX.sub || m.tid !== CTX.tid) unverified++
          const at = `${topic}/${m.partition}/${m.offset}`
          const by = handledBy.get(at) ?? new Set<string>()
          by.add(name)
          handledBy.set(at, by)
          if (!firstHandled.has(m.key)) firstHandled.set(m.key, m)
        }
      })
      return i
    }
    const ownerOf = (partition: number) => [...assigned].find(([, ps]) => ps.includes(partition))?.[0]
    const stable = (names: readonly string[]) => {
      const all = names.flatMap((n) => assigned.get(n) ?? [])
      return names.every((n) => (assigned.get(n)?.length ?? 0) > 0) && all.length === PARTITIONS && new Set(all).size === PARTITIONS
    }

    // The dead-letter topic, read as it fills: original coordinates and reason of each record.
    const dead: { coordinates: string; reason: string | undefined }[] = []
    const reader = h.consumer()
    await reader.connect()
    await reader.subscribe({ topics: [dlq], fromBeginning: true })
    await reader.run({
      eachMessage: async ({ message }) => {
        const hd = message.headers ?? {}
        dead.push({
          coordinates: `${headerString(hd, IdctxHeader.OriginalTopic)}/${headerString(hd, IdctxHeader.OriginalPartition)}/${headerString(hd, IdctxHeader.OriginalOffset)}`,
          reason: headerString(hd, IdctxHeader.RejectReason),
        })
      },
    })

    // Genuine records, 5 per send, all along.
    const genuine = new Set<string>()
    let n = 0
    stream = (async () => {
      while (producing) {
        const messages = Array.from({ length: 5 }, () => {
          const k = `g-${n++}`
          return { key: k, value: JSON.stringify({ k, tenant: 'acme' }) }
        })
        await runWithContext(CTX, () => wrapped.send({ topic, messages }))
        for (const m of messages) genuine.add(m.key)
        await sleep(40)
      }
    })()
    stream.catch(() => undefined) // awaited below

    // Two instances, then a third joins.
    start('a', 'eachMessage')
    start('b', 'eachBatch')
    await waitFor('a and b to share the partitions', until(() => stable(['a', 'b'])), 45_000)
    await waitFor('records handled by a and b', until(() => firstHandled.size >= 50), 30_000)
    start('c', 'eachBatch')
    await waitFor('a, b and c to share the partitions', until(() => stable(['a', 'b', 'c'])), 45_000)
    await waitFor(`${2 * REPLAYS} genuine records handled`, until(() => firstHandled.size >= 2 * REPLAYS), 30_000)

    // Replays: an exact copy (key, value, headers) of a handled record, sent to a partition that
    // an instance owns which did not handle the original; spread evenly over the three instances.
    const copies = new Map<string, ReadonlySet<string>>() // copy coordinates → the instances that had handled the original
    const aimedAt = assignments
    const perOwner = new Map<string, number>()
    const used = new Set<string>()
    const deadline = Date.now() + 30_000
    // Records handled by two instances already (moved by the join) fit one owner only: while the
    // owners still short of their share have no candidate, wait for more handled records.
    while (copies.size < REPLAYS) {
      let progress = false
      for (const o of [...firstHandled.values()]) {
        if (copies.size === REPLAYS) break
        if (used.has(o.key)) continue
        const handlers = handledBy.get(`${topic}/${o.partition}/${o.offset}`) ?? new Set<string>()
        const eligible = Array.from({ length: PARTITIONS }, (_, p) => p)
          .map((p) => ({ p, owner: ownerOf(p) as string }))
          .filter(({ owner }) => owner !== undefined && !handlers.has(owner) && (perOwner.get(owner) ?? 0) < Math.ceil(REPLAYS / 3))
          .sort((x, y) => (perOwner.get(x.owner) ?? 0) - (perOwner.get(y.owner) ?? 0))
        const target = eligible[0]
        if (target === undefined) continue
        used.add(o.key)
        progress = true
        // Who had handled the original when the copy was aimed (the set grows meanwhile: a
        // redelivery of the original to the target instance is no fault of the copy).
        const before: ReadonlySet<string> = new Set(handlers)
        perOwner.set(target.owner, (perOwner.get(target.owner) ?? 0) + 1)
        const [meta] = await plain.send({ topic, messages: [{ partition: target.p, key: o.key, value: o.value, headers: o.headers }] })
        copies.set(`${topic}/${target.p}/${meta?.baseOffset}`, before)
      }
      if (copies.size < REPLAYS && !progress) {
        if (Date.now() > deadline) throw new Error(`only ${copies.size} replays could be aimed at another instance`)
        await sleep(200)
      }
    }
    expect(copies.size).toBe(REPLAYS)
    const deadSet = () => new Set(dead.map((d) => d.coordinates))
    await waitFor(`${REPLAYS} replays in the dead-letter topic`, () => [...copies.keys()].every((c) => deadSet().has(c)), 30_000)
    const detected = [...copies.keys()].filter((c) => dead.some((d) => d.coordinates === c && d.reason === 'replayed')).length
    expect(detected).toBe(REPLAYS)
    for (const c of copies.keys()) expect(handledBy.has(c)).toBe(false)
    // Each copy was rejected by an instance that had not handled the original. (Only a rebalance
    // after the copies were aimed — the group reassigning under load — may hand a copy to an
    // instance that did: it is rejected all the same, and reported below.)
    const rejecters = (c: string) => new Set(rejected.filter((r) => r.coordinates === c).map((r) => r.instance))
    const byAnother = (c: string) => [...rejecters(c)].some((i) => !(copies.get(c) as ReadonlySet<string>).has(i))
    const byAny = (c: string) => rejecters(c).size > 0
    await waitFor('every instance to report its rejections', until(() => [...copies.keys()].every(byAny)), 10_000)
    await waitFor('the rejections of another instance', until(() => [...copies.keys()].every(byAnother) || assignments > aimedAt), 5_000).catch(() => undefined)
    const local = [...copies.keys()].filter((c) => !byAnother(c))
    if (local.length > 0) {
      console.log(`[redis group] ${local.length} copies were rejected only by the instance that had handled the original, after a rebalance (${assignments - aimedAt} assignments since the copies were aimed)`)
      expect(assignments).toBeGreaterThan(aimedAt)
    }
    expect(local.length).toBeLessThan(REPLAYS / 2)
    const rejectedBy: Record<string, number> = {}
    for (const r of rejected) rejectedBy[r.instance] = (rejectedBy[r.instance] ?? 0) + 1
    // Every instance caught some: a (eachMessage), b and c (eachBatch).
    for (const i of ['a', 'b', 'c']) expect(rejectedBy[i] ?? 0).toBeGreaterThan(0)

    // Churn: one instance is SIGKILLed while records flow; its partitions move to the others
    // after the session timeout, and what it handled without committing is redelivered there.
    await sleep(500)
    await (instances.find((i) => i.name === victim) as Instance<KafkaInstanceMessage>).kill()
    await sleep(2_000)
    producing = false
    await stream
    const survivors = ['a', 'b', 'c'].filter((x) => x !== victim)
    await waitFor(
      'every genuine record to be handled',
      until(() => [...genuine].every((k) => firstHandled.has(k)) && stable(survivors)),
      45_000,
    )
    // Let redeliveries settle, then nothing but the deliberate copies may be in the DLQ.
    await sleep(1_000)

    const lost = [...genuine].filter((k) => !firstHandled.has(k))
    expect(lost).toEqual([])
    expect(unverified).toBe(0)
    const falseReplays = dead.filter((d) => !copies.has(d.coordinates))
    expect(falseReplays).toEqual([])
    expect(dead.every((d) => d.reason === 'replayed')).toBe(true)
    expect(rejected.filter((r) => r.coordinates === undefined || !copies.has(r.coordinates))).toEqual([])
    const redeliveredToAnother = [...handledBy.values()].filter((s) => s.size > 1).length
    // Everything the victim handled went to another instance again, at the same coordinates.
    const byVictim = [...handledBy.values()].filter((s) => s.has(victim))
    expect(byVictim.length).toBeGreaterThan(0)
    expect(byVictim.filter((s) => s.size < 2)).toEqual([])
    await reader.stop()
    return { genuine: genuine.size, replaysDetected: detected, rejectedBy, redeliveredToAnother }
  } finally {
    producing = false
    await stream?.catch(() => undefined)
    await stopAll(instances)
    await h.close()
  }
}
