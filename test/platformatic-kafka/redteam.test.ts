import { currentContext, DeadLetterError, ReasonCode, RecordRejectedError, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer, type RejectionPolicy } from '@idctx/platformatic-kafka'
import { ProduceAcks, stringDeserializers, type Producer, type SendOptions } from '@platformatic/kafka'
import { afterAll, describe, expect, it } from 'vitest'
import { KafkaHarness, RecordingObserver, rejectReason, service, uniqueName, verifierFor, waitFor } from '../kafka/helpers.js'
import { PlatformaticClients } from './helpers.js'

// Hostile inputs and misuse a Kafka application meets in practice, against @idctx/platformatic-kafka.

const h = new KafkaHarness('pk-red')
const pk = new PlatformaticClients()
afterAll(async () => {
  await pk.close()
  await h.close()
})

const acme: IdentityContext = { sub: 'u-red', tid: 'acme', txn: 'txn-red' }
const orders = service('svc-orders')
const b = (s: string) => Buffer.from(s, 'utf8')

/** ok-0, ok-1, bad (unsigned), ok-3 at offsets 0..3. */
async function fill(topic: string, badValue = 'v-bad'): Promise<void> {
  const raw = pk.producer()
  const signing = wrapProducer(raw, { signer: orders.signer })
  const m = (k: string, v = `v-${k}`) => ({ topic, key: b(k), value: b(v) })
  await signing.send({ messages: [m('ok-0', '{"n":0}'), m('ok-1', '{"n":1}')] }, { context: acme })
  await raw.send({ messages: [m('bad', badValue)] })
  await signing.send({ messages: [m('ok-3', '{"n":3}')] }, { context: acme })
}

/** A dead-letter producer whose first `failures` writes fail, recording every send's options. */
function flakyDeadLetter(real: Producer<Buffer, Buffer, Buffer, Buffer>, failures: number) {
  const sends: SendOptions<Buffer, Buffer, Buffer, Buffer>[] = []
  let left = failures
  return {
    sends,
    producer: {
      send(options: SendOptions<Buffer, Buffer, Buffer, Buffer>) {
        sends.push(options)
        if (left-- > 0) return Promise.reject(new Error('broker unavailable'))
        return real.send(options)
      },
    },
  }
}

const settle = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e)

