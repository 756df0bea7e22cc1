import { trace } from '@opentelemetry/api'
import { Worker, type Job } from 'bullmq'
import { BullMQOtel } from 'bullmq-otel'
import {
  combineObservers,
  createConsoleLogger,
  createLogObserver,
  createMemoryReplayStore,
  createRemoteJwks,
  createVerifier,
  encodeDestinationComponent,
  type IdctxLogger,
  type IdctxObserver,
} from '@idctx/core'
import { createProcessor } from '@idctx/bullmq'
import { createOtelObserver } from '@idctx/otel'
import {
  createHopCounter,
  DEFAULT_NAMES,
  idctxJwksUrl,
  json,
  redisConnection,
  startHttp,
  type HopStats,
} from '@idctx/example-shared'
import type { InvoiceJobData } from '@idctx/example-billing'
import { createInvoiceStore, type Invoice, type InvoiceStore } from './invoice-store.js'

export interface InvoiceWorkerOptions {
  /** Serve `/healthz` and `/stats` on this port; no HTTP server when omitted. */
  port?: number
  /** Interface to bind (default 127.0.0.1; 0.0.0.0 in a container). */
  host?: string
  redisUrl: string
  /** The billing service, whose idctx JWKS this worker trusts. */
  billingUrl: string
  /** The idctx audience (trust domain). */
  audience: string
  /** The invoice queue (default `invoices`) and BullMQ key prefix (default `bull`). */
  queue?: string
  bullPrefix?: string
  concurrency?: number
  /** Where invoices go (default: a new in-process store). */
  store?: InvoiceStore
  /** Also receives the verifier's and processor's events. */
  observer?: IdctxObserver
  /**
   * Where rejected messages are logged, by reason, rate-limited, user ids hashed (createLogObserver):
   * a pino logger or anything with its `(fields, message)` methods. Default: the console.
   */
  logger?: IdctxLogger
}

export interface InvoiceWorker {
  readonly url: string | undefined
  readonly store: InvoiceStore
  /** Accepted: invoices written. Rejected: reason codes; dispositions: `failed` (the failed-job set). */
  readonly stats: HopStats
  close(): Promise<void>
}

const tracer = trace.getTracer('invoice-worker')

/**
 * The invoice worker: a BullMQ worker whose processor (`createProcessor`) verifies every job
 * first — a token of the `billing` service (its remote JWKS), bound to this queue, job name and
 * the exact job data, allowed by the producer ACL (`billing` → `bullmq:<queue>/*`), for the tenant
 * named in the job data, seen once (replay store). A rejected job fails at once, unrecoverable,
 * with `idctx rejected: <reason>`. Accepted jobs write an invoice into the tenant-scoped store,
 * inside the job's verified context.
 *
 * @example
 * ```ts
 * const worker = await startInvoiceWorker({ redisUrl, billingUrl: billing.url, audience: 'shop' })
 * ```
 */
export async function startInvoiceWorker(options: InvoiceWorkerOptions): Promise<InvoiceWorker> {
  const queueName = options.queue ?? DEFAULT_NAMES.invoiceQueue
  const store = options.store ?? createInvoiceStore()
  const counter = createHopCounter()
  const log = createLogObserver({ logger: options.logger ?? createConsoleLogger(), expectedAudience: options.audience })
  const observer = combineObservers(createOtelObserver({ tracer }), log, options.observer)
  const verifier = createVerifier({
    audience: options.audience,
    // the demo's services talk plain HTTP on the compose network (docker/compose.yaml); serve JWKS over https elsewhere
    issuers: { billing: createRemoteJwks(idctxJwksUrl(options.billingUrl), { allowInsecureHttp: true }) },
    // ACL patterns match the percent-encoded destination: encode a configurable queue name.
    producerAcl: { billing: { destinations: [`bullmq:${encodeDestinationComponent(queueName)}/*`] } },
    replay: createMemoryReplayStore(),
    observer,
  })
  const processor = createProcessor<InvoiceJobData, { invoiceId: string; created: boolean }>(
    async (job: Job<InvoiceJobData>, { identity }) => {
      const invoice: Invoice = {
        invoiceId: `inv-${job.data.orderId}`,
        orderId: job.data.orderId,
        tenant: job.data.tenant,
        item: job.data.item,
        qty: job.data.qty,
        amount: job.data.amount,
        txn: identity.txn,
        user: identity.sub,
        issuedAt: new Date().toISOString(),
      }
      // The store checks the verified context's tenant against the tenant it is asked to write.
      const created = store.put(job.data.tenant, invoice)
      counter.accept()
      return { invoiceId: invoice.invoiceId, created }
    },
    {
      verifier,
      tenant: { any: true },
      payloadTenant: (data) => data.tenant,
      observer: combineObservers(observer, counter.observer),
    },
  )
  const worker = new Worker(queueName, processor, {
    connection: redisConnection(options.redisUrl),
    prefix: options.bullPrefix ?? 'bull',
    concurrency: options.concurrency ?? 8,
    telemetry: new BullMQOtel({ tracerName: 'invoice-worker' }),
  })
  // Without a listener BullMQ prints worker errors; the failed-job set keeps what matters.
  worker.on('error', () => {})
  await worker.waitUntilReady()

  const http =
    options.port === undefined
      ? undefined
      : await startHttp(
          options.port,
          {
            'GET /healthz': (_req, _body, res) => json(res, worker.isRunning() ? 200 : 503, { ok: worker.isRunning() }),
            'GET /stats': (_req, _body, res) => json(res, 200, { ...counter.stats, invoices: store.counts() }),
          },
          options.host,
        )
  return {
    url: http?.url,
    store,
    stats: counter.stats,
    async close() {
      await worker.close()
      await http?.close()
    },
  }
}
