import {
  ConfigError,
  createContextStore,
  createMemoryReplayStore,
  currentContext,
  ReasonCode,
  runWithContext,
  SigningError,
  type ContextStore,
  type DispositionEvent,
  type IdentityContext,
} from '@idctx/core'
import type { IHeaders } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { DeadLetterError, wrapConsumer, wrapProducer, type IdctxBatchMessage, type RejectionPolicy } from '../src/index.js'
import {
  batchPayload,
  FakeConsumer,
  FakeProducer,
  messagePayload,
  record,
  signer,
  signRecords,
  subOf,
  verifier,
} from './fake-kafka.js'

const TOPIC = 'orders'
const alice: IdentityContext = { sub: 'u-alice', tid: 'acme', txn: 'txn-a' }
const mallory: IdentityContext = { sub: 'u-outer', tid: 'acme', txn: 'txn-outer' }

function consumerWith(policy: RejectionPolicy, extra: { store?: ContextStore; dlq?: FakeProducer } = {}) {
  const fake = new FakeConsumer()
  const dispositions: DispositionEvent[] = []
  const consumer = wrapConsumer(fake, {
    verifier: verifier(),
    tenant: 'acme',
    policy,
    observer: { onDisposition: (e) => void dispositions.push(e) },
    ...(extra.store === undefined ? {} : { contextStore: extra.store }),
    ...(policy === 'dead-letter' ? { deadLetter: { producer: extra.dlq ?? new FakeProducer() } } : {}),
  })
  return { fake, consumer, dispositions }
}

/** A record signed for alice, and one without a token (rejected as `missing`). */
function aliceAndUnsigned() {
  const signed = signRecords(TOPIC, alice, [['k-0', 'v-0']])
  return [record(0, 'k-0', 'v-0', { idctx: Buffer.from(signed.token) }), record(1, 'k-1', 'v-1', {})]
}

/** What a handler saw: the current context, and what a forward through a wrapped producer did. */
interface Seen {
  key: string
  current: IdentityContext | undefined
  forward: string
}

describe('a handler never inherits the identity around the consumer', () => {
  const forwardFrom = async (producer: ReturnType<typeof wrapProducer<FakeProducer>>, raw: FakeProducer): Promise<string> => {
    const before = raw.sent.length
    try {
      await producer.send({ topic: 'next', messages: [{ value: 'forwarded' }] })
    } catch (e) {
      return e instanceof SigningError ? 'SigningError' : `unexpected ${String(e)}`
    }
    expect(raw.sent).toHaveLength(before + 1)
    return `signed as ${subOf(raw.sent[before]?.messages[0]?.headers?.idctx)}`
  }

  it('eachMessage: a verified record runs in its own identity; an audited rejected one in none', async () => {
    const raw = new FakeProducer()
    const producer = wrapProducer(raw, { signer })
    const { fake, consumer } = consumerWith('audit')
    const seen: Seen[] = []
    // kafkajs calls the handlers from the context `run` was started in: start it, and call them, inside mallory's.
    await runWithContext(mallory, () =>
      consumer.run({
        eachMessage: async ({ message }) => {
          seen.push({ key: String(message.key), current: currentContext(), forward: await forwardFrom(producer, raw) })
        },
      }),
    )
    for (const m of aliceAndUnsigned()) await runWithContext(mallory, () => fake.eachMessage(messagePayload(TOPIC, m)))

    expect(seen.map((s) => [s.key, s.current?.sub, s.forward])).toEqual([
      ['k-0', 'u-alice', 'signed as u-alice'],
      ['k-1', undefined, 'SigningError'],
    ])
  })

  it('eachBatch: the handler runs in no identity; runInContext enters a verified message\'s, and none for an audited one', async () => {
    const raw = new FakeProducer()
    const producer = wrapProducer(raw, { signer })
    const { fake, consumer } = consumerWith('audit')
    const seen: Seen[] = []
    let handlerCurrent: IdentityContext | undefined | 'unset' = 'unset'
    let handlerForward = ''
    await runWithContext(mallory, () =>
      consumer.run({
        eachBatch: async ({ batch, runInContext }) => {
          handlerCurrent = currentContext()
          handlerForward = await forwardFrom(producer, raw)
          for (const m of batch.messages) {
            seen.push(await runInContext(m, async () => ({ key: String(m.key), current: currentContext(), forward: await forwardFrom(producer, raw) })))
          }
        },
      }),
    )
    await runWithContext(mallory, () => fake.eachBatch(batchPayload(TOPIC, aliceAndUnsigned())))

    expect(handlerCurrent).toBeUndefined()
    expect(handlerForward).toBe('SigningError')
    expect(seen.map((s) => [s.key, s.current?.sub, s.forward])).toEqual([
      ['k-0', 'u-alice', 'signed as u-alice'],
      ['k-1', undefined, 'SigningError'],
    ])
  })

  it('runInContext enters only the identity the wrapper verified for that very message object', async () => {
    const { fake, consumer } = consumerWith('audit')
    const outcomes: unknown[] = []
    await consumer.run({
      eachBatch: async ({ batch, runInContext }) => {
        const [verified, audited] = batch.messages as [IdctxBatchMessage<'audit'>, IdctxBatchMessage<'audit'>]
        // A copy of the audited message given the verified one's identity lends it nothing.
        const forged = { ...audited, identity: verified.identity, violation: undefined } as IdctxBatchMessage<'audit'>
        for (const m of [forged, { ...verified }]) {
          try {
            runInContext(m, () => outcomes.push(currentContext()))
            outcomes.push('ran')
          } catch (e) {
            outcomes.push(e instanceof TypeError ? 'TypeError' : e)
          }
        }
      },
    })
    await fake.eachBatch(batchPayload(TOPIC, aliceAndUnsigned()))
    expect(outcomes).toEqual(['TypeError', 'TypeError'])
  })

  it('skip and dead-letter: the handler is not called for the rejected record, and nothing runs in the outer identity', async () => {
    for (const policy of ['skip', 'dead-letter'] as const) {
      const dlq = new FakeProducer()
      const { fake, consumer, dispositions } = consumerWith(policy, { dlq })
      const keys: string[] = []
      await runWithContext(mallory, () => consumer.run({ eachMessage: async ({ message }) => void keys.push(String(message.key)) }))
      for (const m of aliceAndUnsigned()) await runWithContext(mallory, () => fake.eachMessage(messagePayload(TOPIC, m)))
      expect({ policy, keys }).toEqual({ policy, keys: ['k-0'] })
      expect(dispositions.map((d) => [d.policy, d.reason])).toEqual([[policy, ReasonCode.Missing]])
    }
  })

  it('works with a store of the caller\'s own (run, current and exit)', async () => {
    const store = createContextStore()
    const { fake, consumer } = consumerWith('audit', { store })
    const seen: [string, string | undefined][] = []
    await store.run(mallory, () =>
      consumer.run({ eachMessage: async ({ message }) => void seen.push([String(message.key), store.current()?.sub]) }),
    )
    for (const m of aliceAndUnsigned()) await store.run(mallory, () => fake.eachMessage(messagePayload(TOPIC, m)))
    expect(seen).toEqual([
      ['k-0', 'u-alice'],
      ['k-1', undefined],
    ])
  })

  it('a contextStore needs run, current and exit', () => {
    const noExit = { run: (_c: IdentityContext, fn: () => unknown) => fn(), current: () => undefined } as unknown as ContextStore
    const paths = (fn: () => unknown) => {
      try {
        fn()
      } catch (e) {
        if (e instanceof ConfigError) return e.issues.map((i) => i.path)
        throw e
      }
      return []
    }
    expect(paths(() => wrapConsumer(new FakeConsumer(), { verifier: verifier(), tenant: 'acme', policy: 'skip', contextStore: noExit }))).toEqual([
      'contextStore',
    ])
    expect(paths(() => wrapProducer(new FakeProducer(), { signer, contextStore: noExit }))).toEqual(['contextStore'])
  })
})