describe('@platformatic/kafka red team', () => {
  it('a stream resumed after a failed dead-letter write retries that message: it is never skipped, nothing past it committed first', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pk-red-resume')
    await fill(topic)
    const groupId = uniqueName('pk-red-resume-g')
    const flaky = flakyDeadLetter(pk.producer(), 1)
    const consumer = wrapConsumer(pk.consumer(groupId), { verifier: verifierFor([orders]), tenant: 'acme', deadLetter: { producer: flaky.producer } })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    const first = await settle(stream.process((m) => void seen.push(m.key.toString())))
    expect(first).toBeInstanceOf(DeadLetterError)
    expect(seen).toEqual(['ok-0', 'ok-1'])
    await new Promise((r) => setTimeout(r, 300))
    expect(await h.committedOffset(groupId, topic)).toBe(2)
    // The application retries (a common loop: log, back off, process again).
    const second = settle(stream.process((m) => void seen.push(m.key.toString())))
    await waitFor('ok-3 handled', () => seen.includes('ok-3'))
    await waitFor('offset 4 committed', async () => (await h.committedOffset(groupId, topic)) === 4)
    await stream.close()
    expect(await second).toBeUndefined()
    expect(seen).toEqual(['ok-0', 'ok-1', 'ok-3'])
    expect((await h.readAll(dlq)).map((d) => [d.key, rejectReason(d)])).toEqual([['bad', ReasonCode.Missing]])
  })

  it('fail: a stream used again after RecordRejectedError stops at the same message, never past it', async () => {
    const topic = await h.createTopic('pk-red-fail')
    await fill(topic)
    const groupId = uniqueName('pk-red-fail-g')
    const consumer = wrapConsumer(pk.consumer(groupId), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'fail' })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    expect(await settle(stream.process((m) => void seen.push(m.key.toString())))).toBeInstanceOf(RecordRejectedError)
    const again = await settle(stream.process((m) => void seen.push(m.key.toString())))
    expect(again).toBeInstanceOf(RecordRejectedError)
    expect((again as RecordRejectedError).coordinates).toBe(`${topic}/0/2`)
    const iterated = await settle((async () => {
      for await (const m of stream) seen.push(m.key.toString())
    })())
    expect(iterated).toBeInstanceOf(RecordRejectedError)
    await new Promise((r) => setTimeout(r, 500))
    expect(seen).toEqual(['ok-0', 'ok-1'])
    expect(await h.committedOffset(groupId, topic)).toBe(2)
    await stream.close().catch(() => undefined)
  })

  it('an infrastructure failure while verifying (tenant resolver) is retried on the same message when the stream is used again', async () => {
    const topic = await h.createTopic('pk-red-infra')
    await fill(topic)
    const groupId = uniqueName('pk-red-infra-g')
    let fail = true
    const consumer = wrapConsumer(pk.consumer(groupId), {
      verifier: verifierFor([orders]),
      policy: 'skip',
      tenant: (r) => {
        if (r.message.key?.toString() === 'ok-1' && fail) {
          fail = false
          throw new Error('tenant directory down')
        }
        return 'acme'
      },
    })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    expect(String(await settle(stream.process((m) => void seen.push(m.key.toString()))))).toContain('tenant directory down')
    const again = settle(stream.process((m) => void seen.push(m.key.toString())))
    await waitFor('ok-3 handled', () => seen.includes('ok-3'))
    await stream.close()
    await again
    expect(seen).toEqual(['ok-0', 'ok-1', 'ok-3'])
  })

  it('the dead-letter write waits for every in-sync replica (acks -1), as kafkajs does: a leader-only ack can be lost after the commit', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pk-red-acks')
    await fill(topic)
    const flaky = flakyDeadLetter(pk.producer(), 0)
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', deadLetter: { producer: flaky.producer } })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    const done = stream.process((m) => void seen.push(m.key.toString()))
    await waitFor('3 handled', () => seen.length >= 3)
    await stream.close()
    await done
    expect(flaky.sends).toHaveLength(1)
    expect(flaky.sends[0]?.acks).toBe(ProduceAcks.ALL)
    expect((await h.readAll(dlq)).map((d) => d.key)).toEqual(['bad'])
  })

  it('a value deserializer that throws on a hostile unsigned record: the record is dead-lettered as missing, the consumer goes on', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pk-red-poison')
    await fill(topic, '\u0000not json')
    const groupId = uniqueName('pk-red-poison-g')
    const consumer = wrapConsumer(pk.consumer(groupId), { verifier: verifierFor([orders]), tenant: 'acme', deadLetter: { producer: pk.producer() } })
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'earliest',
      // The test's consumer is typed for Buffers; these deserializers give other types on purpose.
      deserializers: { key: (k?: Buffer) => k?.toString('utf8'), value: (v?: Buffer) => JSON.parse(v?.toString('utf8') ?? 'null') as unknown } as never,
    })
    const seen: [string, unknown][] = []
    const done = settle(stream.process((m) => void seen.push([m.key as string, m.value])))
    await waitFor('3 handled', () => seen.length >= 3)
    await waitFor('offset 4 committed', async () => (await h.committedOffset(groupId, topic)) === 4)
    await stream.close()
    expect(await done).toBeUndefined()
    expect(seen).toEqual([['ok-0', { n: 0 }], ['ok-1', { n: 1 }], ['ok-3', { n: 3 }]])
    const dead = await h.readAll(dlq)
    expect(dead.map((d) => [d.key, d.value, rejectReason(d)])).toEqual([['bad', '\u0000not json', ReasonCode.Missing]])
  })

  it('a verified record its deserializer cannot read stops the stream there (not committed, not skipped)', async () => {
    const topic = await h.createTopic('pk-red-poison-ok')
    const raw = pk.producer()
    const signing = wrapProducer(raw, { signer: orders.signer })
    await signing.send({ messages: [{ topic, key: b('a'), value: b('{"n":0}') }] }, { context: acme })
    await signing.send({ messages: [{ topic, key: b('b'), value: b('not json') }] }, { context: acme })
    await signing.send({ messages: [{ topic, key: b('c'), value: b('{"n":2}') }] }, { context: acme })
    const groupId = uniqueName('pk-red-poison-ok-g')
    const consumer = wrapConsumer(pk.consumer(groupId), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'skip' })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', deserializers: { value: (v?: Buffer) => JSON.parse(v?.toString('utf8') ?? 'null') as unknown } as never })
    const seen: unknown[] = []
    const error = await settle(stream.process((m) => void seen.push(m.value)))
    expect(error).toBeInstanceOf(Error)
    expect(seen).toEqual([{ n: 0 }])
    await new Promise((r) => setTimeout(r, 500))
    expect(await h.committedOffset(groupId, topic)).toBe(1)
    await stream.close().catch(() => undefined)
  })

  it('string header deserializers collapse a repeated idctx in the Map; the raw record still says duplicate', async () => {
    const topic = await h.createTopic('pk-red-strdup')
    const token = orders.signer.sign(acme, [{ destination: `kafka:${topic}`, leaf: (await import('@idctx/core')).kafkaLeaf(topic, 'k', 'v') }]).token
    const headers = new Map<Buffer, Buffer>([
      [b('idctx'), b(token)],
      [b('idctx'), b(token)],
    ])
    await pk.producer().send({ messages: [{ topic, key: b('k'), value: b('v'), headers }] })
    const observer = new RecordingObserver()
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'audit', observer })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', deserializers: stringDeserializers as never })
    const seen: [string | undefined, string | undefined][] = []
    const done = stream.process((m) => void seen.push([m.violation?.reason, currentContext()?.sub]))
    await waitFor('1 handled', () => seen.length >= 1)
    await stream.close()
    await done
    expect(seen).toEqual([[ReasonCode.Duplicate, undefined]])
  })

  it('producer: a message object changed after send() returned (same turn) is sent as it was when send was called', async () => {
    const topic = await h.createTopic('pk-red-snap')
    const signing = wrapProducer(pk.producer(), { signer: orders.signer })
    const messages = [{ topic, key: b('k-1'), value: b('v-1') }]
    const sent = signing.send({ messages }, { context: acme })
    ;(messages[0] as { value: Buffer }).value = b('changed')
    messages.push({ topic, key: b('k-2'), value: b('v-2') })
    await sent
    const observer = new RecordingObserver()
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'skip', observer })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    const done = stream.process((m) => void seen.push(`${m.key.toString()}=${m.value.toString()}`))
    await waitFor('1 record', () => seen.length + observer.dispositions.length >= 1)
    await new Promise((r) => setTimeout(r, 500))
    await stream.close()
    await done
    expect(observer.dispositions.map((d) => d.reason)).toEqual([])
    expect(seen).toEqual(['k-1=v-1'])
  })

  it('batch profile: concurrent sends of one turn from different users each verify as their own user', async () => {
    const topic = await h.createTopic('pk-red-users')
    const signing = wrapProducer(pk.producer(), { signer: orders.signer })
    const users = Array.from({ length: 12 }, (_, i) => `u-${i}`)
    await Promise.all(users.map((sub) => signing.send({ messages: [{ topic, key: b(sub), value: b(`v-${sub}`) }] }, { context: { sub, tid: 'acme', txn: `t-${sub}` } })))
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'fail' })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    const done = stream.process(async (m) => {
      await new Promise((r) => setTimeout(r, 1))
      seen.push(`${m.key.toString()}:${m.identity.sub}:${currentContext()?.sub}:${currentContext()?.txn}`)
    })
    await waitFor('all users', () => seen.length >= users.length)
    await stream.close()
    await done
    expect(seen.sort()).toEqual(users.map((u) => `${u}:${u}:${u}:t-${u}`).sort())
  })

  it('break out of a for-await mid-batch: the message in hand is not committed, the next consumer gets it again', async () => {
    const topic = await h.createTopic('pk-red-break')
    const signing = wrapProducer(pk.producer(), { signer: orders.signer })
    await signing.send({ messages: Array.from({ length: 6 }, (_, i) => ({ topic, key: b(`k-${i}`), value: b(`v-${i}`) })) }, { context: acme })
    const groupId = uniqueName('pk-red-break-g')
    const consumer = wrapConsumer(pk.consumer(groupId), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'fail' })
    const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' })
    for await (const m of stream) {
      if (m.key.toString() === 'k-2') break
    }
    await stream.close().catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    expect(await h.committedOffset(groupId, topic)).toBe(2)
  })

  it('close() during a slow dead-letter write: nothing at or past the rejected message is committed before the write is acknowledged', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pk-red-slow')
    await fill(topic)
    const groupId = uniqueName('pk-red-slow-g')
    const real = pk.producer()
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    let writing = false
    const slow = {
      async send(o: SendOptions<Buffer, Buffer, Buffer, Buffer>) {
        writing = true
        await gate
        return real.send(o)
      },
    }
    const consumer = wrapConsumer(pk.consumer(groupId), { verifier: verifierFor([orders]), tenant: 'acme', deadLetter: { producer: slow } })
    const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' })
    const seen: string[] = []
    const done = settle(stream.process((m) => void seen.push(m.key.toString())))
    await waitFor('dead-letter write started', () => writing)
    await stream.close()
    await new Promise((r) => setTimeout(r, 300))
    expect(await h.committedOffset(groupId, topic)).toBe(2)
    release()
    await done
    await new Promise((r) => setTimeout(r, 300))
    expect(await h.committedOffset(groupId, topic)).toBeLessThanOrEqual(3)
    expect(seen).toEqual(['ok-0', 'ok-1'])
    expect((await h.readAll(dlq)).map((d) => d.key)).toEqual(['bad'])
  })

  it('a dead-letter topic function that returns the source topic is refused, not an endless loop of copies', async () => {
    const topic = await h.createTopic('pk-red-loop')
    await fill(topic)
    const groupId = uniqueName('pk-red-loop-g')
    const consumer = wrapConsumer(pk.consumer(groupId), { verifier: verifierFor([orders]), tenant: 'acme', deadLetter: { producer: pk.producer(), topic: (t) => t } })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const seen: string[] = []
    const error = await settle(stream.process((m) => void seen.push(m.key.toString())))
    await stream.close().catch(() => undefined)
    expect(error).toBeInstanceOf(DeadLetterError)
    expect(seen).toEqual(['ok-0', 'ok-1'])
    expect(await h.recordCount(topic)).toBe(4)
    expect(await h.committedOffset(groupId, topic)).toBeLessThanOrEqual(2)
  })

  it('two concurrent process() calls on one stream are refused (they would commit messages still in a handler)', async () => {
    const topic = await h.createTopic('pk-red-twice')
    await fill(topic)
    const consumer = wrapConsumer(pk.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'skip' })
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    const first = settle(stream.process(async () => new Promise((r) => setTimeout(r, 50))))
    const second = await settle(stream.process(() => undefined))
    expect(second).toBeInstanceOf(TypeError)
    await stream.close()
    await first
  })
})

export type { RejectionPolicy }
