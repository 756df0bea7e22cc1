import { currentContext, runWithContext, SigningError, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer, type IdctxProducer, type RejectionPolicy } from '@idctx/kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { headerTexts, KafkaHarness, RecordingObserver, service, unverifiedSub, verifierFor, waitFor } from './helpers.js'

// A handler never inherits the identity around the consumer: kafkajs runs the handlers in the
// async context `consumer.run()` was started from, here the context of `outer`.

const h = new KafkaHarness('ctx')
afterAll(() => h.close())

const orders = service('svc-orders')
const billing = service('svc-billing')
const alice: IdentityContext = { sub: 'u-alice', tid: 'acme', txn: 'txn-alice' }
const outer: IdentityContext = { sub: 'u-outer', tid: 'acme', txn: 'txn-outer' }

/** One observation: where, the current context's sub there, and what a forward did. */
type Seen = [where: string, current: string | undefined, forward: string]

async function forward(producer: IdctxProducer, topic: string, key: string): Promise<string> {
  try {
    await producer.send({ topic, messages: [{ key, value: key }] })
    return 'sent'
  } catch (e) {
    return e instanceof SigningError ? 'SigningError' : `unexpected ${(e as Error).name}`
  }
}

const cases: [mode: 'eachMessage' | 'eachBatch', policy: RejectionPolicy, expected: Seen[]][] = [
  ['eachMessage', 'dead-letter', [['ok', 'u-alice', 'sent']]],
  [
    'eachBatch',
    'dead-letter',
    [
      ['handler', undefined, 'SigningError'],
      ['ok in runInContext', 'u-alice', 'sent'],
    ],
  ],
  [
    'eachMessage',
    'audit',
    [
      ['ok', 'u-alice', 'sent'],
      ['bad', undefined, 'SigningError'],
    ],
  ],
  [
    'eachBatch',
    'audit',
    [
      ['handler', undefined, 'SigningError'],
      ['ok in runInContext', 'u-alice', 'sent'],
      ['bad in runInContext', undefined, 'SigningError'],
    ],
  ],
  ['eachMessage', 'skip', [['ok', 'u-alice', 'sent']]],
  [
    'eachBatch',
    'skip',
    [
      ['handler', undefined, 'SigningError'],
      ['ok in runInContext', 'u-alice', 'sent'],
    ],
  ],
]

describe('consumer.run() started inside runWithContext(outer)', () => {
  it.each(cases)('%s, %s: only a verified record\'s code runs in an identity, its own', async (mode, policy, expected) => {
    const { topic } = await h.createTopicWithDlq(`ctx-${mode}-${policy}`)
    const next = await h.createTopic(`ctx-next-${mode}-${policy}`)
    const raw = await h.producer()
    await wrapProducer(raw, { signer: orders.signer }).send({ topic, messages: [{ key: 'ok', value: 'v-ok' }] }, { context: alice })
    await raw.send({ topic, messages: [{ key: 'bad', value: 'v-bad' }] }) // no token: rejected as `missing`

    const forwarder = wrapProducer(await h.producer(), { signer: billing.signer })
    const observer = new RecordingObserver()
    const seen: Seen[] = []
    const consumer = wrapConsumer(h.consumer(), {
      verifier: verifierFor([orders]),
      tenant: 'acme',
      policy,
      observer,
      ...(policy === 'dead-letter' ? { deadLetter: { producer: raw } } : {}),
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await runWithContext(outer, async () => {
      expect(currentContext()).toBe(outer)
      if (mode === 'eachMessage') {
        await consumer.run({
          eachMessage: async ({ message }) => {
            const key = String(message.key)
            seen.push([key, currentContext()?.sub, await forward(forwarder, next, key)])
          },
        })
      } else {
        await consumer.run({
          eachBatch: async ({ batch, runInContext }) => {
            seen.push(['handler', currentContext()?.sub, await forward(forwarder, next, 'from-handler')])
            for (const m of batch.messages) {
              const key = String(m.key)
              const where = `${key} in runInContext`
              seen.push(await runInContext(m, async (): Promise<Seen> => [where, currentContext()?.sub, await forward(forwarder, next, key)]))
            }
          },
        })
      }
    })

    await waitFor('both records dealt with', () => seen.length >= expected.length && observer.dispositions.length >= 1)
    expect(seen).toEqual(expected)
    expect(observer.dispositions.map((d) => [d.policy, d.reason])).toEqual([[policy, 'missing']])
    // What was forwarded was signed as alice, the verified record's user; nothing as outer.
    const sent = expected.filter(([, , f]) => f === 'sent').length
    expect(sent).toBeGreaterThan(0)
    const forwarded = await h.readAll(next)
    expect(forwarded.map((r) => [r.key, unverifiedSub(headerTexts(r.headers, 'idctx')[0])])).toEqual([['ok', 'u-alice']])
    expect(forwarded).toHaveLength(sent)
  })
})