describe('carrier headers: every occurrence counts, whatever its value', () => {
  const single = signRecords(TOPIC, alice, [['k', 'v']])
  const pair = signRecords(TOPIC, alice, [
    ['k', 'v'],
    ['k2', 'v2'],
  ])
  const tok = Buffer.from(single.token)
  const pairTok = Buffer.from(pair.token)
  const [p0, p1] = pair.proofs.map((p) => Buffer.from(p as string)) as [Buffer, Buffer]
  const odd = (v: unknown) => v as Buffer

  // Header sets for the record (k, v) and the verdict each must get (undefined: verified).
  const cases: [string, IHeaders, string | undefined][] = [
    ['one token', { idctx: tok }, undefined],
    ['one token and its proof', { idctx: pairTok, 'idctx-proof': p0 }, undefined],
    ['[token, null]', { idctx: [tok, odd(null)] }, ReasonCode.Duplicate],
    ['[null, token]', { idctx: [odd(null), tok] }, ReasonCode.Duplicate],
    ['[token, undefined]', { idctx: [tok, odd(undefined)] }, ReasonCode.Duplicate],
    ['[token, token]', { idctx: [tok, tok] }, ReasonCode.Duplicate],
    ['[null, null]', { idctx: [odd(null), odd(null)] }, ReasonCode.Duplicate],
    ['null alone (an empty token)', { idctx: odd(null) }, ReasonCode.Missing],
    ['[null] (an empty token)', { idctx: [odd(null)] }, ReasonCode.Missing],
    ['a number (an empty token)', { idctx: odd(7) }, ReasonCode.Missing],
    ['no idctx header', {}, ReasonCode.Missing],
    ['two idctx-proof headers, the right one twice', { idctx: pairTok, 'idctx-proof': [p0, p0] }, ReasonCode.BindingMismatch],
    ['two idctx-proof headers, right and other', { idctx: pairTok, 'idctx-proof': [p0, p1] }, ReasonCode.BindingMismatch],
    ['[proof, null]', { idctx: pairTok, 'idctx-proof': [p0, odd(null)] }, ReasonCode.BindingMismatch],
    ['[null, proof]', { idctx: pairTok, 'idctx-proof': [odd(null), p0] }, ReasonCode.BindingMismatch],
    ['a null proof on a batch record', { idctx: pairTok, 'idctx-proof': odd(null) }, ReasonCode.BindingMismatch],
    ['a null proof on a single record', { idctx: tok, 'idctx-proof': odd(null) }, ReasonCode.BindingMismatch],
  ]

  it.each(['eachMessage', 'eachBatch'] as const)('%s: each header set gets its exact verdict', async (mode) => {
    const { fake, consumer } = consumerWith('audit')
    const verdicts: string[] = []
    const note = (identity: { sub: string } | undefined, violation: { reason: string } | undefined) =>
      void verdicts.push(identity !== undefined ? `verified ${identity.sub}` : `rejected ${violation?.reason}`)
    if (mode === 'eachMessage') {
      await consumer.run({ eachMessage: async ({ identity, violation }) => note(identity, violation) })
      for (const [i, [, headers]] of cases.entries()) await fake.eachMessage(messagePayload(TOPIC, record(i, 'k', 'v', headers)))
    } else {
      await consumer.run({ eachBatch: async ({ batch }) => void batch.messages.forEach((m) => note(m.identity, m.violation)) })
      await fake.eachBatch(batchPayload(TOPIC, cases.map(([, headers], i) => record(i, 'k', 'v', headers))))
    }
    expect(verdicts).toHaveLength(cases.length)
    expect(cases.map(([name], i) => [name, verdicts[i]])).toEqual(
      cases.map(([name, , reason]) => [name, reason === undefined ? 'verified u-alice' : `rejected ${reason}`]),
    )
  })
})

