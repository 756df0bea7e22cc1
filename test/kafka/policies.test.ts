import { createMemoryReplayStore, ReasonCode, type IdentityContext, type ReplayStore } from '@idctx/core'
import { RecordRejectedError, wrapConsumer, wrapProducer, type KafkaSender, type Violation } from '@idctx/kafkajs'
import type { Producer } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { KafkaHarness, RecordingObserver, rejectReason, service, uniqueName, verifierFor, waitFor } from './helpers.js'

const h = new KafkaHarness('pol')
afterAll(() => h.close())

const orders = service('svc-orders')
const acme: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 'txn-policies' }

/** Produces `ok-*` records signed and `bad-*` records without a token (rejected as `missing`), in order. */
async function produce(producer: Producer, topic: string, keys: readonly string[]): Promise<void> {
  const signing = wrapProducer(producer, { signer: orders.signer })
  for (const key of keys) {
    const message = { key, value: `v-${key}` }
    if (key.startsWith('ok')) await signing.send({ topic, messages: [message] }, { context: acme })
    else await producer.send({ topic, messages: [message] })
  }
}

describe('rejection policies', () => {
  it('skip: rejected records are reported and passed over; the offset moves past them', async () => {
    const topic = await h.createTopic('pol-skip')
    await produce(await h.producer(), topic, ['ok-0', 'bad-1', 'ok-2', 'bad-3'])
    const observer = new RecordingObserver()
    const groupId = uniqueName('pol-skip-g')
    const handled: string[] = []
    const consumer = wrapConsumer(h.consumer({ groupId }), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'skip', observer })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })

    await waitFor('offset 4 committed', async () => (await h.committedOffset(groupId, topic)) === 4)
    expect(handled).toEqual(['ok-0', 'ok-2'])
    expect(observer.dispositions.map((d) => [d.policy, d.reason, d.target, d.coordinates])).toEqual([
      ['skip', ReasonCode.Missing, undefined, `${topic}/0/1`],
      ['skip', ReasonCode.Missing, undefined, `${topic}/0/3`],
    ])
  })

  it('skip with eachBatch and manual resolving: the wrapper resolves rejected records the handler cannot see', async () => {
    const topic = await h.createTopic('pol-skip-batch')
    await produce(await h.producer(), topic, ['bad-0', 'ok-1', 'bad-2', 'bad-3'])
    const observer = new RecordingObserver()
    const groupId = uniqueName('pol-skip-batch-g')
    const batches: string[][] = []
    const consumer = wrapConsumer(h.consumer({ groupId }), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'skip', observer })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        batches.push(batch.messages.map((m) => m.key?.toString() ?? ''))
        for (const m of batch.messages) resolveOffset(m.offset)
      },
    })

    await waitFor('offset 4 committed', async () => (await h.committedOffset(groupId, topic)) === 4)
    expect(batches.flat()).toEqual(['ok-1'])
    expect(batches.filter((b) => b.length === 0)).toEqual([])
    // Each rejected record was dealt with once: no refetch loop over an unresolved tail.
    expect(observer.dispositions.map((d) => d.coordinates)).toEqual([`${topic}/0/0`, `${topic}/0/2`, `${topic}/0/3`])
  })

  it.each(['eachMessage', 'eachBatch'] as const)('audit (%s): the handler runs for every record, violations flagged', async (mode) => {
    const topic = await h.createTopic(`pol-audit-${mode}`)
    await produce(await h.producer(), topic, ['ok-0', 'bad-1', 'ok-2'])
    const observer = new RecordingObserver()
    const seen: [string, string | undefined, Violation['reason'] | undefined][] = []
    const consumer = wrapConsumer(h.consumer(), { verifier: verifierFor([orders]), tenant: 'acme', policy: 'audit', observer })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    if (mode === 'eachMessage') {
      await consumer.run({
        eachMessage: async ({ message, identity, violation }) => {
          seen.push([message.key?.toString() ?? '', identity?.sub, violation?.reason])
        },
      })
    } else {
      await consumer.run({
        eachBatch: async ({ batch, runInContext }) => {
          for (const m of batch.messages) {
            await runInContext(m, async () => seen.push([m.key?.toString() ?? '', m.identity?.sub, m.violation?.reason]))
          }
        },
      })
    }
    await waitFor('three records', () => seen.length >= 3)
    expect(seen).toEqual([
      ['ok-0', 'u-1', undefined],
      ['bad-1', undefined, ReasonCode.Missing],
      ['ok-2', 'u-1', undefined],
    ])
    expect(observer.dispositions.map((d) => [d.policy, d.reason, d.coordinates])).toEqual([['audit', ReasonCode.Missing, `${topic}/0/1`]])
  })

  it('fail (eachMessage): throws RecordRejectedError and the partition stops at the record, redelivered, never skipped', async () => {
    const topic = await h.createTopic('pol-fail')
    await produce(await h.producer(), topic, ['ok-0', 'bad-1', 'ok-2'])
    const observer = new RecordingObserver()
    const groupId = uniqueName('pol-fail-g')
    const handled: string[] = []
    const crashes: unknown[] = []
    const consumer = wrapConsumer(h.consumer({ groupId, retry: { initialRetryTime: 50, retries: 0 } }), {
      verifier: verifierFor([orders]),
      tenant: 'acme',
      policy: 'fail',
      observer,
    })
    consumer.on(consumer.events.CRASH, (e) => void crashes.push(e.payload.error))
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })

    await waitFor('the record failed twice', () => observer.dispositions.length >= 2)
    await consumer.stop()
    expect(handled).toEqual(['ok-0'])
    expect(new Set(observer.dispositions.map((d) => `${d.policy} ${d.reason} ${d.coordinates}`))).toEqual(
      new Set([`fail missing ${topic}/0/1`]),
    )
    expect(await h.committedOffset(groupId, topic)).toBe(1)
    // kafkajs retries the handler, then crashes with KafkaJSNumberOfRetriesExceeded (cause: our error) and restarts.
    const rootCause = (e: unknown): unknown => (e instanceof RecordRejectedError || !(e instanceof Error) || e.cause === undefined ? e : rootCause(e.cause))
    const error = crashes.map(rootCause).find((e) => e instanceof RecordRejectedError) as RecordRejectedError | undefined
    expect(crashes.length).toBeGreaterThan(0)
    expect(error?.reason).toBe(ReasonCode.Missing)
    expect(error?.coordinates).toBe(`${topic}/0/1`)
  })

  it('fail (eachBatch): the records before the rejected one are handled once and resolved; the batch stops there', async () => {
    const topic = await h.createTopic('pol-fail-batch')
    await produce(await h.producer(), topic, ['ok-0', 'ok-1', 'bad-2', 'ok-3'])
    const observer = new RecordingObserver()
    const groupId = uniqueName('pol-fail-batch-g')
    const handled: string[] = []
    const consumer = wrapConsumer(h.consumer({ groupId, retry: { initialRetryTime: 50, retries: 0 } }), {
      verifier: verifierFor([orders]),
      tenant: 'acme',
      policy: 'fail',
      observer,
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachBatch: async ({ batch }) => void handled.push(...batch.messages.map((m) => m.key?.toString() ?? '')) })

    await waitFor('the record failed twice', () => observer.dispositions.length >= 2)
    await waitFor('offset 2 committed', async () => (await h.committedOffset(groupId, topic)) === 2)
    await consumer.stop()
    expect(handled).toEqual(['ok-0', 'ok-1'])
    expect(new Set(observer.dispositions.map((d) => `${d.policy} ${d.reason} ${d.coordinates}`))).toEqual(
      new Set([`fail missing ${topic}/0/2`]),
    )
  })

  it('dead-letter: a failed DLQ write is retried by kafkajs; the record is written once the write succeeds, never dropped', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pol-dlq-retry')
    const raw = await h.producer()
    await produce(raw, topic, ['ok-0', 'bad-1', 'ok-2'])
    let failures = 0
    const flaky: KafkaSender = {
      send: async (record) => {
        if (failures < 2) {
          failures++
          throw new Error('dead-letter broker unavailable')
        }
        return raw.send(record)
      },
      sendBatch: (batch) => raw.sendBatch(batch),
    }
    const observer = new RecordingObserver()
    const handled: string[] = []
    const consumer = wrapConsumer(h.consumer({ retry: { initialRetryTime: 50, retries: 5 } }), {
      verifier: verifierFor([orders]),
      tenant: 'acme',
      observer,
      deadLetter: { producer: flaky },
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })

    await waitFor('ok-2 handled', () => handled.includes('ok-2'))
    expect(failures).toBe(2)
    expect(handled).toEqual(['ok-0', 'ok-2'])
    const dead = await h.readAll(dlq)
    expect(dead.map((d) => [d.key, rejectReason(d)])).toEqual([['bad-1', ReasonCode.Missing]])
    // Reported once: only the write that succeeded counts as a disposition.
    expect(observer.dispositions.map((d) => [d.policy, d.target, d.coordinates])).toEqual([['dead-letter', dlq, `${topic}/0/1`]])
  })

  it.each([true, false])(
    'dead-letter (eachBatch, eachBatchAutoResolve %s): a failed DLQ write commits nothing past the record, the batch is retried, the record lands in the DLQ',
    async (autoResolve) => {
      const { topic, dlq } = await h.createTopicWithDlq(`pol-dlq-batch-${autoResolve ? 'auto' : 'manual'}`)
      const raw = await h.producer()
      await produce(raw, topic, ['ok-0', 'bad-1', 'ok-2'])
      const groupId = uniqueName('pol-dlq-batch-g')
      // Every attempt notes the group's committed offset at that moment; the first two fail.
      const attempts: { committed: number; failed: boolean }[] = []
      const flaky: KafkaSender = {
        send: async (record) => {
          const failed = attempts.length < 2
          attempts.push({ committed: await h.committedOffset(groupId, topic), failed })
          if (failed) throw new Error('dead-letter broker unavailable')
          return raw.send(record)
        },
        sendBatch: (batch) => raw.sendBatch(batch),
      }
      const observer = new RecordingObserver()
      const handled: string[] = []
      const consumer = wrapConsumer(h.consumer({ groupId, retry: { initialRetryTime: 50, retries: 5 } }), {
        verifier: verifierFor([orders]),
        tenant: 'acme',
        observer,
        deadLetter: { producer: flaky },
      })
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        eachBatchAutoResolve: autoResolve,
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) {
            handled.push(m.key?.toString() ?? '')
            if (!autoResolve) resolveOffset(m.offset)
          }
        },
      })

      await waitFor('offset 3 committed', async () => (await h.committedOffset(groupId, topic)) === 3)
      // Two failed writes, then the one that succeeded: the batch was retried, not committed past bad-1.
      expect(attempts.map((a) => a.failed)).toEqual([true, true, false])
      expect(attempts.map((a) => a.committed <= 1)).toEqual([true, true, true])
      // The handler ran only once the rejected record was safe in the DLQ, so once per record.
      expect(handled).toEqual(['ok-0', 'ok-2'])
      const dead = await h.readAll(dlq)
      expect(dead.map((d) => [d.key, rejectReason(d), d.headers['idctx-original-offset']?.toString()])).toEqual([['bad-1', ReasonCode.Missing, '1']])
      expect(observer.dispositions.map((d) => [d.policy, d.target, d.coordinates])).toEqual([['dead-letter', dlq, `${topic}/0/1`]])
    },
  )

  it('infrastructure failures (a store or tenant resolver throwing) are retried, never dead-lettered', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pol-infra')
    await produce(await h.producer(), topic, ['ok-0'])
    const inner = createMemoryReplayStore()
    let storeCalls = 0
    const replay: ReplayStore = {
      check(entry) {
        storeCalls++
        if (storeCalls <= 2) throw new Error('replay store unavailable')
        return inner.check(entry)
      },
    }
    let resolverCalls = 0
    const observer = new RecordingObserver()
    const handled: string[] = []
    const consumer = wrapConsumer(h.consumer({ retry: { initialRetryTime: 50, retries: 5 } }), {
      verifier: verifierFor([orders], { replay }),
      tenant: async () => {
        resolverCalls++
        if (resolverCalls === 1) throw new Error('tenant directory unavailable')
        return 'acme'
      },
      observer,
      deadLetter: { producer: await h.producer() },
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })

    await waitFor('ok-0 handled', () => handled.length > 0)
    expect(handled).toEqual(['ok-0'])
    expect(resolverCalls).toBe(4)
    expect(storeCalls).toBe(3)
    expect(observer.dispositions).toEqual([])
    expect(observer.rejected).toEqual([])
    expect(await h.recordCount(dlq)).toBe(0)
  })
})

