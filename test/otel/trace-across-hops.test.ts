import { randomBytes } from 'node:crypto'
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq'
import { BullMQOtel } from 'bullmq-otel'
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createSigner,
  createVerifier,
  generateKey,
  runWithContext,
  type IdentityContext,
  type VerifiedContext,
} from '@idctx/core'
import { createProcessor, wrapQueue } from '@idctx/bullmq'
import { headerString, wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import {
  activeTraceId,
  contextFromTraceparent,
  createOtelObserver,
  IdctxAttributes as A,
  IdctxEvents,
  IdctxMetrics,
  IdctxSpanNames,
  traceparentOf,
} from '@idctx/otel'
import { counterSum, registerTestSdk, type TestSdk } from './otel-sdk.js'

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const REDIS_URL = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const connection: ConnectionOptions = {
  host: REDIS_URL.hostname,
  port: Number(REDIS_URL.port || 6379),
  db: REDIS_URL.pathname.length > 1 ? Number(REDIS_URL.pathname.slice(1)) : 0,
  ...(REDIS_URL.password !== '' ? { password: decodeURIComponent(REDIS_URL.password) } : {}),
}
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
const kafka = new Kafka({ clientId: unique('otel-it'), brokers: BROKERS, logLevel: logLevel.NOTHING })
let admin: Admin
let raw: Producer
const closers: (() => Promise<unknown>)[] = []
const topics: string[] = []

beforeAll(async () => {
  sdk = registerTestSdk()
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
  await sdk?.shutdown()
})

/**
 * The whole pipeline of one test: an API signs into Kafka, a consumer (svc-orders) verifies and
 * enqueues a BullMQ job signed by itself, a worker verifies it. One observer serves every hop.
 */
async function pipeline(options: { bullmqTelemetry: boolean }) {
  const observer = createOtelObserver({ userIdSalt: SALT })
  const apiKey = generateKey('EdDSA', { kid: unique('api') })
  const ordersKey = generateKey('EdDSA', { kid: unique('orders') })
  const apiSigner = createSigner({ issuer: 'svc-api', audience: AUDIENCE, key: apiKey, traceId: activeTraceId, observer })
  const ordersSigner = createSigner({ issuer: 'svc-orders', audience: AUDIENCE, key: ordersKey, traceId: activeTraceId, observer })
  const kafkaVerifier = createVerifier({ audience: AUDIENCE, issuers: { 'svc-api': [apiKey] }, observer })
  const jobVerifier = createVerifier({ audience: AUDIENCE, issuers: { 'svc-orders': [ordersKey] }, observer })

  const topic = unique('otel-orders')
  const dlq = `${topic}.idctx-dlq`
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }, { topic: dlq, numPartitions: 1 }] })
  topics.push(topic, dlq)
  const queueName = unique('otel-charges')
  const prefix = unique('idctx-otel')
  const telemetry = options.bullmqTelemetry ? { telemetry: new BullMQOtel({ tracerName: 'bullmq-it' }) } : {}

  const rawQueue = new Queue(queueName, { connection, prefix, ...telemetry })
  closers.push(async () => {
    await rawQueue.obliterate({ force: true })
    await rawQueue.close()
  })
  const queue = wrapQueue(rawQueue, { signer: ordersSigner })

  const processed: { job: Job; identity: VerifiedContext; traceId: string | undefined }[] = []
  const failed: { job: Job | undefined; error: Error }[] = []
  const worker = new Worker(
    queueName,
    createProcessor(
      async (job, { identity }) => {
        processed.push({ job: job as Job, identity, traceId: activeTraceId() })
        return 'charged'
      },
      { verifier: jobVerifier, tenant: 'acme', observer },
    ),
    { connection, prefix, ...telemetry },
  )
  worker.on('failed', (job, error) => failed.push({ job, error }))
  closers.push(() => worker.close())

  const tracer = trace.getTracer('orders-app')
  const consumer = wrapConsumer(
    kafka.consumer({ groupId: unique('otel-g'), maxWaitTimeInMs: 200, retry: { initialRetryTime: 100, retries: 2 } }),
    { verifier: kafkaVerifier, tenant: 'acme', deadLetter: { producer: raw }, observer },
  )
  closers.push(() => consumer.disconnect())
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => {
      // What instrumentation-kafkajs would do: the processing span continues the producer's trace.
      const parent = contextFromTraceparent(headerString(message.headers, 'traceparent'))
      await tracer.startActiveSpan(`process ${topic}`, { kind: SpanKind.CONSUMER }, parent, async (span: Span) => {
        try {
          // Without BullMQ telemetry, carry the traceparent where bullmq-otel would put it.
          const carried = options.bullmqTelemetry ? undefined : { telemetry: { metadata: JSON.stringify({ traceparent: traceparentOf() }) } }
          await queue.add('charge', { order: message.key?.toString() ?? '' }, carried)
        } finally {
          span.end()
        }
      })
    },
  })

  const producer = wrapProducer(raw, { signer: apiSigner })
  /** Sends one order inside a root `POST /orders` span, the way an HTTP instrumentation would. */
  const request = (key: string, identity: IdentityContext) =>
    tracer.startActiveSpan('POST /orders', { kind: SpanKind.SERVER, root: true }, async (span: Span) => {
      try {
        await runWithContext(identity, () =>
          producer.send({ topic, messages: [{ key, value: JSON.stringify({ key }), headers: { traceparent: traceparentOf() as string } }] }),
        )
        return span.spanContext().traceId
      } finally {
        span.end()
      }
    })

  /** Adds a job without a token (the unwrapped queue), inside a root span. */
  const unsignedJob = () =>
    tracer.startActiveSpan('enqueue unsigned', { root: true }, async (span: Span) => {
      try {
        const carried = options.bullmqTelemetry ? undefined : { telemetry: { metadata: JSON.stringify({ traceparent: traceparentOf() }) } }
        const job = await queue.unwrapped.add('charge', { order: 'o-unsigned' }, carried)
        return { traceId: span.spanContext().traceId, jobId: job.id }
      } finally {
        span.end()
      }
    })

  return { topic, queueName, request, unsignedJob, processed, failed }
}

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

