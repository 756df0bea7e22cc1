import { currentContext, runWithContext, type IdentityContext } from '@idctx/core'
import { wrapConsumer as wrapKafkajsConsumer, wrapProducer as wrapKafkajsProducer } from '@idctx/kafkajs'
import { IdctxHeader, wrapConsumer, wrapProducer } from '@idctx/platformatic-kafka'
import { afterAll, describe, expect, it } from 'vitest'
import { headerTexts, KafkaHarness, RecordingObserver, service, uniqueName, verifierFor, waitFor } from '../kafka/helpers.js'
import { PlatformaticClients } from './helpers.js'

const h = new KafkaHarness('pk-rt')
const pk = new PlatformaticClients()
afterAll(async () => {
  await pk.close()
  await h.close()
})

const acme: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 'txn-pk-rt' }
const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

describe('@platformatic/kafka round trip', () => {
  it('signs one send of several messages with one token and proofs, never mutates them, and the consumer handles each inside its identity', async () => {
    const topic = await h.createTopic('pk-rt')
    const orders = service('svc-orders')
    const observer = new RecordingObserver()
    const producer = wrapProducer(pk.producer(), { signer: orders.signer, traceparent: () => traceparent })
    const messages = [
      { topic, key: Buffer.from('k-1'), value: Buffer.from('v-1'), headers: new Map([[Buffer.from('x-case'), Buffer.from('one')]]) },
      { topic, key: Buffer.from('k-2'), value: Buffer.from('v-2') },
    ]
    const before = JSON.stringify(messages.map((m) => ({ ...m, headers: m.headers === undefined ? undefined : [...m.headers] })))
    await runWithContext(acme, () => producer.send({ messages }))
    expect(JSON.stringify(messages.map((m) => ({ ...m, headers: m.headers === undefined ? undefined : [...m.headers] })))).toBe(before)

    // Same header names and values as the kafkajs wrapper writes.
    const written = await h.readAll(topic)
    expect(written).toHaveLength(2)
    const tokens = written.map((r) => headerTexts(r.headers, IdctxHeader.Token))
    expect(tokens[0]).toHaveLength(1)
    expect(tokens[1]).toEqual(tokens[0])
    expect(written.map((r) => headerTexts(r.headers, IdctxHeader.Proof).length)).toEqual([1, 1])
    expect(written.map((r) => headerTexts(r.headers, 'traceparent'))).toEqual([[traceparent], [traceparent]])
    expect(headerTexts(written[0]?.headers, 'x-case')).toEqual(['one'])

    const seen: { key: string; sub: string | undefined; current: string | undefined }[] = []
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders], { observer }), tenant: 'acme', policy: 'skip', observer })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const done = stream.process(async (m) => {
      seen.push({ key: m.key.toString(), sub: m.identity.sub, current: currentContext()?.sub })
    })
    await waitFor('2 messages', () => seen.length >= 2)
    await stream.close()
    await done
    expect(seen).toEqual([
      { key: 'k-1', sub: 'u-1', current: 'u-1' },
      { key: 'k-2', sub: 'u-1', current: 'u-1' },
    ])
    expect(observer.dispositions).toEqual([])
  })

  it('interoperates with @idctx/kafkajs both ways: same headers, same verdicts', async () => {
    const [toPk, toKjs] = (await h.createTopics('pk-interop', 2)) as [string, string]
    const orders = service('svc-orders')
    const kjsRaw = await h.producer()
    const kjsProducer = wrapKafkajsProducer(kjsRaw, { signer: orders.signer })
    const pkProducer = wrapProducer(pk.producer(), { signer: orders.signer })
    // Two calls in one turn each: the batch profile (idctx-ctx) crosses too.
    await runWithContext(acme, () =>
      Promise.all([
        kjsProducer.send({ topic: toPk, messages: [{ key: 'a', value: 'from-kafkajs-a' }] }),
        kjsProducer.send({ topic: toPk, messages: [{ key: 'b', value: 'from-kafkajs-b' }, { key: 'c', value: 'from-kafkajs-c' }] }),
        pkProducer.send({ messages: [{ topic: toKjs, key: Buffer.from('d'), value: Buffer.from('from-platformatic-d') }] }),
        pkProducer.send({ messages: [{ topic: toKjs, key: Buffer.from('e'), value: Buffer.from('from-platformatic-e') }] }),
      ]),
    )
    await runWithContext(acme, () => pkProducer.send({ messages: [{ topic: toKjs, key: Buffer.from('f'), value: Buffer.from('from-platformatic-f') }] }))

    const pkSeen: string[] = []
    const pkConsumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'fail' })
    const stream = await pkConsumer.consume({ topics: [toPk], mode: 'earliest' })
    const done = stream.process((m) => {
      pkSeen.push(`${m.key.toString()}:${m.identity.sub}:${m.identity.txn}`)
    })
    const kjsSeen: string[] = []
    const kjsConsumer = wrapKafkajsConsumer(h.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'fail' })
    await kjsConsumer.connect()
    await kjsConsumer.subscribe({ topics: [toKjs], fromBeginning: true })
    await kjsConsumer.run({ eachMessage: async ({ message, identity }) => void kjsSeen.push(`${message.key?.toString()}:${identity.sub}:${identity.txn}`) })
    await waitFor('both consumers', () => pkSeen.length >= 3 && kjsSeen.length >= 3)
    await stream.close()
    await done
    expect(pkSeen.sort()).toEqual(['a:u-1:txn-pk-rt', 'b:u-1:txn-pk-rt', 'c:u-1:txn-pk-rt'])
    expect(kjsSeen.sort()).toEqual(['d:u-1:txn-pk-rt', 'e:u-1:txn-pk-rt', 'f:u-1:txn-pk-rt'])
    // The batch-profile carriers were really used in both directions.
    const pkWritten = await h.readAll(toKjs)
    expect(pkWritten.filter((r) => headerTexts(r.headers, IdctxHeader.Context).length === 1).length).toBeGreaterThanOrEqual(2)
    const kjsWritten = await h.readAll(toPk)
    expect(kjsWritten.filter((r) => headerTexts(r.headers, IdctxHeader.Context).length === 1).length).toBeGreaterThanOrEqual(3)
    void uniqueName
  })
})
