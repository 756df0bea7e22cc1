/**
 * A wrapped @platformatic/kafka consumer run as its own OS process by crash-restart.test.ts:
 *
 *   node --conditions=@idctx/source --import tsx test/platformatic-kafka/crash-consumer.ts
 *
 * Verifies `TOPIC` as group `GROUP` with the issuer's public JWK from `ISSUER_JWK`, the Redis
 * replay store at `REDIS_URL` (prefix `REPLAY_PREFIX`), dead-letters to `${TOPIC}.idctx-dlq`,
 * and handles each message slowly (`HANDLE_MS`), so the test can SIGKILL it mid-stream.
 * Talks through stdout, one JSON object a line: `ready`, `handled` (key), `rejected` (reason,
 * coordinates). Never prints a token, a key or a payload value.
 */
import { createVerifier, importJwk, type IdctxObserver } from '@idctx/core'
import { wrapConsumer } from '@idctx/platformatic-kafka'
import { createRedisReplayStore } from '@idctx/redis'
import { Consumer, Producer } from '@platformatic/kafka'
import { Redis } from 'ioredis'

const env = process.env
const topic = env.TOPIC as string
const brokers = (env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(',')
const out = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)

const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const onDisposition: NonNullable<IdctxObserver['onDisposition']> = (e) => out({ event: 'rejected', reason: e.reason, coordinates: e.coordinates })
const observer: IdctxObserver = { onVerified: (e) => out({ event: 'verified', jti: e.jti }), onDisposition }
const verifier = createVerifier({
  audience: 'shop',
  issuers: { 'svc-orders': [importJwk(JSON.parse(env.ISSUER_JWK as string))] },
  observer,
  replay: createRedisReplayStore({ client: redis, prefix: env.REPLAY_PREFIX as string }),
})
const dlq = new Producer({ clientId: 'crash-dlq', bootstrapBrokers: brokers })
const consumer = wrapConsumer(new Consumer({ clientId: 'crash-consumer', groupId: env.GROUP as string, bootstrapBrokers: brokers, maxWaitTime: 200, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 6000 }), {
  verifier,
  tenant: 'acme',
  observer: { onDisposition },
  deadLetter: { producer: dlq },
})
const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest' })
out({ event: 'ready' })
const handleMs = Number(env.HANDLE_MS ?? '20')
await stream.process(async (m) => {
  await new Promise((r) => setTimeout(r, handleMs))
  out({ event: 'handled', key: m.key.toString(), sub: m.identity.sub })
})
