import { intEnv, keySetFromEnv, onShutdown, startTelemetry } from '@idctx/example-shared'
import { startGateway } from './gateway.js'

const env = process.env
const telemetry = startTelemetry({ serviceName: 'gateway', otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT })
const gateway = await startGateway({
  port: intEnv('PORT', 4001),
  host: env.HOST ?? '127.0.0.1',
  idpUrl: env.IDP_URL ?? 'http://127.0.0.1:4000',
  ordersUrl: env.ORDERS_URL ?? 'http://127.0.0.1:4002',
  audience: env.IDCTX_AUDIENCE ?? 'shop',
  // One key set document for every gateway replica: IDCTX_KEYSET or IDCTX_KEYSET_FILE.
  keySet: keySetFromEnv(env),
})
console.log(`gateway listening on ${gateway.url}`)
onShutdown(async () => {
  await gateway.close()
  await telemetry.shutdown()
})
