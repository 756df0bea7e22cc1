import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Queue } from 'bullmq'
import type { IdctxObserver } from '@idctx/core'
import type { AttackTargets } from '@idctx/example-attacker'
import { startBilling, type BillingService } from '@idctx/example-billing'
import { startGateway, type Gateway } from '@idctx/example-gateway'
import { startIdentityProvider, type IdentityProvider } from '@idctx/example-identity-provider'
import { startInvoiceWorker, type InvoiceWorker } from '@idctx/example-invoice-worker'
import { startOrders, type OrdersService } from '@idctx/example-orders'
import {
  createKafka,
  deadLetterTopicOf,
  ensureTopics,
  logUnreachableIssuers,
  newKeySetDocument,
  redisConnection,
  type KafkaLogLevel,
} from '@idctx/example-shared'

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  readonly kafkaBrokers: readonly string[]
  readonly redisUrl: string
  readonly audience?: string
  /** Makes topic, queue and group names unique, so runs never see each other's messages. */
  readonly runId?: string
  readonly kafkaLogLevel?: KafkaLogLevel
  /** Receives every service's idctx events (beside their OpenTelemetry observers). */
  readonly observer?: IdctxObserver
}

/** The names one run uses. */
export interface ClusterNames {
  readonly runId: string
  readonly ordersTopic: string
  readonly priorityTopic: string
  readonly queue: string
  readonly bullPrefix: string
  readonly billingGroup: string
}

/** Every example service, running in this process. */
export interface Cluster {
  readonly names: ClusterNames
  readonly audience: string
  readonly idp: IdentityProvider
  readonly gateway: Gateway
  /**
   * The orders replicas: started with one shared key set document, so they sign with the same key
   * and serve the same JWKS; the gateway spreads requests over them, billing fetches the JWKS of
   * the first one only.
   */
  readonly orders: readonly OrdersService[]
  readonly billing: BillingService
  readonly worker: InvoiceWorker
  /** What the attacker may reach, including the orders key for the two "insider" attacks. */
  attackTargets(): AttackTargets
  /** Stops every service, deletes the run's topics and removes its queue from Redis. */
  close(): Promise<void>
}

/** A port free right now: the gateway and orders need each other's URL before both listen. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** How many orders replicas the demo runs. */
export const ORDERS_REPLICAS = 2

/**
 * Starts the identity provider, gateway, orders (two replicas), billing and the invoice worker in
 * this process, wired like docker/compose.yaml wires the containers, on unique topics and a unique
 * queue. The orders replicas share one key set: the document is generated once here and given to
 * both (in a deployment: a secret every replica reads through IDCTX_KEYSET or IDCTX_KEYSET_FILE).
 * Once all are up, every verifying service runs its start-up check (`verifier.ready()`); an
 * issuer that cannot be reached fails the start.
 *
 * @example
 * ```ts
 * const cluster = await startCluster({ kafkaBrokers: ['127.0.0.1:39092'], redisUrl: 'redis://127.0.0.1:6379' })
 * try { … } finally { await cluster.close() }
 * ```
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const runId = options.runId ?? `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const names: ClusterNames = {
    runId,
    ordersTopic: `demo-orders-${runId}`,
    priorityTopic: `demo-orders-priority-${runId}`,
    queue: `demo-invoices-${runId}`,
    bullPrefix: 'idctx-demo',
    billingGroup: `demo-billing-${runId}`,
  }
  const audience = options.audience ?? 'shop'
  const topics = { orders: names.ordersTopic, priority: names.priorityTopic }
  const level = options.kafkaLogLevel ?? 'nothing'
  const observer = options.observer !== undefined ? { observer: options.observer } : {}
  const closers: (() => Promise<unknown>)[] = []
  const kafka = createKafka('demo', options.kafkaBrokers, level)
  const allTopics = [names.ordersTopic, names.priorityTopic, deadLetterTopicOf(names.ordersTopic), deadLetterTopicOf(names.priorityTopic)]

  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined)
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: allTopics }).catch(() => undefined)
    await admin.deleteGroups([names.billingGroup]).catch(() => undefined)
    await admin.disconnect()
    const queue = new Queue(names.queue, { connection: redisConnection(options.redisUrl), prefix: names.bullPrefix })
    await queue.obliterate({ force: true }).catch(() => undefined)
    await queue.close()
  }

  try {
    await ensureTopics(kafka, allTopics)
    const idp = await startIdentityProvider()
    closers.push(() => idp.close())
    const gatewayPort = await freePort()
    // Generate once, give to every replica: replicas of one service share one key set.
    const ordersKeySet = JSON.stringify(newKeySetDocument('orders'))
    const orders: OrdersService[] = []
    for (let i = 0; i < ORDERS_REPLICAS; i++) {
      const replica = await startOrders({
        kafkaBrokers: options.kafkaBrokers,
        topics,
        gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
        audience,
        keySet: ordersKeySet,
        kafkaLogLevel: level,
        ...observer,
      })
      closers.push(() => replica.close())
      orders.push(replica)
    }
    const [firstOrders] = orders as [OrdersService, ...OrdersService[]]
    const gateway = await startGateway({ port: gatewayPort, idpUrl: idp.url, ordersUrl: orders.map((o) => o.url), audience, ...observer })
    closers.push(() => gateway.close())
    const billing = await startBilling({
      kafkaBrokers: options.kafkaBrokers,
      redisUrl: options.redisUrl,
      // One replica's JWKS, as a load balancer would give any one: it lists the key of both.
      ordersUrl: firstOrders.url,
      audience,
      topics,
      queue: names.queue,
      bullPrefix: names.bullPrefix,
      groupId: names.billingGroup,
      kafkaLogLevel: level,
      ...observer,
    })
    closers.push(() => billing.close())
    const worker = await startInvoiceWorker({
      redisUrl: options.redisUrl,
      billingUrl: billing.url,
      audience,
      queue: names.queue,
      bullPrefix: names.bullPrefix,
      ...observer,
    })
    closers.push(() => worker.close())
    // Start-up check of every verifying service: each trusted issuer's JWKS fetched once.
    const unreachable: string[] = []
    const log = (line: string) => void unreachable.push(line)
    for (const [name, ready] of [...orders.map((o, i) => [`orders-${i + 1}`, () => o.ready()] as const), ['billing', () => billing.ready()] as const]) {
      await logUnreachableIssuers(name, ready, log)
    }
    if (unreachable.length > 0) throw new Error(`the demo's services cannot reach their issuers' keys: ${unreachable.join('; ')}`)
    return {
      names,
      audience,
      idp,
      gateway,
      orders,
      billing,
      worker,
      attackTargets: () => ({
        kafkaBrokers: options.kafkaBrokers,
        redisUrl: options.redisUrl,
        audience,
        idpUrl: idp.url,
        gatewayUrl: gateway.url,
        ordersUrl: firstOrders.url,
        topics,
        queue: names.queue,
        bullPrefix: names.bullPrefix,
        insider: { ordersKey: firstOrders.keys },
      }),
      close,
    }
  } catch (e) {
    await close()
    throw e
  }
}
