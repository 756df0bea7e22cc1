import { DEFAULT_NAMES, kafkaBrokers } from '@idctx/example-shared'
import { asExpected, runAttacks } from './attacker.js'

// Attacks a running cluster (natively or `docker compose --profile attack run attacker`). The two
// attacks that need the orders service's signing key are skipped here: the demo runs them.
const env = process.env
const report = await runAttacks({
  kafkaBrokers: kafkaBrokers(env.KAFKA_BROKERS),
  redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  audience: env.IDCTX_AUDIENCE ?? 'shop',
  idpUrl: env.IDP_URL ?? 'http://127.0.0.1:4000',
  gatewayUrl: env.GATEWAY_URL ?? 'http://127.0.0.1:4001',
  ordersUrl: env.ORDERS_URL ?? 'http://127.0.0.1:4002',
  topics: { orders: DEFAULT_NAMES.ordersTopic, priority: DEFAULT_NAMES.priorityTopic },
  queue: DEFAULT_NAMES.invoiceQueue,
})
let unexpected = 0
for (const o of report.outcomes) {
  const ok = asExpected(o)
  if (!ok) unexpected++
  const got = o.skipped !== undefined ? `skipped: ${o.skipped}` : `${o.got ?? 'not rejected (nothing seen)'} — ${o.evidence}`
  console.log(`${ok ? 'ok ' : 'BAD'}  ${o.hop.padEnd(14)} ${o.title.padEnd(68)} → ${got}${ok ? '' : ` (expected ${o.expected})`}`)
}
console.log(unexpected === 0 ? 'every attack was rejected with its expected reason' : `${unexpected} attack(s) not rejected as expected`)
process.exit(unexpected === 0 ? 0 : 1)
