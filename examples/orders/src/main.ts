import { intEnv, kafkaBrokers, keySetFromEnv, onShutdown, startTelemetry, watchIssuers } from '@idctx/example-shared'
import { startOrders } from './orders.js'

const env = process.env
const telemetry = startTelemetry({ serviceName: 'orders', otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT })
const orders = await startOrders({
  port: intEnv('PORT', 4002),
  host: env.HOST ?? '127.0.0.1',
  kafkaBrokers: kafkaBrokers(env.KAFKA_BROKERS),
  gatewayUrl: env.GATEWAY_URL ?? 'http://127.0.0.1:4001',
  audience: env.IDCTX_AUDIENCE ?? 'shop',
  // Every replica of orders must load the same key set document (docs/key-rotation.md):
  // IDCTX_KEYSET (the document) or IDCTX_KEYSET_FILE (a mounted secret); without either, a key
  // is generated for this one process.
  keySet: keySetFromEnv(env),
})
console.log(`orders listening on ${orders.url}`)
// The gateway may start after orders: its JWKS is checked now and until it can be fetched.
const stopWatching = watchIssuers('orders', () => orders.ready())
onShutdown(async () => {
  stopWatching()
  await orders.close()
  await telemetry.shutdown()
})
