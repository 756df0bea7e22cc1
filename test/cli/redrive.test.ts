import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createMemoryReplayStore,
  createRemoteJwks,
  createSigner,
  createVerifier,
  generateKey,
  importKeySet,
  runWithContext,
  toJwks,
  type Jwks,
} from '@idctx/core'
import { headerString, IdctxHeader, wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KafkaHarness, RecordingObserver, uniqueName, waitFor } from '../kafka/helpers.js'
import { JwksServer } from '../kafka/jwks-server.js'
import { idctx, json } from './run-cli.js'

// A key outage end to end: the producer signs with a key its consumers cannot fetch yet (the JWKS
// they read lacks it), so a real wrapped consumer dead-letters its records as unknown_kid. Once
// the key is published, `idctx dlq redrive` re-publishes them, and the same consumer — with a
// replay store — handles each exactly once.

const h = new KafkaHarness('cli-redrive')
let dir: string
let server: JwksServer
afterAll(async () => {
  await h.close()
  await server?.close()
  await rm(dir, { recursive: true, force: true })
})

interface RedriveOut {
  scanned: number
  redriven: number
  pending: number
  byTarget: Record<string, number>
  skipped: Record<string, number>
  failed: Record<string, number>
}

describe('idctx dlq redrive after a key outage', () => {
  let keyFile: string
  let published: Jwks
  let newKeys: Jwks
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'idctx-cli-redrive-'))
    keyFile = join(dir, 'orders.keyset.json')
    expect((await idctx(['keys', 'generate', keyFile, '--kid', uniqueName('orders-new')])).code).toBe(0)
    // What the consumers' JWKS endpoint serves during the outage: only the issuer's old key.
    published = toJwks([generateKey('EdDSA', { kid: uniqueName('orders-old') })])
    newKeys = importKeySet(await readFile(keyFile, 'utf8')).jwks()
    server = await new JwksServer(() => published).start()
  })

  it('dead-letters as unknown_kid, waits while the key is unknown, redrives once it is, and the consumer handles each record once', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('cli-redrive')
    const observer = new RecordingObserver()
    const verifier = createVerifier({
      audience: 'shop',
      issuers: { orders: createRemoteJwks(server.url, { cooldownMs: 100 }) },
      replay: createMemoryReplayStore(),
    })
    const handled: string[] = []
    const consumer = wrapConsumer(h.consumer(), { verifier, tenant: 'acme', deadLetter: { producer: await h.producer() }, observer })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })

    const signer = createSigner({ issuer: 'orders', audience: 'shop', key: importKeySet(await readFile(keyFile, 'utf8')).active })
    const producer = wrapProducer(await h.producer(), { signer })
    const ctx = { sub: 'user-redrive', tid: 'acme', txn: 'txn-redrive' }
    await runWithContext(ctx, async () => {
      await producer.send({ topic, messages: [{ key: 'a', value: '{"n":1}' }, { key: 'b', value: '{"n":2}' }] }) // one token, two proofs
      await producer.send({ topic, messages: [{ key: 'c', value: '{"n":3}' }] })
    })
    await (await h.producer()).send({ topic, messages: [{ key: 'bare', value: '{"n":4}' }] }) // no token: missing

    await waitFor('4 records dead-lettered', () => observer.dispositions.length >= 4)
    expect(observer.dispositions.map((d) => d.reason)).toEqual(['unknown_kid', 'unknown_kid', 'unknown_kid', 'missing'])
    expect(handled).toEqual([])

    const inspected = await idctx(['dlq', 'inspect', dlq, '--json'])
    expect(inspected.code).toBe(1)
    expect(json(inspected)).toMatchObject({ records: 4, byReason: { unknown_kid: 3, missing: 1 }, byOriginalTopic: { [topic]: 4 } })

    const trust = ['--issuer', 'orders', '--jwks', server.url, '--audience', 'shop', '--tenant', 'acme', '--json']
    const group = uniqueName('redrive-g')

    // Still an outage: the first record does not verify yet; its partition stops there (exit 1).
    const early = await idctx(['dlq', 'redrive', dlq, '--group', group, ...trust])
    expect(early.code).toBe(1)
    expect(json<RedriveOut>(early)).toMatchObject({ scanned: 1, redriven: 0, pending: 1 })
    expect(await h.recordCount(topic)).toBe(4)
    expect(await h.committedOffset(group, dlq)).toBe(-1)

    // The key is published.
    published = { keys: [...published.keys, ...newKeys.keys] }

    const dry = await idctx(['dlq', 'redrive', dlq, '--group', group, '--dry-run', ...trust])
    expect(dry.code).toBe(0)
    expect(json<RedriveOut>(dry)).toMatchObject({ scanned: 4, redriven: 3, pending: 0, byTarget: { [topic]: 3 }, skipped: { missing: 1 }, failed: {} })
    expect(await h.recordCount(topic)).toBe(4)
    expect(await h.committedOffset(group, dlq)).toBe(-1)

    const run = await idctx(['dlq', 'redrive', dlq, '--group', group, ...trust])
    expect(run.code).toBe(0)
    expect(json<RedriveOut>(run)).toMatchObject({ scanned: 4, redriven: 3, pending: 0, byTarget: { [topic]: 3 }, skipped: { missing: 1 } })
    expect(await h.committedOffset(group, dlq)).toBe(4)
    expect(await h.recordCount(topic)).toBe(7)

    await waitFor('the redriven records handled', () => handled.length >= 3)
    expect(observer.dispositions).toHaveLength(4)
    expect([...handled].sort()).toEqual(['a', 'b', 'c'])
    const copies = (await h.readAll(topic)).slice(4)
    for (const [i, r] of copies.entries()) {
      expect(headerString(r.headers, 'idctx-redriven-from')).toBe(`${dlq}/0/${i}`)
      expect(headerString(r.headers, IdctxHeader.RejectReason)).toBeUndefined()
      expect(headerString(r.headers, IdctxHeader.OriginalTopic)).toBeUndefined()
    }

    // Nothing left for this group.
    const again = await idctx(['dlq', 'redrive', dlq, '--group', group, ...trust])
    expect(again.code).toBe(0)
    expect(json<RedriveOut>(again)).toMatchObject({ scanned: 0, redriven: 0 })

    // A second re-publish of the same records (another group, or a crash between the re-publish
    // and the offset commit) is refused by the consumer's replay store: handled once, no more.
    const twice = await idctx(['dlq', 'redrive', dlq, '--group', uniqueName('redrive-g2'), ...trust])
    expect(json<RedriveOut>(twice)).toMatchObject({ redriven: 3 })
    await waitFor('the copies rejected as replayed', () => observer.dispositions.filter((d) => d.reason === 'replayed').length >= 3)
    expect([...handled].sort()).toEqual(['a', 'b', 'c'])
  })

  it('skips expired records without --expiry-grace, redrives them with one (rejecting those beyond it); a consumer with redriveGraceSeconds handles them once', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('cli-redrive-exp')
    const observer = new RecordingObserver()
    const keys = importKeySet(await readFile(keyFile, 'utf8'))
    const verifier = createVerifier({ audience: 'shop', issuers: { orders: keys.jwks() } })
    const consumer = wrapConsumer(h.consumer(), { verifier, tenant: 'acme', deadLetter: { producer: await h.producer() }, observer })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async () => {} })
    // Signed 10 and 60 minutes ago with a 5-minute lifetime: a consumer outage made them expire.
    const at = (minutesAgo: number) => createSigner({ issuer: 'orders', audience: 'shop', key: keys.active, clock: () => Date.now() - minutesAgo * 60_000 })
    const ctx = { sub: 'user-exp', tid: 'acme', txn: 'txn-exp' }
    const p10 = wrapProducer(await h.producer(), { signer: at(10) })
    const p60 = wrapProducer(await h.producer(), { signer: at(60) })
    await runWithContext(ctx, async () => {
      await p10.send({ topic, messages: [{ key: 'recent', value: '1' }] })
      await p60.send({ topic, messages: [{ key: 'old', value: '2' }] })
    })
    await waitFor('2 records dead-lettered', () => observer.dispositions.length >= 2)
    expect(observer.dispositions.map((d) => d.reason)).toEqual(['expired', 'expired'])

    const trust = ['--issuer', 'orders', '--jwks', keyFile, '--audience', 'shop', '--json']
    const skipped = await idctx(['dlq', 'redrive', dlq, '--dry-run', '--group', uniqueName('exp-g'), ...trust])
    expect(skipped.code).toBe(0)
    expect(json<RedriveOut>(skipped)).toMatchObject({ scanned: 2, redriven: 0, skipped: { expired: 2 } })

    const graced = await idctx(['dlq', 'redrive', dlq, '--expiry-grace', '1800', '--group', uniqueName('exp-g'), ...trust])
    expect(graced.code).toBe(1) // the hour-old one is beyond the grace: a finding
    expect(json<RedriveOut>(graced)).toMatchObject({ scanned: 2, redriven: 1, failed: { expired: 1 } })
    expect((await h.readAll(topic)).map((r) => r.key)).toEqual(['recent', 'old', 'recent'])

    // A consumer granting redriven records the grace (and remembering messages that long) handles
    // the redriven copy once; the expired originals stay rejected; a copy of the redriven record
    // (with its header) is replayed, not handled again.
    const later = new RecordingObserver()
    const graceful = wrapConsumer(h.consumer(), {
      verifier: createVerifier({ audience: 'shop', issuers: { orders: keys.jwks() }, maxExpiryGraceSeconds: 1800, replay: createMemoryReplayStore() }),
      tenant: 'acme',
      redriveGraceSeconds: 1800,
      policy: 'skip',
      observer: later,
    })
    const handled: string[] = []
    await graceful.connect()
    await graceful.subscribe({ topics: [topic], fromBeginning: true })
    await graceful.run({ eachMessage: async ({ message, identity }) => void handled.push(`${String(message.key)}@${message.offset}:${identity.sub}`) })
    await waitFor('the redriven record handled', () => handled.length >= 1 && later.dispositions.length >= 2)
    expect(handled).toEqual(['recent@2:user-exp'])
    expect(later.dispositions.map((d) => d.reason)).toEqual(['expired', 'expired'])
    const [, , redriven] = await h.readAll(topic)
    const plain = await h.producer()
    await plain.send({ topic, messages: [{ key: redriven?.key ?? null, value: redriven?.value ?? null, headers: redriven?.headers as Record<string, Buffer> }] })
    await waitFor('the copy rejected', () => later.dispositions.length >= 3)
    expect(later.dispositions[2]?.reason).toBe('replayed')
    expect(handled).toEqual(['recent@2:user-exp'])

    expect((await idctx(['dlq', 'redrive', dlq, '--expiry-grace', '90000', ...trust])).code).toBe(2)
  })
})
