import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { Partitioners } from 'kafkajs'
import {
  combineObservers,
  createConsoleLogger,
  createLogObserver,
  createMemoryReplayStore,
  createRemoteJwks,
  createSigner,
  createVerifier,
  defaultContextStore,
  KeyError,
  type IdctxLogger,
  type IdctxObserver,
  type KeySet,
  type KeySetDocument,
  type ReadyReport,
} from '@idctx/core'
import { createHopVerifier } from '@idctx/ingress'
import { wrapProducer } from '@idctx/kafkajs'
import { activeTraceId, contextFromTraceparent, createOtelObserver, traceparentOf } from '@idctx/otel'
import {
  createHopCounter,
  createKafka,
  DEFAULT_NAMES,
  idctxJwksUrl,
  json,
  jwksRoute,
  ORDERS_HTTP_ACL,
  serviceKeys,
  startHttp,
  type HopStats,
  type KafkaLogLevel,
} from '@idctx/example-shared'
import { parseOrderRequest, type OrderRecord } from './order.js'

export interface OrdersOptions {
  port?: number
  /** Interface to bind (default 127.0.0.1; 0.0.0.0 in a container). */
  host?: string
  kafkaBrokers: readonly string[]
  /** Topics (default `orders` and `orders-priority`). */
  topics?: { readonly orders?: string; readonly priority?: string }
  /** The gateway, whose idctx JWKS this service trusts. */
  gatewayUrl: string
  /** The idctx audience (trust domain). */
  audience: string
  /**
   * The private key set document of the `orders` issuer (`importKeySet`), the same for every
   * replica: from `IDCTX_KEYSET` / `IDCTX_KEYSET_FILE` (`keySetFromEnv`) or a secret manager.
   * Without it this process generates a key of its own: fine for a single replica only.
   */
  keySet?: string | KeySetDocument | undefined
  /** Also receives the signer's and verifier's events (an OpenTelemetry observer is always attached). */
  observer?: IdctxObserver
  /**
   * Where rejected messages are logged, by reason, rate-limited, user ids hashed (createLogObserver):
   * a pino logger or anything with its `(fields, message)` methods. Default: the console.
   */
  logger?: IdctxLogger
  kafkaLogLevel?: KafkaLogLevel
}

export interface OrdersService {
  readonly url: string
  /** The orders key set (shared by every replica given the same `keySet` document). */
  readonly keys: KeySet
  /** Accepted: verified requests whose record was published. Rejected: idctx reason codes (and `invalid_order`). */
  readonly stats: HopStats
  /** The start-up check: fetches the gateway's JWKS if never fetched, and reports whether it could. */
  ready(): Promise<ReadyReport>
  close(): Promise<void>
}

const tracer = trace.getTracer('orders')

function headerValues(req: IncomingMessage, name: string): string[] {
  return req.headersDistinct[name] ?? []
}

/**
 * The orders service: `POST /orders` verifies the gateway's `idctx` header with
 * `createHopVerifier` (`@idctx/ingress`) — the gateway's keys (remote JWKS), any tenant (the
 * gateway established it from the user token), this exact request (`httpLeaf`: method, authority,
 * path and query, body), no reuse of a gateway token — and then,
 * inside the verified context, publishes the order to Kafka with a signing producer: the record's
 * token keeps the user, tenant and transaction, with `orders` on top of the actor chain.
 *
 * Replicas: start every replica with the same `keySet` document, so they sign with one key set
 * and serve one JWKS (`GET /.well-known/idctx-jwks.json`, `createJwksHandler`); billing may fetch
 * it from any of them. While the gateway's JWKS cannot be reached, `POST /orders` answers 503.
 *
 * @example
 * ```ts
 * const orders = await startOrders({ kafkaBrokers: ['127.0.0.1:39092'], gatewayUrl: gateway.url, audience: 'shop' })
 * ```
 */
