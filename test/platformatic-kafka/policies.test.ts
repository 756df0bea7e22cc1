import { currentContext, DeadLetterError, ReasonCode, RecordRejectedError, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer, type RejectionPolicy } from '@idctx/platformatic-kafka'
import { afterAll, describe, expect, it } from 'vitest'
import { KafkaHarness, RecordingObserver, service, uniqueName, verifierFor, waitFor } from '../kafka/helpers.js'
import { PlatformaticClients } from './helpers.js'

const h = new KafkaHarness('pk-pol')
const pk = new PlatformaticClients()
afterAll(async () => {
  await pk.close()
  await h.close()
})

const acme: IdentityContext = { sub: 'u-pol', tid: 'acme', txn: 'txn-pol' }
const orders = service('svc-orders')

/** ok-0, ok-1, bad (unsigned), ok-3 at offsets 0..3. */
async function fill(topic: string): Promise<void> {
  const raw = pk.producer()
  const signing = wrapProducer(raw, { signer: orders.signer })
  const m = (k: string) => ({ topic, key: Buffer.from(k), value: Buffer.from(`v-${k}`) })
  await signing.send({ messages: [m('ok-0'), m('ok-1')] }, { context: acme })
  await raw.send({ messages: [m('bad')] })
  await signing.send({ messages: [m('ok-3')] }, { context: acme })
}

interface Seen {
  key: string
  identity: string | undefined
  current: string | undefined
  violation: string | undefined
}

async function consume(policy: RejectionPolicy, topic: string, groupId: string, extra: { deadLetterTopic?: (t: string) => string } = {}) {
  const observer = new RecordingObserver()
  const seen: Seen[] = []
  const consumer = wrapConsumer(pk.consumer(groupId), {
    verifier: verifierFor([orders]),
    tenant: 'acme',
    policy,
    observer,
    ...(policy === 'dead-letter' ? { deadLetter: { producer: pk.producer(), ...(extra.deadLetterTopic ? { topic: extra.deadLetterTopic } : {}) } } : {}),
  })
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
  const done = stream.process((m) => {
    seen.push({ key: m.key.toString(), identity: m.identity?.sub, current: currentContext()?.sub, violation: m.violation?.reason })
  })
  return { observer, seen, stream, done: done.then(() => undefined, (e: unknown) => e) }
}

describe('@platformatic/kafka policies and offsets', () => {
  it('skip: the rejected message is reported and committed past; the handler sees the rest in their identities', async () => {
    const topic = await h.createTopic('pk-skip')
    await fill(topic)
    const groupId = uniqueName('pk-skip-g')
    const { observer, seen, stream, done } = await consume('skip', topic, groupId)
    await waitFor('3 handled', () => seen.length >= 3)
    await waitFor('offset 4 committed', async () => (await h.committedOffset(groupId, topic)) === 4)
    await stream.close()
    expect(await done).toBeUndefined()
    expect(seen.map((s) => [s.key, s.identity, s.current])).toEqual([
      ['ok-0', 'u-pol', 'u-pol'],
      ['ok-1', 'u-pol', 'u-pol'],
      ['ok-3', 'u-pol', 'u-pol'],
    ])
    expect(observer.dispositions.map((d) => [d.policy, d.reason, d.coordinates])).toEqual([['skip', ReasonCode.Missing, `${topic}/0/2`]])
  })

  it('audit: the rejected message is delivered with its violation and no identity context at all', async () => {
    const topic = await h.createTopic('pk-audit')
    await fill(topic)
    const { observer, seen, stream, done } = await consume('audit', topic, uniqueName('pk-audit-g'))
    await waitFor('4 handled', () => seen.length >= 4)
    await stream.close()
    await done
    expect(seen[2]).toEqual({ key: 'bad', identity: undefined, current: undefined, violation: ReasonCode.Missing })
    expect(seen.filter((s) => s.key !== 'bad').every((s) => s.current === 'u-pol')).toBe(true)
    expect(observer.dispositions.map((d) => d.policy)).toEqual(['audit'])
  })

  it('fail: the stream throws RecordRejectedError at the message and never commits past it', async () => {
    const topic = await h.createTopic('pk-fail')
    await fill(topic)
    const groupId = uniqueName('pk-fail-g')
    const { seen, stream, done } = await consume('fail', topic, groupId)
    const error = await done
    expect(error).toBeInstanceOf(RecordRejectedError)
    expect((error as RecordRejectedError).reason).toBe(ReasonCode.Missing)
    expect((error as RecordRejectedError).coordinates).toBe(`${topic}/0/2`)
    expect(seen.map((s) => s.key)).toEqual(['ok-0', 'ok-1'])
    await waitFor('the handled messages committed', async () => (await h.committedOffset(groupId, topic)) === 2)
    await stream.close().catch(() => undefined)
    await new Promise((r) => setTimeout(r, 500))
    expect(await h.committedOffset(groupId, topic)).toBe(2)
  })

  it('dead-letter: a failed dead-letter write throws DeadLetterError and the offset stays before the message', async () => {
    const topic = await h.createTopic('pk-dlq-fail')
    await fill(topic)
    const groupId = uniqueName('pk-dlqf-g')
    // A topic name the broker refuses: the write really fails, nothing is acknowledged.
    const { observer, seen, stream, done } = await consume('dead-letter', topic, groupId, { deadLetterTopic: () => 'no spaces allowed here' })
    const error = await done
    expect(error).toBeInstanceOf(DeadLetterError)
    expect((error as DeadLetterError).coordinates).toEqual([`${topic}/0/2`])
    expect(seen.map((s) => s.key)).toEqual(['ok-0', 'ok-1'])
    expect(observer.dispositions).toEqual([])
    await waitFor('the handled messages committed', async () => (await h.committedOffset(groupId, topic)) === 2)
    await stream.close().catch(() => undefined)
    await new Promise((r) => setTimeout(r, 500))
    expect(await h.committedOffset(groupId, topic)).toBe(2)
  })

  it('dead-letter: written and acknowledged, then committed past; autocommit: false leaves commits to the application', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pk-dlq')
    await fill(topic)
    const groupId = uniqueName('pk-dlq-g')
    const { seen, stream, done } = await consume('dead-letter', topic, groupId)
    await waitFor('3 handled', () => seen.length >= 3)
    await waitFor('offset 4 committed', async () => (await h.committedOffset(groupId, topic)) === 4)
    await stream.close()
    await done
    expect((await h.readAll(dlq)).map((d) => d.key)).toEqual(['bad'])

    const manualGroup = uniqueName('pk-manual-g')
    const consumer = wrapConsumer(pk.consumer(manualGroup), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'skip' })
    const manual = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
    const keys: string[] = []
    const running = manual.process(async (m) => {
      keys.push(m.key.toString())
      if (m.key.toString() === 'ok-1') await m.commit()
    })
    await waitFor('3 handled', () => keys.length >= 3)
    await new Promise((r) => setTimeout(r, 500))
    expect(await h.committedOffset(manualGroup, topic)).toBe(2)
    await manual.close()
    await running
  })
})
