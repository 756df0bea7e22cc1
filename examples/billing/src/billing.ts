import { SpanKind, trace } from '@opentelemetry/api'
import { Queue } from 'bullmq'
import { BullMQOtel } from 'bullmq-otel'
import { Partitioners } from 'kafkajs'
import {
  combineObservers,
  createConsoleLogger,
  createLogObserver,
  createMemoryReplayStore,
  createRemoteJwks,
  createSigner,
  createVerifier,
  kafkaDestination,
  type IdctxLogger,
  type IdctxObserver,
  type KeySet,
  type KeySetDocument,
  type ReadyReport,
} from '@idctx/core'
import { wrapQueue } from '@idctx/bullmq'
import { headerString, wrapConsumer, type ConsumedRecord } from '@idctx/kafkajs'
import { activeTraceId, contextFromTraceparent, createOtelObserver } from '@idctx/otel'
import {
  createHopCounter,
  createKafka,
  DEFAULT_NAMES,
  deadLetterTopicOf,
  ensureTopics,
  idctxJwksUrl,
  invoiceJobId,
  json,
  jwksRoute,
  redisConnection,
  serviceKeys,
  startHttp,
  type HopStats,
  type KafkaLogLevel,
} from '@idctx/example-shared'
import { parseOrderRecord } from '@idctx/example-orders/order'

export interface BillingOptions {
  port?: number
  /** Interface to bind (default 127.0.0.1; 0.0.0.0 in a container). */
  host?: string
  kafkaBrokers: readonly string[]
  redisUrl: string
  /** The orders service, whose idctx JWKS this service trusts. */
  ordersUrl: string
  /** The idctx audience (trust domain). */
  audience: string
  /** Topics consumed (default `orders` and `orders-priority`); dead letters go to `<topic>.idctx-dlq`. */
  topics?: { readonly orders?: string; readonly priority?: string }
  /** The invoice queue (default `invoices`) and BullMQ key prefix (default `bull`). */
  queue?: string
  bullPrefix?: string
  /** Consumer group (default `billing`). */
  groupId?: string
  /**
   * The private key set document of the `billing` issuer, the same for every replica
   * (`keySetFromEnv`); without it this process generates a key of its own (one replica only).
   */
  keySet?: string | KeySetDocument | undefined
  /** Also receives the signer's, verifier's and consumer's events. */
  observer?: IdctxObserver
  /**
   * Where rejected messages are logged, by reason, rate-limited, user ids hashed (createLogObserver):
   * a pino logger or anything with its `(fields, message)` methods. Default: the console.
   */
  logger?: IdctxLogger
  kafkaLogLevel?: KafkaLogLevel
}

export interface BillingService {
  readonly url: string
  readonly keys: KeySet
  /** Accepted: verified records turned into invoice jobs. Rejected: reason codes; dispositions: per DLQ topic. */
  readonly stats: HopStats
  /** The start-up check: fetches the orders JWKS if never fetched, and reports whether it could. */
  ready(): Promise<ReadyReport>
  close(): Promise<void>
}

/** The data of an `invoice` job. */
export interface InvoiceJobData {
  readonly orderId: string
  readonly tenant: string
  readonly item: string
  readonly qty: number
  readonly amount: number
  readonly priority: boolean
}

const tracer = trace.getTracer('billing')

/** The tenant a record claims for itself: its value's `tenant`; a record without one is rejected. */
function recordTenant({ message }: ConsumedRecord): string {
  const order = parseOrderRecord(message.value)
  if (order === undefined) throw new TypeError('record value is not an order')
  return order.tenant
}

/**
 * The billing service: a verifying Kafka consumer of the order topics. Each record must carry a
 * token of the `orders` service (its remote JWKS), bound to this exact record and topic, allowed
 * by the producer ACL (`orders` → `kafka:<orders topics>`), with scope `orders:write`, for the
 * tenant named in the record's value, seen once (replay store). Rejected records go to
 * `<topic>.idctx-dlq`. Accepted ones become an `invoice` job, added with a signing queue inside
 * the record's verified context, so the job carries the same user, tenant and transaction.
 *
 * @example
 * ```ts
 * const billing = await startBilling({ kafkaBrokers, redisUrl, ordersUrl: orders.url, audience: 'shop' })
 * ```
 */