export async function startOrders(options: OrdersOptions): Promise<OrdersService> {
  const topics = { orders: options.topics?.orders ?? DEFAULT_NAMES.ordersTopic, priority: options.topics?.priority ?? DEFAULT_NAMES.priorityTopic }
  const keys = serviceKeys('orders', options.keySet)
  const log = createLogObserver({ logger: options.logger ?? createConsoleLogger(), expectedAudience: options.audience })
  const observer = combineObservers(createOtelObserver({ tracer }), log, options.observer)
  const verifier = createVerifier({
    audience: options.audience,
    // the demo's services talk plain HTTP on the compose network (docker/compose.yaml); serve JWKS over https elsewhere
    issuers: { gateway: createRemoteJwks(idctxJwksUrl(options.gatewayUrl), { allowInsecureHttp: true }) },
    producerAcl: { gateway: { destinations: [ORDERS_HTTP_ACL] } },
    // Every request is its own delivery: a gateway token presented twice is a replay.
    replay: createMemoryReplayStore(),
    observer,
  })
  // The replicas are reached under several names (127.0.0.1:<port>, orders-1:4002 in Docker):
  // the Host header names the authority here. A service with one public name pins it with
  // `authorities`, so a token signed for another service never verifies here.
  const hop = createHopVerifier({ verifier, tenant: { any: true } })
  const signer = createSigner({ issuer: 'orders', audience: options.audience, key: keys, traceId: activeTraceId, observer })
  const kafka = createKafka('orders', options.kafkaBrokers, options.kafkaLogLevel)
  const raw = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await raw.connect()
  const producer = wrapProducer(raw, { signer })
  const counter = createHopCounter()

  // Spans of their own, so the verification of the gateway's token and the signing of the record
  // each get their idctx attributes (the observer annotates the active span).
  const verify = (req: IncomingMessage, body: Buffer) =>
    tracer.startActiveSpan('idctx verify http:POST /orders', async (span) => {
      try {
        return await hop.check(req, body)
      } finally {
        span.end()
      }
    })

  const publish = (topic: string, order: OrderRecord) =>
    tracer.startActiveSpan(
      `send ${topic}`,
      { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': topic, 'messaging.operation.type': 'send' } },
      async (span) => {
        try {
          const traceparent = traceparentOf()
          await producer.send({
            topic,
            messages: [{ key: order.orderId, value: JSON.stringify(order), headers: traceparent ? { traceparent } : {} }],
          })
        } finally {
          span.end()
        }
      },
    )

  const placeOrder = async (req: IncomingMessage, body: Buffer): Promise<{ status: number; body: unknown; headers?: Record<string, string> }> => {
    let result: Awaited<ReturnType<typeof verify>>
    try {
      result = await verify(req, body)
    } catch (e) {
      // The gateway's keys cannot be checked right now (JWKS unreachable, or a refresh held back by
      // its cooldown): the token is not rejected, the caller retries.
      if (e instanceof KeyError) return { status: 503, body: { error: 'identity keys unavailable, retry' }, headers: { 'retry-after': '1' } }
      throw e
    }
    if (!result.ok) {
      const { reason, status, headers, body: answer } = result.refusal
      counter.reject(reason)
      return { status, body: answer, headers: { ...headers } }
    }
    const request = parseOrderRequest(body)
    if (request === undefined) {
      counter.reject('invalid_order')
      return { status: 400, body: { error: 'invalid order' } }
    }
    const identity = result.context
    const order: OrderRecord = { orderId: randomUUID(), tenant: identity.tid, item: request.item, qty: request.qty, amount: request.amount }
    const topic = request.priority === true ? topics.priority : topics.orders
    // Inside the verified context: the record's token carries this user, tenant and transaction.
    await defaultContextStore.run(identity, () => publish(topic, order))
    counter.accept()
    return { status: 202, body: { orderId: order.orderId, txn: identity.txn, topic } }
  }

  const http = await startHttp(
    options.port ?? 0,
    {
      ...jwksRoute(keys),
      'GET /healthz': (_req, _body, res) => json(res, 200, { ok: true }),
      'GET /stats': (_req, _body, res) => json(res, 200, counter.stats),
      'POST /orders': (req, body, res) =>
        tracer.startActiveSpan(
          'POST /orders',
          { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'url.path': '/orders' } },
          contextFromTraceparent(headerValues(req, 'traceparent')[0]),
          async (span) => {
            try {
              const r = await placeOrder(req, body)
              span.setAttribute('http.response.status_code', r.status)
              if (r.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${r.status}` })
              json(res, r.status, r.body, r.headers)
            } finally {
              span.end()
            }
          },
        ),
    },
    options.host,
  )
  return {
    url: http.url,
    keys,
    stats: counter.stats,
    ready: () => verifier.ready(),
    async close() {
      await http.close()
      await raw.disconnect()
    },
  }
}
