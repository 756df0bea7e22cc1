import { createSigner, generateKey, kafkaDestination, kafkaLeaf, ReasonCode, type IdctxKey, type IdentityContext } from '@idctx/core'
import { wrapConsumer as wrapKafkajsConsumer } from '@idctx/kafkajs'
import { wrapConsumer, wrapProducer } from '@idctx/platformatic-kafka'
import type { MessageToProduce } from '@platformatic/kafka'
import { afterAll, describe, expect, it } from 'vitest'
import { AUDIENCE, headerTexts, KafkaHarness, occurrenceTexts, RecordingObserver, rejectReason, service, verifierFor, waitFor } from '../kafka/helpers.js'
import { PlatformaticClients } from './helpers.js'

const h = new KafkaHarness('pk-atk')
const pk = new PlatformaticClients()
afterAll(async () => {
  await pk.close()
  await h.close()
})

const acme: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 'txn-attacks' }
const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const b = (s: string) => Buffer.from(s, 'utf8')
type Msg = MessageToProduce<Buffer, Buffer, Buffer, Buffer>

/** Headers as a Map with distinct Buffer keys: a name given twice is sent twice. */
function headers(key: string, extra: [string, Buffer | null][] = []): Map<Buffer, Buffer> {
  const m = new Map<Buffer, Buffer | null>([
    [b('x-case'), b(key)],
    [b('traceparent'), b(traceparent)],
  ])
  for (const [k, v] of extra) m.set(b(k), v)
  return m as Map<Buffer, Buffer>
}