describe('tenant and scope checks', () => {
  it('expected tenant from the topic, payload tenant, per-topic requirements', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('acme-orders')
    const producer = await h.producer()
    const signing = wrapProducer(producer, { signer: orders.signer })
    const send = (key: string, value: string, context: IdentityContext) => signing.send({ topic, messages: [{ key, value }] }, { context })
    const scoped = { ...acme, scope: 'orders:read orders:write' }
    await send('ok', JSON.stringify({ tenant: 'acme' }), scoped)
    await send('ok-no-payload-tenant', JSON.stringify({ n: 1 }), scoped)
    await send('payload-other-tenant', JSON.stringify({ tenant: 'globex' }), scoped)
    await send('payload-unreadable', 'not json', scoped)
    await send('token-other-tenant', JSON.stringify({ tenant: 'globex' }), { ...scoped, tid: 'globex' })
    await send('missing-scope', JSON.stringify({ tenant: 'acme' }), { ...acme, scope: 'orders:read' })

    const observer = new RecordingObserver()
    const handled: string[] = []
    const consumer = wrapConsumer(h.consumer(), {
      verifier: verifierFor([orders]),
      tenant: ({ topic: t }) => (t.startsWith('acme-') ? 'acme' : { any: true }),
      payloadTenant: ({ message }) => (JSON.parse(message.value?.toString() ?? 'null') as { tenant?: string }).tenant,
      requirements: { [topic]: { scopes: ['orders:write'] } },
      observer,
      deadLetter: { producer },
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })

    await waitFor('six records', () => handled.length + observer.dispositions.length >= 6)
    expect(handled).toEqual(['ok', 'ok-no-payload-tenant'])
    const dead = await h.readAll(dlq)
    expect(dead.map((d) => [d.key, rejectReason(d)])).toEqual([
      ['payload-other-tenant', ReasonCode.TenantMismatch],
      ['payload-unreadable', ReasonCode.TenantMismatch],
      ['token-other-tenant', ReasonCode.TenantMismatch],
      ['missing-scope', ReasonCode.InsufficientScope],
    ])
  })
})
