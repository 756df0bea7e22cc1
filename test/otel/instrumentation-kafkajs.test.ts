import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { metrics, SpanKind, SpanStatusCode, trace, type Span, type SpanContext } from '@opentelemetry/api'
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import type * as KafkaJs from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createSigner,
  createVerifier,
  currentContext,
  generateKey,
  runWithContext,
  type IdentityContext,
  type IdctxObserver,
  type VerifiedContext,
} from '@idctx/core'
import { headerString, wrapConsumer, wrapProducer, type IdctxRunConfig } from '@idctx/kafkajs'
import {
  activeTraceId,
  contextFromTraceparent,
  createOtelObserver,
  IdctxAttributes as A,
  IdctxEvents,
  IdctxSpanNames,
} from '@idctx/otel'
import { registerTestSdk, type TestSdk } from './otel-sdk.js'

// @opentelemetry/instrumentation-kafkajs 0.32 patches kafkajs through a require hook. Vitest loads
// `import 'kafkajs'` natively as ESM, which that hook never sees (even a dynamic import after
// enable() stays unpatched), so kafkajs is required only after the instrumentation is enabled.
// A require through the hook also patches a kafkajs already in the require cache (in place, on
// Kafka.prototype); beforeAll checks the patch is there so nothing below can pass vacuously.
const require = createRequire(import.meta.url)

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const AUDIENCE = 'shop'
const SALT = 'integration-salt'

const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

let sdk: TestSdk
let instrumentation: KafkaJsInstrumentation
let kafka: KafkaJs.Kafka
let admin: KafkaJs.Admin
let raw: KafkaJs.Producer
const closers: (() => Promise<unknown>)[] = []
const topics: string[] = []

beforeAll(async () => {
  sdk = registerTestSdk()
  instrumentation = new KafkaJsInstrumentation({ enabled: false })
  instrumentation.setTracerProvider(trace.getTracerProvider())
  instrumentation.setMeterProvider(metrics.getMeterProvider())
  instrumentation.enable()
  const kafkajs = require('kafkajs') as typeof KafkaJs
  if ((kafkajs.Kafka.prototype.producer as unknown as { __wrapped?: boolean }).__wrapped !== true) {
    throw new Error('kafkajs was loaded before the instrumentation and is not patched: run this file isolated')
  }
  kafka = new kafkajs.Kafka({ clientId: unique('otel-kjs'), brokers: BROKERS, logLevel: kafkajs.logLevel.NOTHING })
  admin = kafka.admin()
  await admin.connect()
  raw = kafka.producer()
  await raw.connect()
})

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await raw?.disconnect()
  await admin?.deleteTopics({ topics }).catch(() => undefined)
  await admin?.disconnect()
  instrumentation?.disable()
  await sdk?.shutdown()
})

const byTrace = (traceId: string) => sdk.spans().filter((s) => s.spanContext().traceId === traceId)
const named = (spans: ReadableSpan[], name: string) => {
  const found = spans.filter((s) => s.name === name)
  expect(found, `exactly one span named ${name}; have ${spans.map((s) => s.name).join(', ')}`).toHaveLength(1)
  return found[0] as ReadableSpan
}
const childOf = (child: ReadableSpan, parent: ReadableSpan) => {
  expect(child.spanContext().traceId).toBe(parent.spanContext().traceId)
  expect(child.parentSpanContext?.spanId).toBe(parent.spanContext().spanId)
}
const idctxKeys = (s: ReadableSpan) => Object.keys(s.attributes).filter((k) => k.startsWith('idctx.'))
/** Every span idctx created itself for this topic, in any trace. */
const idctxSpansFor = (topic: string) =>
  sdk.spans().filter((s) => s.name.startsWith('idctx') && (s.name.endsWith(`kafka:${topic}`) || s.attributes[A.Destination] === `kafka:${topic}`))
const linkedTo = (s: ReadableSpan) => s.links.map((l) => `${l.context.traceId}/${l.context.spanId}`)
const idOf = (sc: SpanContext | ReadableSpan) => {
  const c = 'spanContext' in sc ? sc.spanContext() : sc
  return `${c.traceId}/${c.spanId}`
}