describe('two identical records of one send are two messages', () => {
  it.each(['eachMessage', 'eachBatch'] as const)('%s: both handled, neither replayed; a copy at another offset is replayed', async (mode) => {
    const fake = new FakeConsumer()
    const dispositions: DispositionEvent[] = []
    const consumer = wrapConsumer(fake, {
      verifier: verifier({ replay: createMemoryReplayStore() }),
      tenant: 'acme',
      policy: 'skip',
      observer: { onDisposition: (e) => void dispositions.push(e) },
    })
    const signed = signRecords(TOPIC, alice, [
      ['same', 'same'],
      ['same', 'same'],
    ])
    const headersOf = (i: number): IHeaders => ({ idctx: Buffer.from(signed.token), 'idctx-proof': Buffer.from(signed.proofs[i] as string) })
    const records = [record(0, 'same', 'same', headersOf(0)), record(1, 'same', 'same', headersOf(1))]
    const copies = [record(2, 'same', 'same', headersOf(0)), record(3, 'same', 'same', headersOf(1))]
    const handled: string[] = []
    if (mode === 'eachMessage') {
      await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.offset) })
      for (const m of [...records, ...records, ...copies]) await fake.eachMessage(messagePayload(TOPIC, m))
    } else {
      await consumer.run({ eachBatch: async ({ batch }) => void handled.push(...batch.messages.map((m) => m.offset)) })
      await fake.eachBatch(batchPayload(TOPIC, records))
      await fake.eachBatch(batchPayload(TOPIC, records)) // a redelivery at the same coordinates
      await fake.eachBatch(batchPayload(TOPIC, copies))
    }
    expect(handled).toEqual(['0', '1', '0', '1'])
    expect(dispositions.map((d) => [d.reason, d.coordinates])).toEqual([
      [ReasonCode.Replayed, `${TOPIC}/0/2`],
      [ReasonCode.Replayed, `${TOPIC}/0/3`],
    ])
  })
})

describe('eachBatch: a failed dead-letter write is never swallowed', () => {
  it.each([true, false])('eachBatchAutoResolve %s: the batch throws DeadLetterError, resolves nothing, and succeeds on retry', async (autoResolve) => {
    const dlq = new FakeProducer()
    dlq.failures = 2
    const { fake, consumer, dispositions } = consumerWith('dead-letter', { dlq })
    const handled: string[] = []
    await consumer.run({
      eachBatchAutoResolve: autoResolve,
      eachBatch: async ({ batch, resolveOffset }) => {
        for (const m of batch.messages) {
          handled.push(m.offset)
          resolveOffset(m.offset)
        }
      },
    })
    const attempts: (string | string[])[] = []
    for (let i = 0; i < 3; i++) {
      const payload = batchPayload(TOPIC, aliceAndUnsigned())
      const outcome = await fake.eachBatch(payload).then(
        () => 'ok',
        (e: unknown) => (e instanceof DeadLetterError ? 'DeadLetterError' : String(e)),
      )
      attempts.push(outcome, payload.resolved)
    }
    expect(attempts).toEqual(['DeadLetterError', [], 'DeadLetterError', [], 'ok', autoResolve ? ['0'] : ['0', '1']])
    expect(handled).toEqual(['0'])
    expect(dlq.sent.map((r) => [r.topic, r.messages.map((m) => String(m.key))])).toEqual([[`${TOPIC}.idctx-dlq`, ['k-1']]])
    expect(dispositions.map((d) => [d.policy, d.coordinates])).toEqual([['dead-letter', `${TOPIC}/0/1`]])
  })
})