export async function startBilling(options: BillingOptions): Promise<BillingService> {
  const topics = { orders: options.topics?.orders ?? DEFAULT_NAMES.ordersTopic, priority: options.topics?.priority ?? DEFAULT_NAMES.priorityTopic }
  const queueName = options.queue ?? DEFAULT_NAMES.invoiceQueue
  const keys = serviceKeys('billing', options.keySet)
  const counter = createHopCounter()
  const log = createLogObserver({ logger: options.logger ?? createConsoleLogger(), expectedAudience: options.audience })
  const observer = combineObservers(createOtelObserver({ tracer }), log, options.observer)
  const verifier = createVerifier({
    audience: options.audience,
    // the demo's services talk plain HTTP on the compose network (docker/compose.yaml); serve JWKS over https elsewhere
    // Any one orders replica: all replicas share one key set, so each serves the same JWKS.
    issuers: { orders: createRemoteJwks(idctxJwksUrl(options.ordersUrl), { allowInsecureHttp: true }) },
    producerAcl: { orders: { destinations: [kafkaDestination(topics.orders), kafkaDestination(topics.priority)] } },
    requirements: { scopes: ['orders:write'] },
    replay: createMemoryReplayStore(),
    observer,
  })
  const signer = createSigner({ issuer: 'billing', audience: options.audience, key: keys, traceId: activeTraceId, observer })

  const connection = redisConnection(options.redisUrl)
  const rawQueue = new Queue(queueName, {
    connection,
    prefix: options.bullPrefix ?? 'bull',
    telemetry: new BullMQOtel({ tracerName: 'billing' }),
    defaultJobOptions: { removeOnComplete: { age: 3600 }, removeOnFail: { age: 86_400 } },
  })
  const queue = wrapQueue(rawQueue, { signer })

  const kafka = createKafka('billing', options.kafkaBrokers, options.kafkaLogLevel)
  await ensureTopics(kafka, [topics.orders, topics.priority, deadLetterTopicOf(topics.orders), deadLetterTopicOf(topics.priority)])
  const deadLetters = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await deadLetters.connect()
  const consumer = wrapConsumer(
    // While the orders JWKS cannot be reached (or a new kid waits for the refresh cooldown) verify
    // throws KeyError and kafkajs retries the record: these retries ride out a blip of a minute
    // without a crash; past them kafkajs restarts the consumer and the record comes back anyway.
    kafka.consumer({ groupId: options.groupId ?? 'billing', maxWaitTimeInMs: 250, retry: { retries: 60, initialRetryTime: 200, maxRetryTime: 2000 } }),
    {
      verifier,
      tenant: { any: true },
      payloadTenant: recordTenant,
      deadLetter: { producer: deadLetters, topic: deadLetterTopicOf },
      observer: combineObservers(observer, counter.observer),
    },
  )
  await consumer.connect()
  await consumer.subscribe({ topics: [topics.orders, topics.priority], fromBeginning: true })
  await consumer.run({
    partitionsConsumedConcurrently: 3,
    // Runs inside the record's verified context: the job below is signed for the same user and tenant.
    eachMessage: async ({ topic, message }) => {
      const parent = contextFromTraceparent(headerString(message.headers, 'traceparent'))
      await tracer.startActiveSpan(`process ${topic}`, { kind: SpanKind.CONSUMER }, parent, async (span) => {
        try {
          const order = parseOrderRecord(message.value)
          if (order === undefined) {
            // Verified, so its producer sent it: a bug to look at, not an attack. Dropped, counted.
            counter.reject('invalid_payload')
            return
          }
          const priority = topic === topics.priority
          const data: InvoiceJobData = { ...order, priority }
          await queue.add(DEFAULT_NAMES.invoiceJob, data, { jobId: invoiceJobId(order.orderId), ...(priority ? { priority: 1 } : {}) })
          counter.accept()
        } finally {
          span.end()
        }
      })
    },
  })

  const http = await startHttp(
    options.port ?? 0,
    {
      ...jwksRoute(keys),
      'GET /healthz': (_req, _body, res) => json(res, 200, { ok: true }),
      'GET /stats': (_req, _body, res) => json(res, 200, counter.stats),
    },
    options.host,
  )
  return {
    url: http.url,
    keys,
    stats: counter.stats,
    ready: () => verifier.ready(),
    async close() {
      await consumer.disconnect()
      await deadLetters.disconnect()
      await rawQueue.close()
      await http.close()
    },
  }
}
