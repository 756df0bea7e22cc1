export { kafkaBrokers, redisConnection, intEnv } from './env.js'
export { startHttp, json } from './http.js'
export type { Route, HttpServer } from './http.js'
export {
  serviceKeys,
  newKeySetDocument,
  keySetFromEnv,
  jwksRoute,
  idctxJwksUrl,
  logUnreachableIssuers,
  watchIssuers,
  IDCTX_JWKS_PATH,
  JWKS_MAX_AGE_SECONDS,
} from './keys.js'
export { ORDERS_HTTP_ACL, DEFAULT_NAMES, deadLetterTopicOf, invoiceJobId } from './destinations.js'
export { createHopCounter, combinedStats, rejectedTotal } from './stats.js'
export type { HopStats, HopCounter } from './stats.js'
export { createKafka, ensureTopics } from './kafka.js'
export type { KafkaLogLevel } from './kafka.js'
export { onShutdown } from './shutdown.js'
export { startTelemetry } from './telemetry.js'
export type { Telemetry, TelemetryOptions, ReadableSpan } from './telemetry.js'