describe('attacks on @platformatic/kafka: the kafkajs attack suite, same reasons, nothing lost', () => {
  it('every record reaches the handler or the DLQ, never both, never neither', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pk-atk')
    const [other, third] = (await h.createTopics('pk-atk-elsewhere', 2)) as [string, string]

    const orders = service('svc-orders')
    const rogue = service('svc-rogue')
    const ordersKey = orders.key as IdctxKey
    const forger = createSigner({ issuer: 'svc-orders', audience: AUDIENCE, key: generateKey('EdDSA', { kid: ordersKey.kid }) })
    const stale = createSigner({ issuer: 'svc-orders', audience: AUDIENCE, key: ordersKey, clock: () => Date.now() - 3_600_000 })

    const observer = new RecordingObserver()
    const verifier = verifierFor([orders, rogue], { observer, producerAcl: verifierAcl(topic, other, third) })

    const raw = pk.producer()
    const send = (signer: typeof orders.signer, messages: Msg[], context = acme) => wrapProducer(raw, { signer }).send({ messages }, { context })
    const rawSend = (messages: Msg[]) => raw.send({ messages })
    const sign = (key: string, value: string, dst = topic) =>
      orders.signer.sign(acme, [{ destination: kafkaDestination(dst), leaf: kafkaLeaf(dst, key, value) }]).token

    const expected = new Map<string, string | undefined>()
    const produce = async (key: string, reason: string | undefined, go: () => Promise<unknown>) => {
      expected.set(key, reason)
      await go()
    }
    const msg = (key: string, value: string, extra: [string, Buffer | null][] = []): Msg => ({ topic, key: b(key), value: b(value), headers: headers(key, extra) })

    await produce('ok-1', undefined, () => send(orders.signer, [msg('ok-1', 'v-ok-1'), msg('ok-2', 'v-ok-2')]))
    expected.set('ok-2', undefined)
    await produce('forged', ReasonCode.BadSignature, () => send(forger, [msg('forged', 'v-forged')]))
    await produce('expired', ReasonCode.Expired, () => send(stale, [msg('expired', 'v-expired')]))
    await produce('cross-tenant', ReasonCode.TenantMismatch, () => send(orders.signer, [msg('cross-tenant', 'v-ct')], { ...acme, tid: 'globex' }))
    await produce('not-allowed', ReasonCode.ActorNotAllowed, () => send(rogue.signer, [msg('not-allowed', 'v-na')]))
    await produce('copied', ReasonCode.BindingMismatch, () => rawSend([msg('copied', 'v-copied', [['idctx', b(sign('original', 'v-original'))]])]))
    await produce('removed', ReasonCode.Missing, () => rawSend([msg('removed', 'v-removed')]))
    const dupToken = sign('duplicated', 'v-dup')
    await produce('duplicated', ReasonCode.Duplicate, () => rawSend([msg('duplicated', 'v-dup', [['idctx', b(dupToken)], ['idctx', b(dupToken)]])]))
    await produce('moved', ReasonCode.BindingMismatch, () => rawSend([msg('moved', 'v-moved', [['idctx', b(sign('moved', 'v-moved', other))]])]))
    const batchToken = orders.signer.sign(acme, [
      { destination: kafkaDestination(other), leaf: kafkaLeaf(other, 'moved-batch', 'v-mb') },
      { destination: kafkaDestination(third), leaf: kafkaLeaf(third, 'sibling', 'v-sib') },
    ])
    await produce('moved-batch', ReasonCode.BindingMismatch, () =>
      rawSend([msg('moved-batch', 'v-mb', [['idctx', b(batchToken.token)], ['idctx-proof', b(batchToken.proofs[0] as string)]])]),
    )
    // Carriers as this client's Map of Buffers can carry them: a null beside a token is two
    // occurrences, a lone null is no token, an oversize token is refused before decoding.
    const nullTok = sign('null-beside', 'v-nb')
    await produce('null-beside', ReasonCode.Duplicate, () => rawSend([msg('null-beside', 'v-nb', [['idctx', b(nullTok)], ['idctx', null]])]))
    await produce('null-alone', ReasonCode.Missing, () => rawSend([msg('null-alone', 'v-na2', [['idctx', null]])]))
    await produce('oversize', ReasonCode.Oversize, () => rawSend([msg('oversize', 'v-os', [['idctx', b('a'.repeat(5000))]])]))
    await produce('ok-3', undefined, () => send(orders.signer, [msg('ok-3', 'v-ok-3')]))

    const handled: string[] = []
    const tenants: string[] = []
    const consumer = wrapConsumer(pk.consumer(), { verifier, tenant: 'acme', observer, deadLetter: { producer: raw } })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const done = stream.process((m) => {
      tenants.push(m.identity.tid)
      handled.push(m.key.toString())
    })

    const attacks = [...expected.values()].filter((r) => r !== undefined).length
    await waitFor('every record handled or dead-lettered', () => handled.length + observer.dispositions.length >= expected.size)
    await stream.close()
    await done

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
      expect(Object.keys(original?.headers ?? {}).length).toBeGreaterThanOrEqual(2)
      for (const name of Object.keys(original?.headers ?? {})) {
        // A null header value is copied as an empty one (and listed in idctx-replaced-values).
        const want = occurrenceTexts(original?.headers, name).map((v) => v ?? '')
        expect(occurrenceTexts(d.headers, name), `${key} ${name}`).toEqual(want)
      }
      expect(headerTexts(d.headers, 'traceparent')).toEqual([traceparent])
    }
    expect(headerTexts(dead.find((d) => d.key === 'duplicated')?.headers, 'idctx')).toEqual([dupToken, dupToken])
    expect(headerTexts(dead.find((d) => d.key === 'null-beside')?.headers, 'idctx-replaced-values')).toEqual(['[{"name":"idctx","index":1,"type":"null"}]'])
    expect([...handled, ...deadKeys].sort()).toEqual([...expected.keys()].sort())
    expect(observer.rejected.map((r) => r.reason).sort()).toEqual(dead.map((d) => rejectReason(d)).sort())

    // The kafkajs consumer gives every record of the topic the same verdict, at the same coordinates.
    const kjsObserver = new RecordingObserver()
    const kjs = wrapKafkajsConsumer(h.consumer(), { verifier: verifierFor([orders, rogue], { producerAcl: verifierAcl(topic, other, third) }), tenant: 'acme', policy: 'skip', observer: kjsObserver })
    let kjsHandled = 0
    await kjs.connect()
    await kjs.subscribe({ topics: [topic], fromBeginning: true })
    await kjs.run({ eachMessage: async () => void kjsHandled++ })
    await waitFor('kafkajs verdicts', () => kjsHandled + kjsObserver.dispositions.length >= expected.size)
    const verdicts = (o: RecordingObserver) => o.dispositions.map((d) => `${d.coordinates} ${d.reason}`).sort()
    expect(verdicts(kjsObserver)).toEqual(verdicts(observer))
    expect(kjsHandled).toBe(3)
  })
})

function verifierAcl(topic: string, other: string, third: string) {
  return {
    'svc-orders': { destinations: [kafkaDestination(topic), kafkaDestination(other), kafkaDestination(third)] },
    'svc-rogue': { destinations: ['kafka:somewhere-else'] },
  }
}