describe.each([
  { bullmqTelemetry: false, title: 'traceparent carried by hand' },
  { bullmqTelemetry: true, title: "BullMQ's own telemetry (bullmq-otel)" },
])('one request stays one trace: API → Kafka → consumer → BullMQ → worker ($title)', ({ bullmqTelemetry }) => {
  it('with identity attributes on every hop and a consistent trc', async () => {
    const p = await pipeline({ bullmqTelemetry })
    const identity: IdentityContext = { sub: 'user-3c9d', tid: 'acme', txn: unique('txn') }
    const traceId = await p.request('o-1', identity)

    await waitFor('the job to be processed', () => p.processed.length === 1 || p.failed.length > 0)
    expect(p.failed.map((f) => f.error.message)).toEqual([])
    const done = p.processed[0]!
    expect(done.identity.txn).toBe(identity.txn)
    expect(done.identity.claims.iss).toBe('svc-orders')
    expect(done.identity.claims.trc).toBe(traceId)
    // the worker's handler runs in the same trace when BullMQ's telemetry makes a process span
    if (bullmqTelemetry) expect(done.traceId).toBe(traceId)

    const jobVerifyName = `${IdctxSpanNames.Verify} bullmq:${p.queueName}/charge`
    const bullmqProcessName = `process ${p.queueName}`
    await waitFor('every span of the trace to end', () =>
      byTrace(traceId).some((s) => s.name === (bullmqTelemetry ? bullmqProcessName : jobVerifyName)),
    )
    const spans = byTrace(traceId)
    const userHash = (s: ReadableSpan) => s.attributes[A.User]

    // hop 1: the API's request span carries the signing
    const request = named(spans, 'POST /orders')
    expect(request.parentSpanContext).toBeUndefined()
    expect(request.attributes).toMatchObject({ [A.Tenant]: 'acme', [A.Txn]: identity.txn, [A.Producer]: 'svc-api', [A.Destination]: `kafka:${p.topic}` })
    expect(userHash(request)).toMatch(/^[0-9a-f]{32}$/)
    expect(userHash(request)).not.toContain('user-3c9d')

    // hop 2: the Kafka consumer verifies before the handler runs: an own verify span, child of the request
    const kafkaVerify = named(spans, `${IdctxSpanNames.Verify} kafka:${p.topic}`)
    childOf(kafkaVerify, request)
    expect(kafkaVerify.attributes).toMatchObject({
      [A.Result]: 'accepted',
      [A.Tenant]: 'acme',
      [A.Txn]: identity.txn,
      [A.Producer]: 'svc-api',
      [A.Trc]: traceId,
      'messaging.system': 'kafka',
      'messaging.destination.name': p.topic,
    })
    expect(kafkaVerify.attributes[A.TrcMismatch]).toBeUndefined()
    expect(userHash(kafkaVerify)).toBe(userHash(request))

    // hop 3: the consumer's processing span signs the job
    const processKafka = named(spans, `process ${p.topic}`)
    childOf(processKafka, request)
    expect(processKafka.attributes).toMatchObject({
      [A.Tenant]: 'acme',
      [A.Txn]: identity.txn,
      [A.Producer]: 'svc-orders',
      [A.Destination]: `bullmq:${p.queueName}/charge`,
    })
    expect(userHash(processKafka)).toBe(userHash(request))

    // hop 4: the worker verifies the job
    let jobSpan: ReadableSpan
    if (bullmqTelemetry) {
      // BullMQ's own process span is active in the processor: idctx annotates it, no extra span
      expect(spans.filter((s) => s.name === jobVerifyName)).toHaveLength(0)
      jobSpan = named(spans, bullmqProcessName)
      const add = named(spans, `add ${p.queueName}.charge`)
      childOf(add, processKafka)
      childOf(jobSpan, add)
    } else {
      jobSpan = named(spans, jobVerifyName)
      childOf(jobSpan, processKafka)
      expect(jobSpan.attributes).toMatchObject({ 'messaging.system': 'bullmq', 'messaging.destination.name': p.queueName })
    }
    expect(jobSpan.attributes).toMatchObject({
      [A.Result]: 'accepted',
      [A.Tenant]: 'acme',
      [A.Txn]: identity.txn,
      [A.Producer]: 'svc-orders',
      [A.Destination]: `bullmq:${p.queueName}/charge`,
      [A.Trc]: traceId,
    })
    expect(jobSpan.attributes[A.TrcMismatch]).toBeUndefined()
    expect(userHash(jobSpan)).toBe(userHash(request))
    expect(jobSpan.status.code).not.toBe(SpanStatusCode.ERROR)
    // nothing idctx made left the trace
    expect(sdk.spans().filter((s) => s.name.startsWith('idctx') && s.spanContext().traceId !== traceId && s.attributes[A.Txn] === identity.txn)).toEqual([])
  })

  it('a rejection on the Kafka hop is a span event with the exact reason in the request trace, and counted', async () => {
    const p = await pipeline({ bullmqTelemetry })
    const before = await sdk.metrics()
    const traceId = await p.request('o-globex', { sub: 'user-3c9d', tid: 'globex', txn: unique('txn') })

    const verifyName = `${IdctxSpanNames.Verify} kafka:${p.topic}`
    const rejected = await waitFor('the rejected verify span', () => byTrace(traceId).find((s) => s.name === verifyName))
    childOf(rejected, named(byTrace(traceId), 'POST /orders'))
    expect(rejected.status).toEqual({ code: SpanStatusCode.ERROR, message: 'idctx rejected: tenant_mismatch' })
    const events = rejected.events.filter((e) => e.name === IdctxEvents.Rejected)
    expect(events.map((e) => e.attributes?.[A.Reason])).toEqual(['tenant_mismatch'])
    expect(rejected.attributes[A.Tenant]).toBe('globex')

    const handled = { [A.Policy]: 'dead-letter', [A.Reason]: 'tenant_mismatch', [A.Destination]: `kafka:${p.topic}` }
    const after = await waitFor('the dead-letter disposition', async () => {
      const m = await sdk.metrics()
      return counterSum(m, IdctxMetrics.RejectionsHandled, handled) - counterSum(before, IdctxMetrics.RejectionsHandled, handled) === 1 && m
    })
    const reason = { [A.Result]: 'rejected', [A.Reason]: 'tenant_mismatch', [A.Destination]: `kafka:${p.topic}` }
    expect(counterSum(after, IdctxMetrics.Verifications, reason) - counterSum(before, IdctxMetrics.Verifications, reason)).toBe(1)
    const disposition = sdk.spans().find((s) => s.name === `${IdctxSpanNames.Disposition} kafka:${p.topic}`)
    expect(disposition?.attributes[A.DispositionTarget]).toBe(`${p.topic}.idctx-dlq`)
    // the rejected record never reached the handler, so nothing was enqueued
    expect(p.processed).toHaveLength(0)
    expect(byTrace(traceId).some((s) => s.name === `process ${p.topic}`)).toBe(false)
  })

  it('a rejection on the BullMQ hop is a span event with the exact reason in the producer trace, and counted', async () => {
    const p = await pipeline({ bullmqTelemetry })
    const before = await sdk.metrics()
    const { traceId, jobId } = await p.unsignedJob()
    await waitFor('the job to fail', () => p.failed.length === 1)
    expect(p.failed[0]?.job?.id).toBe(jobId)
    expect(p.processed).toHaveLength(0)

    const spanName = bullmqTelemetry ? `process ${p.queueName}` : `${IdctxSpanNames.Verify} bullmq:${p.queueName}/charge`
    const span = await waitFor('the worker span', () => byTrace(traceId).find((s) => s.name === spanName))
    expect(span.status.code).toBe(SpanStatusCode.ERROR)
    expect(span.attributes[A.Result]).toBe('rejected')
    expect(span.events.filter((e) => e.name === IdctxEvents.Rejected).map((e) => e.attributes?.[A.Reason])).toEqual(['missing'])
    if (bullmqTelemetry) {
      expect(span.events.find((e) => e.name === IdctxEvents.Disposition)?.attributes?.[A.Policy]).toBe('fail')
    } else {
      // DispositionEvent carries no traceparent, so without an active span this one starts its own trace
      const disposition = sdk.spans().find((s) => s.name === `${IdctxSpanNames.Disposition} bullmq:${p.queueName}/charge`)
      expect(disposition?.attributes[A.Policy]).toBe('fail')
    }

    const after = await sdk.metrics()
    const destination = `bullmq:${p.queueName}/charge`
    const reason = { [A.Result]: 'rejected', [A.Reason]: 'missing', [A.Destination]: destination }
    expect(counterSum(after, IdctxMetrics.Verifications, reason) - counterSum(before, IdctxMetrics.Verifications, reason)).toBe(1)
    const handled = { [A.Policy]: 'fail', [A.Reason]: 'missing', [A.Destination]: destination }
    expect(counterSum(after, IdctxMetrics.RejectionsHandled, handled) - counterSum(before, IdctxMetrics.RejectionsHandled, handled)).toBe(1)
  })
})
