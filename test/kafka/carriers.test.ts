import { kafkaDestination, kafkaLeaf, ReasonCode, type IdentityContext } from '@idctx/core'
import { IdctxHeader, wrapConsumer, wrapProducer, type KafkaSender, type ReplacedHeaderValue } from '@idctx/kafkajs'
import type { IHeaders } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import {
  editingHeaders,
  headerTexts,
  KafkaHarness,
  occurrenceTexts,
  RecordingObserver,
  rejectReason,
  service,
  uniqueName,
  verifierFor,
  waitFor,
  withNullHeaderValues,
} from './helpers.js'

// Carrier headers with odd values, on the wire: every occurrence of `idctx` and `idctx-proof`
// counts whatever its value, and every rejected record reaches the dead-letter topic whatever its
// headers hold, before its offset moves.

const h = new KafkaHarness('car')
afterAll(() => h.close())

const orders = service('svc-orders')
const acme: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 'txn-carriers' }
const odd = (v: unknown) => v as Buffer

interface Case {
  readonly key: string
  /** Headers as produced; `sign` adds a token (or a pair token and proof) for this very record. */
  readonly headers: (token: Buffer, pairToken: Buffer, proof: Buffer, otherProof: Buffer) => IHeaders
  /** Edits the consumer makes to the delivered headers before the wrapper sees them. */
  readonly edit?: (headers: Record<string, unknown>) => void
  /** undefined: verified and handled. */
  readonly reason?: string
  /** Header occurrences the dead-letter copy must have (text; `<token>` / `<proof>` stand for them). */
  readonly dead?: Readonly<Record<string, readonly string[]>>
  readonly replaced?: readonly ReplacedHeaderValue[]
}

const cases: readonly Case[] = [
  { key: 'ok-token', headers: (t) => ({ idctx: t }) },
  { key: 'ok-proof', headers: (_t, pt, p) => ({ idctx: pt, 'idctx-proof': p }) },
  {
    key: 'token-null',
    headers: (t) => ({ idctx: [t, odd(null)] }),
    reason: ReasonCode.Duplicate,
    dead: { idctx: ['<token>', ''] },
    replaced: [{ name: 'idctx', index: 1, type: 'null' }],
  },
  {
    key: 'null-token',
    headers: (t) => ({ idctx: [odd(null), t] }),
    reason: ReasonCode.Duplicate,
    dead: { idctx: ['', '<token>'] },
    replaced: [{ name: 'idctx', index: 0, type: 'null' }],
  },
  {
    key: 'null-alone',
    headers: () => ({ idctx: odd(null) }),
    reason: ReasonCode.Missing,
    dead: { idctx: [''] },
    replaced: [{ name: 'idctx', index: 0, type: 'null' }],
  },
  {
    key: 'two-proofs',
    headers: (_t, pt, p) => ({ idctx: pt, 'idctx-proof': [p, p] }),
    reason: ReasonCode.BindingMismatch,
    dead: { 'idctx-proof': ['<proof>', '<proof>'] },
  },
  {
    key: 'proof-other',
    headers: (_t, pt, p, q) => ({ idctx: pt, 'idctx-proof': [p, q] }),
    reason: ReasonCode.BindingMismatch,
  },
  {
    key: 'proof-null',
    headers: (_t, pt, p) => ({ idctx: pt, 'idctx-proof': [p, odd(null)] }),
    reason: ReasonCode.BindingMismatch,
    dead: { 'idctx-proof': ['<proof>', ''] },
    replaced: [{ name: 'idctx-proof', index: 1, type: 'null' }],
  },
  {
    key: 'nil-header',
    headers: () => ({ 'x-nil': odd(null) }),
    reason: ReasonCode.Missing,
    dead: { 'x-nil': [''] },
    replaced: [{ name: 'x-nil', index: 0, type: 'null' }],
  },
  {
    key: 'nil-in-array',
    headers: () => ({ 'x-arr': ['a', odd(null), 'b'] }),
    reason: ReasonCode.Missing,
    dead: { 'x-arr': ['a', '', 'b'] },
    replaced: [{ name: 'x-arr', index: 1, type: 'null' }],
  },
  // kafkajs delivers a header named like an Object.prototype member as [member, value].
  { key: 'proto-named', headers: () => ({ toString: 'x', constructor: ['c1', 'c2'] }), reason: ReasonCode.Missing, dead: { toString: ['x'], constructor: ['c1', 'c2'] } },
  {
    key: 'edited-undefined',
    headers: () => ({}),
    edit: (hs) => void (hs['x-undef'] = ['a', undefined]),
    reason: ReasonCode.Missing,
    dead: { 'x-undef': ['a', ''] },
    replaced: [{ name: 'x-undef', index: 1, type: 'undefined' }],
  },
  {
    key: 'edited-number',
    headers: () => ({}),
    edit: (hs) => void (hs['x-num'] = 42),
    reason: ReasonCode.Missing,
    dead: { 'x-num': ['42'] },
    replaced: [{ name: 'x-num', index: 0, type: 'number' }],
  },
  {
    key: 'edited-nested',
    headers: () => ({}),
    edit: (hs) => void (hs['x-nested'] = [[Buffer.from('a')], Buffer.from('b')]),
    reason: ReasonCode.Missing,
    dead: { 'x-nested': ['', 'b'] },
    replaced: [{ name: 'x-nested', index: 0, type: 'array' }],
  },
  { key: 'ok-last', headers: (t) => ({ idctx: t }) },
]