async function createTopics(): Promise<{ topic: string; dlq: string }> {
  const topic = unique('otel-kjs')
  const dlq = `${topic}.idctx-dlq`
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }, { topic: dlq, numPartitions: 1 }] })
  topics.push(topic, dlq)
  return { topic, dlq }
}

/** An API that signs (svc-api) and a consumer-side verifier; one annotating observer for signing. */
function parties() {
  const signObserver = createOtelObserver({ userIdSalt: SALT })
  const key = generateKey('EdDSA', { kid: unique('api') })
  const signer = createSigner({ issuer: 'svc-api', audience: AUDIENCE, key, traceId: activeTraceId, observer: signObserver })
  const producer = wrapProducer(raw, { signer })
  const tracer = trace.getTracer('orders-app')

  /** Sends one order inside a root `POST /orders` span, the way an HTTP instrumentation would. */
  const request = (topic: string, key: string, identity: IdentityContext) => {
    const message: KafkaJs.Message = { key, value: JSON.stringify({ key }) }
    return tracer.startActiveSpan('POST /orders', { kind: SpanKind.SERVER, root: true }, async (span: Span) => {
      try {
        await runWithContext(identity, () => producer.send({ topic, messages: [message] }))
        return { traceId: span.spanContext().traceId, message }
      } finally {
        span.end()
      }
    })
  }

  const verifierFor = (observer: IdctxObserver) => createVerifier({ audience: AUDIENCE, issuers: { 'svc-api': [key] }, observer })

  const consume = async (topic: string, observer: IdctxObserver, config: IdctxRunConfig<'dead-letter'>) => {
    const consumer = wrapConsumer(
      kafka.consumer({ groupId: unique('otel-kjs-g'), maxWaitTimeInMs: 200, retry: { initialRetryTime: 100, retries: 2 } }),
      { verifier: verifierFor(observer), tenant: 'acme', deadLetter: { producer: raw }, observer },
    )
    closers.push(() => consumer.disconnect())
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run(config)
  }

  return { request, consume, tracer }
}

