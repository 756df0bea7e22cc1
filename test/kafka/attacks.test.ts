import { createSigner, generateKey, kafkaDestination, kafkaLeaf, ReasonCode, type IdctxKey, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import type { IHeaders, Message } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { AUDIENCE, headerTexts, KafkaHarness, RecordingObserver, rejectReason, service, verifierFor, waitFor } from './helpers.js'

const h = new KafkaHarness('atk')
afterAll(() => h.close())

const acme: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 'txn-attacks' }
const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

describe.each(['eachMessage', 'eachBatch'] as const)('attacks are rejected with their exact reason and dead-lettered intact (%s)', (mode) => {
  it('every record reaches the handler or the DLQ, never both, never neither', async () => {
    const { topic, dlq } = await h.createTopicWithDlq(`atk-${mode}`)
    const [other, third] = (await h.createTopics(`atk-${mode}-elsewhere`, 2)) as [string, string]

    const orders = service('svc-orders')
    const rogue = service('svc-rogue')
    const ordersKey = orders.key as IdctxKey
    const forger = createSigner({ issuer: 'svc-orders', audience: AUDIENCE, key: generateKey('EdDSA', { kid: ordersKey.kid }) })
    const stale = createSigner({ issuer: 'svc-orders', audience: AUDIENCE, key: ordersKey, clock: () => Date.now() - 3_600_000 })

    const observer = new RecordingObserver()
    const verifier = verifierFor([orders, rogue], {
      observer,
      producerAcl: {
        'svc-orders': { destinations: [kafkaDestination(topic), kafkaDestination(other), kafkaDestination(third)] },
        'svc-rogue': { destinations: ['kafka:somewhere-else'] },
      },
    })

    const raw = await h.producer()
    const send = (signer: typeof orders.signer, messages: Message[], context = acme) =>
      wrapProducer(raw, { signer }).send({ topic, messages }, { context })
    const sign = (key: string, value: string, dst = topic) =>
      orders.signer.sign(acme, [{ destination: kafkaDestination(dst), leaf: kafkaLeaf(dst, key, value) }]).token

    const expected = new Map<string, string | undefined>()
    const produce = async (key: string, reason: string | undefined, go: () => Promise<unknown>) => {
      expected.set(key, reason)
      await go()
    }
    const withCase = (key: string, extra: IHeaders = {}): IHeaders => ({ 'x-case': key, traceparent, ...extra })

    await produce('ok-1', undefined, () =>
      send(orders.signer, [
        { key: 'ok-1', value: 'v-ok-1', headers: withCase('ok-1') },
        { key: 'ok-2', value: 'v-ok-2', headers: withCase('ok-2') },
      ]),
    )
    expected.set('ok-2', undefined)
    await produce('forged', ReasonCode.BadSignature, () => send(forger, [{ key: 'forged', value: 'v-forged', headers: withCase('forged') }]))
    await produce('expired', ReasonCode.Expired, () => send(stale, [{ key: 'expired', value: 'v-expired', headers: withCase('expired') }]))
    await produce('cross-tenant', ReasonCode.TenantMismatch, () =>
      send(orders.signer, [{ key: 'cross-tenant', value: 'v-ct', headers: withCase('cross-tenant') }], { ...acme, tid: 'globex' }),
    )
    await produce('not-allowed', ReasonCode.ActorNotAllowed, () =>
      send(rogue.signer, [{ key: 'not-allowed', value: 'v-na', headers: withCase('not-allowed') }]),
    )
    await produce('copied', ReasonCode.BindingMismatch, () =>
      raw.send({ topic, messages: [{ key: 'copied', value: 'v-copied', headers: withCase('copied', { idctx: sign('original', 'v-original') }) }] }),
    )
    await produce('removed', ReasonCode.Missing, () =>
      raw.send({ topic, messages: [{ key: 'removed', value: 'v-removed', headers: withCase('removed') }] }),
    )
    const dupToken = sign('duplicated', 'v-dup')
    await produce('duplicated', ReasonCode.Duplicate, () =>
      raw.send({ topic, messages: [{ key: 'duplicated', value: 'v-dup', headers: withCase('duplicated', { idctx: [dupToken, dupToken] }) }] }),
    )
    await produce('moved', ReasonCode.BindingMismatch, () =>
      raw.send({ topic, messages: [{ key: 'moved', value: 'v-moved', headers: withCase('moved', { idctx: sign('moved', 'v-moved', other) }) }] }),
    )
    const batchToken = orders.signer.sign(acme, [
      { destination: kafkaDestination(other), leaf: kafkaLeaf(other, 'moved-batch', 'v-mb') },
      { destination: kafkaDestination(third), leaf: kafkaLeaf(third, 'sibling', 'v-sib') },
    ])
    await produce('moved-batch', ReasonCode.BindingMismatch, () =>
      raw.send({
        topic,
        messages: [{ key: 'moved-batch', value: 'v-mb', headers: withCase('moved-batch', { idctx: batchToken.token, 'idctx-proof': batchToken.proofs[0] as string }) }],
      }),
    )
    await produce('ok-3', undefined, () => send(orders.signer, [{ key: 'ok-3', value: 'v-ok-3', headers: withCase('ok-3') }]))

    const handled: string[] = []
    // Collected here and asserted below: an expect() thrown inside a kafkajs handler only makes
    // kafkajs retry the record, it does not fail the test.
    const tenants: string[] = []
    const consumer = wrapConsumer(h.consumer(), { verifier, tenant: 'acme', observer, deadLetter: { producer: raw } })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    if (mode === 'eachMessage') {
      await consumer.run({
        eachMessage: async ({ message, identity }) => {
          tenants.push(identity.tid)
          handled.push(message.key?.toString() ?? '')
        },
      })
    } else {
      await consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            tenants.push(m.identity.tid)
            handled.push(m.key?.toString() ?? '')
          }
        },
      })
    }

    const attacks = [...expected.values()].filter((r) => r !== undefined).length
    await waitFor('every record handled or dead-lettered', () => handled.length + observer.dispositions.length >= expected.size)

    expect(handled.sort()).toEqual(['ok-1', 'ok-2', 'ok-3'])
    expect(tenants).toEqual(['acme', 'acme', 'acme'])
    expect(observer.dispositions).toHaveLength(attacks)
    expect(observer.dispositions.map((d) => [d.policy, d.target])).toEqual(Array.from({ length: attacks }, () => ['dead-letter', dlq]))

    const originals = await h.readAll(topic)
    expect(originals).toHaveLength(expected.size)
    const dead = await h.readAll(dlq)
    expect(dead).toHaveLength(attacks)
    const deadKeys = dead.map((d) => d.key)
    expect(new Set(deadKeys).size).toBe(attacks)
    for (const d of dead) {
      const key = d.key as string
      expect(handled).not.toContain(key)
      expect({ key, reason: rejectReason(d) }).toEqual({ key, reason: expected.get(key) })
      const original = originals.find((o) => o.offset === headerTexts(d.headers, 'idctx-original-offset')[0])
      expect(original?.key).toBe(key)
      expect(d.value).toBe(original?.value)
      expect(headerTexts(d.headers, 'idctx-original-topic')).toEqual([topic])
      expect(headerTexts(d.headers, 'idctx-original-partition')).toEqual(['0'])
      // Every original header is in the copy (at least x-case, traceparent and, except for `removed`, idctx).
      expect(Object.keys(original?.headers ?? {}).length).toBeGreaterThanOrEqual(2)
      for (const name of Object.keys(original?.headers ?? {})) {
        expect(headerTexts(d.headers, name)).toEqual(headerTexts(original?.headers, name))
      }
      expect(headerTexts(d.headers, 'traceparent')).toEqual([traceparent])
    }
    expect(headerTexts(dead.find((d) => d.key === 'duplicated')?.headers, 'idctx')).toEqual([dupToken, dupToken])
    // Every produced key is accounted for exactly once.
    expect([...handled, ...deadKeys].sort()).toEqual([...expected.keys()].sort())
    // The verifier reported the same reasons it put in the headers.
    expect(observer.rejected.map((r) => r.reason).sort()).toEqual(dead.map((d) => rejectReason(d)).sort())
  })
})
