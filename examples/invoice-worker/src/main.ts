import { intEnv, onShutdown, startTelemetry } from '@idctx/example-shared'
import { startInvoiceWorker } from './invoice-worker.js'

const env = process.env
const telemetry = startTelemetry({ serviceName: 'invoice-worker', otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT })
const worker = await startInvoiceWorker({
  port: intEnv('PORT', 4004),
  host: env.HOST ?? '127.0.0.1',
  redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  billingUrl: env.BILLING_URL ?? 'http://127.0.0.1:4003',
  audience: env.IDCTX_AUDIENCE ?? 'shop',
})
console.log(`invoice-worker processing invoices; health on ${worker.url ?? '(none)'}`)
onShutdown(async () => {
  await worker.close()
  await telemetry.shutdown()
})
