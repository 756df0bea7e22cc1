import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSigner, generateKey, importKeySet, kafkaLeaf } from '@idctx/core'
import { deadLetterRecord, IdctxHeader, wrapProducer } from '@idctx/kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KafkaHarness } from '../kafka/helpers.js'
import { everything, idctx, json } from './run-cli.js'

// `idctx tail` and `idctx dlq inspect` against the real broker.

const h = new KafkaHarness('cli-tail')
let dir: string
let keyFile: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idctx-cli-tail-'))
  keyFile = join(dir, 'orders.keyset.json')
  expect((await idctx(['keys', 'generate', keyFile, '--kid', 'orders-tail'])).code).toBe(0)
})
afterAll(async () => {
  await h.close()
  await rm(dir, { recursive: true, force: true })
})

const SUB = 'user-tail-secret-7'
const userHash = createHash('sha256').update(SUB).digest('hex').slice(0, 32)

describe('idctx tail', () => {
  it('prints a verdict per record: the good one accepted with hashed user, the forged one bad_signature; never token or value', async () => {
    const topic = await h.createTopic('cli-tail')
    const keys = importKeySet(await readFile(keyFile, 'utf8'))
    const signer = createSigner({ issuer: 'orders', audience: 'shop', key: keys.active })
    const producer = wrapProducer(await h.producer(), { signer })
    const value = '{"item":"secret-payload-value"}'
    const { runWithContext } = await import('@idctx/core')
    await runWithContext({ sub: SUB, tid: 'acme', txn: 'txn-tail' }, () => producer.send({ topic, messages: [{ key: 'good', value }] }))
    // A forgery: the same kid, another key.
    const forger = createSigner({ issuer: 'orders', audience: 'shop', key: generateKey('EdDSA', { kid: 'orders-tail' }) })
    const forgedValue = '{"item":"forged-payload-value"}'
    const forged = forger.sign({ sub: SUB, tid: 'acme', txn: 'txn-forged' }, [{ destination: `kafka:${topic}`, leaf: kafkaLeaf(topic, 'forged', Buffer.from(forgedValue)) }]).token
    const plain = await h.producer()
    await plain.send({ topic, messages: [{ key: 'forged', value: forgedValue, headers: { [IdctxHeader.Token]: forged } }] })

    const r = await idctx(['tail', topic, '--from-beginning', '--max', '2', '--issuer', 'orders', '--jwks', keyFile, '--audience', 'shop', '--json'])
    expect(r.code).toBe(1)
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines).toHaveLength(3)
    expect(lines[0]).toEqual({
      topic, partition: 0, offset: '0', verdict: 'accepted', reason: null,
      iss: 'orders', tid: 'acme', kid: 'orders-tail', user: userHash, txn: 'txn-tail', tokenSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    })
    expect(lines[1]).toMatchObject({ offset: '1', verdict: 'rejected', reason: 'bad_signature', kid: 'orders-tail', user: null })
    expect(lines[1]?.tokenSha256).toBe(createHash('sha256').update(forged).digest('hex'))
    expect(lines[2]).toEqual({ summary: { records: 2, accepted: 1, rejected: 1, byReason: { bad_signature: 1 } } })
    const all = everything(r)
    for (const secret of [SUB, value, forgedValue, forged, ...forged.split('.')]) expect(all).not.toContain(secret)
  })

  it('exits 3 when the broker cannot be reached, 2 without brokers', async () => {
    const down = await idctx(['tail', 'x', '--brokers', '127.0.0.1:1', '--issuer', 'orders', '--jwks', keyFile, '--audience', 'shop'])
    expect(down.code).toBe(3)
    const none = await idctx(['tail', 'x', '--issuer', 'orders', '--jwks', keyFile, '--audience', 'shop'], { env: { KAFKA_BROKERS: '' } })
    expect(none.code).toBe(2)
  })
})

describe('idctx dlq inspect', () => {
  it('counts dead-lettered records by reason and original topic, with the oldest and newest', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('cli-dlqi')
    const plain = await h.producer()
    const entry = (offset: number, reason: 'expired' | 'bad_signature' | 'unknown_kid') =>
      deadLetterRecord({ topic, partition: 0, reason, message: { key: Buffer.from(`k${offset}`), value: Buffer.from('v'), headers: {}, offset: String(offset), timestamp: '0', attributes: 0 } as never })
    const t0 = Date.now() - 60_000
    await plain.send({ topic: dlq, messages: [{ ...entry(3, 'expired'), timestamp: String(t0) }] })
    await plain.send({ topic: dlq, messages: [entry(5, 'bad_signature'), entry(8, 'expired'), { ...entry(9, 'unknown_kid'), timestamp: String(t0 + 30_000) }] })

    const r = await idctx(['dlq', 'inspect', dlq, '--json'])
    expect(r.code).toBe(1)
    const report = json<Record<string, unknown>>(r)
    expect(report).toMatchObject({
      topic: dlq,
      records: 4,
      byReason: { expired: 2, bad_signature: 1, unknown_kid: 1 },
      byOriginalTopic: { [topic]: 4 },
      oldest: { coordinates: `${dlq}/0/0`, original: `${topic}/0/3`, reason: 'expired', at: new Date(t0).toISOString() },
    })
    expect((report.newest as { coordinates: string }).coordinates).toMatch(new RegExp(`^${dlq}/0/[12]$`))

    const empty = await h.createTopic('cli-dlqi-empty')
    const e = await idctx(['dlq', 'inspect', empty, '--json'])
    expect(e.code).toBe(0)
    expect(json(e)).toMatchObject({ records: 0, byReason: {}, oldest: null, newest: null })
    expect((await idctx(['dlq', 'inspect', `${empty}-missing`])).code).toBe(2)
  })
})
