import { Kafka, logLevel, type ITopicConfig } from 'kafkajs'

/** kafkajs log levels by name, for the services' options. */
export type KafkaLogLevel = 'nothing' | 'error' | 'warn' | 'info'

const LEVELS: Record<KafkaLogLevel, logLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
}

/**
 * A kafkajs client of an example service.
 *
 * @example
 * ```ts
 * const kafka = createKafka('orders', ['127.0.0.1:39092'])
 * ```
 */
export function createKafka(clientId: string, brokers: readonly string[], level: KafkaLogLevel = 'warn'): Kafka {
  return new Kafka({ clientId, brokers: [...brokers], logLevel: LEVELS[level], retry: { initialRetryTime: 200, retries: 8 } })
}

/**
 * Creates the topics that do not exist yet (a no-op for the others) and waits for their leaders,
 * so a consumer can subscribe before any producer wrote to them.
 */
export async function ensureTopics(kafka: Kafka, topics: readonly string[], numPartitions = 3): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const missing: ITopicConfig[] = topics.filter((t) => !existing.has(t)).map((topic) => ({ topic, numPartitions }))
    if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }
}
