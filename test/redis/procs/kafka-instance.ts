/**
 * One instance of a consumer group, as its own OS process: a kafkajs consumer wrapped by
 * @idctx/kafkajs (eachMessage or eachBatch), dead-lettering to `<topic>.idctx-dlq`, verifying
 * with the Redis replay store every instance shares. Reports each partition assignment, each
 * handled record (before its offset can be resolved) and each rejection to the parent.
 */
import { createVerifier, importJwk, type PublicJwk } from '@idctx/core'
import { wrapConsumer } from '@idctx/kafkajs'
import { createRedisReplayStore } from '@idctx/redis'
import { Kafka, logLevel, type IHeaders } from 'kafkajs'
import { config, fail, name, onStop, redisClient, report, type RedisTarget } from './ipc.js'

export interface KafkaInstanceConfig {
  readonly brokers: readonly string[]
  readonly topic: string
  readonly groupId: string
  readonly variant: 'eachMessage' | 'eachBatch'
  readonly redis: RedisTarget
  readonly prefix: string
  readonly issuer: string
  readonly audience: string
  readonly tenant: string
  readonly jwk: PublicJwk
  /** False: never commit offsets, so everything this instance handled is redelivered after it dies. */
  readonly autoCommit: boolean
}

/** What an instance reports. */
export type KafkaInstanceMessage =
  | { type: 'running' }
  | { type: 'assigned'; partitions: number[] }
  | { type: 'handled'; partition: number; offset: string; key: string; value: string; headers: Record<string, string>; sub: string; tid: string }
  | { type: 'rejected'; reason: string; coordinates: string | undefined }
  | { type: 'fatal'; message: string }

function headerTexts(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue
    const one = Array.isArray(v) ? v[0] : v
    if (one !== undefined) out[k] = Buffer.isBuffer(one) ? one.toString('utf8') : String(one)
  }
  return out
}

async function main(): Promise<void> {
  const c = config<KafkaInstanceConfig>()
  const redis = redisClient(c.redis)
  redis.on('error', () => {})
  const verifier = createVerifier({
    audience: c.audience,
    issuers: { [c.issuer]: [importJwk(c.jwk)] },
    replay: createRedisReplayStore({ client: redis, prefix: c.prefix }),
  })
  const kafka = new Kafka({ clientId: name, brokers: [...c.brokers], logLevel: logLevel.NOTHING })
  const dlq = kafka.producer()
  await dlq.connect()
  const consumer = kafka.consumer({
    groupId: c.groupId,
    sessionTimeout: 6_000,
    heartbeatInterval: 500,
    rebalanceTimeout: 15_000,
    maxWaitTimeInMs: 100,
    retry: { initialRetryTime: 100, retries: 10 },
  })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    void report({ type: 'assigned', partitions: [...(e.payload.memberAssignment[c.topic] ?? [])].sort((a, b) => a - b) })
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [c.topic], fromBeginning: true })
  const wrapped = wrapConsumer(consumer, {
    verifier,
    tenant: c.tenant,
    deadLetter: { producer: dlq },
    observer: {
      onDisposition: (e) => void report({ type: 'rejected', reason: e.reason, coordinates: e.coordinates }),
    },
  })
  onStop(async () => {
    await consumer.disconnect()
    await dlq.disconnect()
    redis.disconnect()
  })
  // An identity-less record is reported with empty ids: the parent counts it as delivered unverified.
  const handled = (partition: number, m: { offset: string; key: Buffer | null; value: Buffer | null; headers?: IHeaders }, identity: { sub: string; tid: string } | undefined) =>
    report({
      type: 'handled',
      partition,
      offset: m.offset,
      key: m.key?.toString('utf8') ?? '',
      value: m.value?.toString('utf8') ?? '',
      headers: headerTexts(m.headers),
      sub: identity?.sub ?? '',
      tid: identity?.tid ?? '',
    })
  // An instance that never commits leaves every record it handled to be redelivered to the
  // others when it dies, at the same coordinates.
  const run = { autoCommit: c.autoCommit }
  if (c.variant === 'eachMessage') {
    await wrapped.run({
      ...run,
      eachMessage: async ({ partition, message, identity }) => {
        await handled(partition, message, identity)
      },
    })
  } else {
    await wrapped.run({
      ...run,
      eachBatch: async ({ batch }) => {
        await Promise.all(batch.messages.map((m) => handled(batch.partition, m, m.identity)))
      },
    })
  }
  await report({ type: 'running' })
}

main().catch(fail)
