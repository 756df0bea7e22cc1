import { intEnv, kafkaBrokers, onShutdown, startTelemetry } from '@idctx/example-shared'
import { startOrders } from './orders.js'

const env = process.env
const telemetry = startTelemetry({ serviceName: 'orders', otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT })
const orders = await startOrders({
  port: intEnv('PORT', 4002),
  host: env.HOST ?? '127.0.0.1',
  kafkaBrokers: kafkaBrokers(env.KAFKA_BROKERS),
  gatewayUrl: env.GATEWAY_URL ?? 'http://127.0.0.1:4001',
  audience: env.IDCTX_AUDIENCE ?? 'shop',
})
console.log(`orders listening on ${orders.url}`)
onShutdown(async () => {
  await orders.close()
  await telemetry.shutdown()
})