describe.each(['eachMessage', 'eachBatch'] as const)('odd carrier and header values on the wire (%s)', (mode) => {
  it('each gets its exact verdict; each rejected one reaches the DLQ, encodable, before its offset moves', async () => {
    const { topic, dlq } = await h.createTopicWithDlq(`car-${mode}`)
    const raw = await h.producer()
    const tokens = new Map<string, { token: string; proof: string }>()
    for (const c of cases) {
      const value = `v-${c.key}`
      const single = orders.signer.sign(acme, [{ destination: kafkaDestination(topic), leaf: kafkaLeaf(topic, c.key, value) }])
      const pair = orders.signer.sign(acme, [
        { destination: kafkaDestination(topic), leaf: kafkaLeaf(topic, c.key, value) },
        { destination: kafkaDestination(topic), leaf: kafkaLeaf(topic, 'sibling', 'v-sibling') },
      ])
      const [p, q] = pair.proofs as [string, string]
      const headers = c.headers(Buffer.from(single.token), Buffer.from(pair.token), Buffer.from(p), Buffer.from(q))
      tokens.set(c.key, { token: single.token, proof: p })
      await withNullHeaderValues(() => raw.send({ topic, messages: [{ key: c.key, value, headers }] }))
    }
    // The null values really are on the broker, as kafkajs delivers them.
    const onWire = await h.readAll(topic)
    expect(onWire.map((r) => [r.key, occurrenceTexts(r.headers, 'idctx').map((v) => (v === null ? null : v.length > 0))]).slice(2, 5)).toEqual([
      ['token-null', [true, null]],
      ['null-token', [null, true]],
      ['null-alone', [null]],
    ])

    const groupId = uniqueName(`car-${mode}-g`)
    const dlqWrites: { offsets: string[]; committed: number }[] = []
    const dlqProducer: KafkaSender = {
      send: async (record) => {
        dlqWrites.push({
          offsets: record.messages.map((m) => String(m.headers?.[IdctxHeader.OriginalOffset])),
          committed: await h.committedOffset(groupId, topic),
        })
        return raw.send(record)
      },
      sendBatch: (batch) => raw.sendBatch(batch),
    }
    const edits = new Map(cases.filter((c) => c.edit !== undefined).map((c) => [c.key, c.edit as (hs: Record<string, unknown>) => void]))
    const observer = new RecordingObserver()
    const handled: string[] = []
    const consumer = wrapConsumer(
      editingHeaders(h.consumer({ groupId }), (headers, message) => edits.get(String(message.key))?.(headers)),
      { verifier: verifierFor([orders]), tenant: 'acme', observer, deadLetter: { producer: dlqProducer } },
    )
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    if (mode === 'eachMessage') {
      await consumer.run({ eachMessage: async ({ message }) => void handled.push(String(message.key)) })
    } else {
      await consumer.run({ eachBatch: async ({ batch }) => void handled.push(...batch.messages.map((m) => String(m.key))) })
    }

    const rejected = cases.filter((c) => c.reason !== undefined)
    await waitFor('every record handled or dead-lettered, and committed', async () =>
      handled.length + observer.dispositions.length >= cases.length && (await h.committedOffset(groupId, topic)) === cases.length,
      30_000,
    )
    expect(handled).toEqual(cases.filter((c) => c.reason === undefined).map((c) => c.key))
    expect(observer.dispositions).toHaveLength(rejected.length)

    // Each dead-letter write happened while the group's committed offset was still at or below
    // the first record it carried: the offset moved only after the write.
    expect(dlqWrites.length).toBeGreaterThan(0)
    expect(dlqWrites.flatMap((w) => w.offsets).sort((a, b) => Number(a) - Number(b))).toEqual(
      rejected.map((c) => String(cases.indexOf(c))),
    )
    for (const w of dlqWrites) expect({ ...w, movedPast: w.committed > Math.min(...w.offsets.map(Number)) }).toMatchObject({ movedPast: false })

    const dead = await h.readAll(dlq)
    expect(dead.map((d) => [d.key, rejectReason(d)])).toEqual(rejected.map((c) => [c.key, c.reason]))
    for (const c of rejected) {
      const d = dead.find((x) => x.key === c.key)
      const { token, proof } = tokens.get(c.key) as { token: string; proof: string }
      const expand = (v: string) => (v === '<token>' ? token : v === '<proof>' ? proof : v)
      for (const [name, values] of Object.entries(c.dead ?? {})) {
        expect({ key: c.key, name, values: occurrenceTexts(d?.headers, name) }).toEqual({ key: c.key, name, values: values.map(expand) })
      }
      const replaced = headerTexts(d?.headers, IdctxHeader.ReplacedValues)
      expect({ key: c.key, replaced: replaced.map((r) => JSON.parse(r) as unknown) }).toEqual({
        key: c.key,
        replaced: c.replaced === undefined ? [] : [c.replaced],
      })
    }
  })
})