describe('@opentelemetry/instrumentation-kafkajs 0.32 and @idctx/otel together', () => {
  it('the instrumentation is active: a plain send makes its PRODUCER span and injects its traceparent', async () => {
    const { topic } = await createTopics()
    const message: KafkaJs.Message = { value: 'plain' }
    await raw.send({ topic, messages: [message] })

    const send = await waitFor('the send span', () => sdk.spans().find((s) => s.name === `send ${topic}`))
    expect(send.kind).toBe(SpanKind.PRODUCER)
    expect(send.instrumentationScope.name).toBe('@opentelemetry/instrumentation-kafkajs')
    expect(send.attributes).toMatchObject({ 'messaging.system': 'kafka', 'messaging.destination.name': topic })
    // it mutates the caller's message: the header names its own send span
    const { traceId, spanId } = send.spanContext()
    expect(message.headers?.traceparent).toBe(`00-${traceId}-${spanId}-01`)
  })

  it('eachMessage: app span → send → process is one trace, trc is its trace id, idctx annotates the process span only', async () => {
    const p = parties()
    const { topic } = await createTopics()
    const handled: { identity: VerifiedContext; active: SpanContext | undefined; traceparent: string | undefined }[] = []
    await p.consume(topic, createOtelObserver({ userIdSalt: SALT }), {
      eachMessage: async ({ message, identity }) => {
        handled.push({ identity, active: trace.getActiveSpan()?.spanContext(), traceparent: headerString(message.headers, 'traceparent') })
      },
    })

    const identity: IdentityContext = { sub: 'user-3c9d', tid: 'acme', txn: unique('txn') }
    const { traceId, message } = await p.request(topic, 'o-1', identity)
    // the wrapper sent a copy: the instrumentation's header injection never reached the caller's object
    expect(message.headers).toBeUndefined()

    await waitFor('the process span to end', () => byTrace(traceId).some((s) => s.name === `process ${topic}`))
    expect(handled).toHaveLength(1)
    const done = handled[0]!
    const spans = byTrace(traceId)
    const app = named(spans, 'POST /orders')
    const send = named(spans, `send ${topic}`)
    const processing = named(spans, `process ${topic}`)

    // one trace: app → instrumentation's send (child) → instrumentation's process (from the header)
    expect(app.parentSpanContext).toBeUndefined()
    expect(send.kind).toBe(SpanKind.PRODUCER)
    childOf(send, app)
    expect(processing.kind).toBe(SpanKind.CONSUMER)
    childOf(processing, send)
    expect(done.traceparent).toBe(`00-${traceId}-${send.spanContext().spanId}-01`)
    // the handler runs inside the instrumentation's process span
    expect(done.active && idOf(done.active)).toBe(idOf(processing))

    // trc binds the trace id of the span that signed — the send span did not exist yet
    expect(done.identity.claims.trc).toBe(traceId)
    expect(done.identity.claims.trc).toBe(app.spanContext().traceId)

    // signing annotated the app span (no `idctx sign` span); the send span has nothing of idctx
    expect(app.attributes).toMatchObject({
      [A.Tenant]: 'acme',
      [A.Txn]: identity.txn,
      [A.Producer]: 'svc-api',
      [A.Destination]: `kafka:${topic}`,
      [A.MessageCount]: 1,
      [A.TokenSha256]: done.identity.tokenSha256,
    })
    expect(app.events.filter((e) => e.name === IdctxEvents.Signed).map((e) => e.attributes?.[A.Jti])).toEqual([done.identity.claims.jti])
    expect(idctxKeys(send)).toEqual([])

    // verifying annotated the instrumentation's process span; its own messaging attributes stay
    expect(processing.attributes).toMatchObject({
      [A.Result]: 'accepted',
      [A.Tenant]: 'acme',
      [A.Txn]: identity.txn,
      [A.Producer]: 'svc-api',
      [A.Destination]: `kafka:${topic}`,
      [A.Trc]: traceId,
      [A.TokenSha256]: done.identity.tokenSha256,
      'messaging.system': 'kafka',
      'messaging.destination.name': topic,
      'messaging.operation.type': 'process',
    })
    expect(processing.attributes[A.User]).toMatch(/^[0-9a-f]{32}$/)
    expect(processing.attributes[A.User]).toBe(app.attributes[A.User])
    expect(processing.attributes[A.TrcMismatch]).toBeUndefined()
    expect(processing.status.code).not.toBe(SpanStatusCode.ERROR)
    // same trace as the producer: no link is added
    expect(processing.links).toEqual([])

    // annotate, don't duplicate: no span of idctx's own, in any trace
    expect(idctxSpansFor(topic).map((s) => s.name)).toEqual([])
    expect(spans.map((s) => s.name).sort()).toEqual(['POST /orders', `process ${topic}`, `send ${topic}`])
  })

  it('eachMessage: a cross-tenant record shows idctx.rejected tenant_mismatch on the process span, status ERROR', async () => {
    const p = parties()
    const { topic, dlq } = await createTopics()
    const handled: VerifiedContext[] = []
    await p.consume(topic, createOtelObserver({ userIdSalt: SALT }), {
      eachMessage: async ({ identity }) => {
        handled.push(identity)
      },
    })

    const txn = unique('txn')
    const { traceId } = await p.request(topic, 'o-globex', { sub: 'user-3c9d', tid: 'globex', txn })
    await waitFor('the process span to end', () => byTrace(traceId).some((s) => s.name === `process ${topic}`))
    // the dead-letter write happens inside the process span, so its send span is there once eachMessage returned
    const spans = byTrace(traceId)
    const send = named(spans, `send ${topic}`)
    const processing = named(spans, `process ${topic}`)
    childOf(processing, send)

    expect(processing.status).toEqual({ code: SpanStatusCode.ERROR, message: 'idctx rejected: tenant_mismatch' })
    expect(processing.events.filter((e) => e.name === IdctxEvents.Rejected).map((e) => e.attributes?.[A.Reason])).toEqual(['tenant_mismatch'])
    expect(processing.attributes).toMatchObject({
      [A.Result]: 'rejected',
      [A.Reason]: 'tenant_mismatch',
      [A.Tenant]: 'globex',
      [A.Txn]: txn,
      [A.Producer]: 'svc-api',
      [A.Trc]: traceId,
    })
    const disposition = processing.events.filter((e) => e.name === IdctxEvents.Disposition)
    expect(disposition.map((e) => [e.attributes?.[A.Policy], e.attributes?.[A.DispositionTarget]])).toEqual([['dead-letter', dlq]])
    // the dead-letter record is produced through the same instrumentation, inside the process span
    childOf(named(spans, `send ${dlq}`), processing)

    expect(idctxSpansFor(topic).map((s) => s.name)).toEqual([])
    expect(handled).toEqual([])
  })

  /**
   * Three records produced before the consumer starts (two of tenant acme, one of globex, each in
   * its own request trace) so that kafkajs delivers them in one batch.
   */
  async function batchFixture(p: ReturnType<typeof parties>, topic: string) {
    const sent: { traceId: string; txn: string; tid: string }[] = []
    for (const [key, tid] of [['o-1', 'acme'], ['o-2', 'acme'], ['o-3', 'globex']] as const) {
      const txn = unique('txn')
      const { traceId } = await p.request(topic, key, { sub: 'user-3c9d', tid, txn })
      sent.push({ traceId, txn, tid })
    }
    const sendSpans = sent.map((s) => named(byTrace(s.traceId), `send ${topic}`))
    return { sent, sendSpans }
  }

  /** The batch's `poll` span once it ended, checked to cover all three records. */
  async function pollSpan(topic: string): Promise<ReadableSpan> {
    const poll = await waitFor('the poll span to end', () => sdk.spans().find((s) => s.name === `poll ${topic}`))
    expect(sdk.spans().filter((s) => s.name === `poll ${topic}`)).toHaveLength(1)
    expect(poll.attributes['messaging.batch.message_count']).toBe(3)
    return poll
  }

  it('eachBatch: the callback runs in a new-root poll span; idctx annotates it, links each producer, runInContext enters identity only', async () => {
    const p = parties()
    const { topic, dlq } = await createTopics()
    const { sent, sendSpans } = await batchFixture(p, topic)

    type Seen = { offset: string; txn: string | undefined; active: SpanContext | undefined; traceId: string | undefined }
    const seen: Seen[] = []
    let batchActive: SpanContext | undefined
    await p.consume(topic, createOtelObserver({ userIdSalt: SALT }), {
      eachBatch: async ({ batch, runInContext }) => {
        batchActive = trace.getActiveSpan()?.spanContext()
        for (const message of batch.messages) {
          seen.push(
            runInContext(message, () => ({
              offset: message.offset,
              txn: currentContext()?.txn,
              active: trace.getActiveSpan()?.spanContext(),
              traceId: activeTraceId(),
            })),
          )
        }
      },
    })

    const poll = await pollSpan(topic)
    // the poll span is a new root of its own trace, a CLIENT span around the whole callback
    expect(poll.parentSpanContext).toBeUndefined()
    expect(poll.kind).toBe(SpanKind.CLIENT)
    const batchTrace = poll.spanContext().traceId
    expect(sent.map((s) => s.traceId)).not.toContain(batchTrace)
    expect(batchActive && idOf(batchActive)).toBe(idOf(poll))

    // per-message process spans: children of poll, linked to their producers, never active, so idctx leaves them alone
    const processes = byTrace(batchTrace).filter((s) => s.name === `process ${topic}`)
    expect(processes).toHaveLength(3)
    for (const s of processes) {
      childOf(s, poll)
      expect(s.kind).toBe(SpanKind.CONSUMER)
      expect(idctxKeys(s)).toEqual([])
    }
    expect(processes.flatMap(linkedTo).sort()).toEqual(sendSpans.map(idOf).sort())

    // runInContext enters the record's idctx context, but the trace context stays the poll span:
    // a producer signing there would bind trc to the batch's trace, not to the record's
    expect(seen.map((s) => s.txn)).toEqual([sent[0]?.txn, sent[1]?.txn])
    for (const s of seen) {
      expect(s.active && idOf(s.active)).toBe(idOf(poll))
      expect(s.traceId).toBe(batchTrace)
    }

    // idctx annotates the active poll span: one link per record (rejected too) to its producer's
    // send span, attributes last-writer-wins (the globex record was verified last)
    expect(linkedTo(poll)).toEqual(sendSpans.map(idOf))
    expect(poll.attributes).toMatchObject({
      [A.Result]: 'rejected',
      [A.Reason]: 'tenant_mismatch',
      [A.Tenant]: 'globex',
      [A.Txn]: sent[2]?.txn,
      [A.Trc]: sent[2]?.traceId,
    })
    expect(poll.status).toEqual({ code: SpanStatusCode.ERROR, message: 'idctx rejected: tenant_mismatch' })
    expect(poll.events.filter((e) => e.name === IdctxEvents.Rejected).map((e) => e.attributes?.[A.Reason])).toEqual(['tenant_mismatch'])
    const disposition = poll.events.filter((e) => e.name === IdctxEvents.Disposition)
    expect(disposition.map((e) => [e.attributes?.[A.Policy], e.attributes?.[A.DispositionTarget]])).toEqual([['dead-letter', dlq]])
    childOf(named(byTrace(batchTrace), `send ${dlq}`), poll)
    expect(idctxSpansFor(topic).map((s) => s.name)).toEqual([])
  })

  it('eachBatch with annotateActiveSpan: false: one idctx verify span per record under poll, linked to its producer; per-record trace context by hand', async () => {
    const p = parties()
    const { topic } = await createTopics()
    const { sent, sendSpans } = await batchFixture(p, topic)

    const seen: { txn: string | undefined; traceId: string | undefined; span: SpanContext }[] = []
    await p.consume(topic, createOtelObserver({ userIdSalt: SALT, annotateActiveSpan: false }), {
      eachBatch: async ({ batch, runInContext }) => {
        for (const message of batch.messages) {
          // the documented pattern: the record's trace context from its traceparent, its identity with runInContext
          const parent = contextFromTraceparent(headerString(message.headers, 'traceparent'))
          await p.tracer.startActiveSpan('handle order', {}, parent, async (span: Span) => {
            try {
              seen.push(runInContext(message, () => ({ txn: currentContext()?.txn, traceId: activeTraceId(), span: span.spanContext() })))
            } finally {
              span.end()
            }
          })
        }
      },
    })

    const poll = await pollSpan(topic)
    const batchTrace = poll.spanContext().traceId
    const verifyName = `${IdctxSpanNames.Verify} kafka:${topic}`
    const verifies = byTrace(batchTrace).filter((s) => s.name === verifyName)
    expect(verifies).toHaveLength(3)
    expect(verifies.map((s) => s.attributes[A.Txn])).toEqual(sent.map((s) => s.txn))
    verifies.forEach((s, i) => {
      childOf(s, poll)
      expect(linkedTo(s)).toEqual([idOf(sendSpans[i]!)])
      expect(s.attributes).toMatchObject({ [A.Tenant]: sent[i]?.tid, [A.Trc]: sent[i]?.traceId, 'messaging.operation.type': 'process' })
    })
    expect(verifies.map((s) => s.attributes[A.Result])).toEqual(['accepted', 'accepted', 'rejected'])
    const rejected = verifies[2]!
    expect(rejected.status).toEqual({ code: SpanStatusCode.ERROR, message: 'idctx rejected: tenant_mismatch' })
    expect(rejected.events.filter((e) => e.name === IdctxEvents.Rejected).map((e) => e.attributes?.[A.Reason])).toEqual(['tenant_mismatch'])

    // the poll span is left alone
    expect(idctxKeys(poll)).toEqual([])
    expect(poll.links).toEqual([])
    expect(poll.status.code).not.toBe(SpanStatusCode.ERROR)

    // without annotation the disposition gets its own span, under the rejected record's send span
    const disposition = named(byTrace(sent[2]!.traceId), `${IdctxSpanNames.Disposition} kafka:${topic}`)
    childOf(disposition, sendSpans[2]!)
    expect(disposition.attributes[A.Policy]).toBe('dead-letter')

    // with the trace context entered by hand, the handler runs in each record's producer trace
    expect(seen.map((s) => s.txn)).toEqual([sent[0]?.txn, sent[1]?.txn])
    expect(seen.map((s) => s.traceId)).toEqual([sent[0]?.traceId, sent[1]?.traceId])
    seen.forEach((s, i) => {
      const handle = named(byTrace(sent[i]!.traceId), 'handle order')
      expect(idOf(handle)).toBe(idOf(s.span))
      childOf(handle, sendSpans[i]!)
    })
  })
})
