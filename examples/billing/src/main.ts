import { intEnv, kafkaBrokers, keySetFromEnv, onShutdown, startTelemetry, watchIssuers } from '@idctx/example-shared'
import { startBilling } from './billing.js'

const env = process.env
const telemetry = startTelemetry({ serviceName: 'billing', otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT })
const billing = await startBilling({
  port: intEnv('PORT', 4003),
  host: env.HOST ?? '127.0.0.1',
  kafkaBrokers: kafkaBrokers(env.KAFKA_BROKERS),
  redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  ordersUrl: env.ORDERS_URL ?? 'http://127.0.0.1:4002',
  audience: env.IDCTX_AUDIENCE ?? 'shop',
  // One key set document for every billing replica: IDCTX_KEYSET or IDCTX_KEYSET_FILE.
  keySet: keySetFromEnv(env),
})
console.log(`billing consuming orders; JWKS on ${billing.url}`)
const stopWatching = watchIssuers('billing', () => billing.ready())
onShutdown(async () => {
  stopWatching()
  await billing.close()
  await telemetry.shutdown()
})
