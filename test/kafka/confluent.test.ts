import { createRequire } from 'node:module'
import { ReasonCode, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { BROKERS, headerTexts, KafkaHarness, RecordingObserver, rejectReason, service, uniqueName, verifierFor, waitFor } from './helpers.js'

type ConfluentModule = typeof import('@confluentinc/kafka-javascript')

// The client's native part is built at install time (prebuilt download, or a source build of
// librdkafka); where it is missing the suite is skipped and says why.
let confluent: ConfluentModule | undefined
let unavailable = ''
try {
  confluent = createRequire(import.meta.url)('@confluentinc/kafka-javascript') as ConfluentModule
} catch (e) {
  unavailable = (e as Error).message.split('\n')[0] ?? 'unknown error'
}

const h = new KafkaHarness('ckjs')
const closers: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined)
  await h.close()
})

const acme: IdentityContext = { sub: 'u-5', tid: 'acme', txn: 'txn-confluent' }

describe.skipIf(confluent === undefined)(`@confluentinc/kafka-javascript KafkaJS API${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('wrapProducer and wrapConsumer work on its producer and consumer (eachMessage and eachBatch)', async () => {
    const { KafkaJS } = confluent as ConfluentModule
    const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers: BROKERS, logLevel: KafkaJS.logLevel.NOTHING } })
    const { topic, dlq } = await h.createTopicWithDlq('ckjs')
    const orders = service('svc-orders')

    const rawProducer = kafka.producer()
    await rawProducer.connect()
    closers.push(() => rawProducer.disconnect())
    const producer = wrapProducer(rawProducer, { signer: orders.signer })
    await producer.send(
      { topic, messages: [{ key: 'c-1', value: 'v1', headers: { traceparent: 'tp' } }, { key: 'c-2', value: Buffer.from('v2') }, { key: 'c-3', value: 'v3' }] },
      { context: acme },
    )
    await rawProducer.send({ topic, messages: [{ key: 'c-unsigned', value: 'v4' }] })

    const runConsumer = async (mode: 'eachMessage' | 'eachBatch') => {
      const observer = new RecordingObserver()
      const handled: [string, string][] = []
      const consumer = wrapConsumer(kafka.consumer({ kafkaJS: { groupId: uniqueName(`ckjs-${mode}`), fromBeginning: true } }), {
        verifier: verifierFor([orders]),
        tenant: 'acme',
        observer,
        deadLetter: { producer: rawProducer },
      })
      await consumer.connect()
      closers.push(() => consumer.disconnect())
      await consumer.subscribe({ topics: [topic] })
      if (mode === 'eachMessage') {
        await consumer.run({ eachMessage: async ({ message, identity }) => void handled.push([message.key?.toString() ?? '', identity.sub]) })
      } else {
        await consumer.run({
          eachBatch: async ({ batch }) => void handled.push(...batch.messages.map((m): [string, string] => [m.key?.toString() ?? '', m.identity.sub])),
        })
      }
      await waitFor(`${mode}: four records`, () => handled.length + observer.dispositions.length >= 4)
      expect(handled).toEqual([
        ['c-1', 'u-5'],
        ['c-2', 'u-5'],
        ['c-3', 'u-5'],
      ])
      expect(observer.dispositions.map((d) => [d.reason, d.target])).toEqual([[ReasonCode.Missing, dlq]])
    }
    await runConsumer('eachMessage')
    await runConsumer('eachBatch')

    const dead = await h.readAll(dlq)
    expect(dead.map((d) => [d.key, d.value, rejectReason(d)])).toEqual([
      ['c-unsigned', 'v4', ReasonCode.Missing],
      ['c-unsigned', 'v4', ReasonCode.Missing],
    ])
    const originals = await h.readAll(topic)
    expect(headerTexts(originals[0]?.headers, 'traceparent')).toEqual(['tp'])
    expect(headerTexts(originals[0]?.headers, 'idctx-proof')[0]).toMatch(/^0\.3\./)
  })
})
