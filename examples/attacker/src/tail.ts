import type { Kafka } from 'kafkajs'

/** A record seen by a {@link TopicTail}. */
export interface TailRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly key: string | undefined
  readonly value: Buffer | null
  readonly headers: Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>
}

/** Records appended to some topics since the tail was opened. */
export interface TopicTail {
  readonly records: readonly TailRecord[]
  close(): Promise<void>
}

/**
 * Reads what is appended to `topics` from now on: the high watermarks are taken first, so a
 * record written right after this returns is never missed, whatever the consumer's join time.
 */
export async function tailTopics(kafka: Kafka, topics: readonly string[], groupId: string): Promise<TopicTail> {
  const admin = kafka.admin()
  await admin.connect()
  const start = new Map<string, bigint>()
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) start.set(`${topic}/${p.partition}`, BigInt(p.high))
    }
  } finally {
    await admin.disconnect()
  }
  const records: TailRecord[] = []
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topics: [...topics], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      if (BigInt(message.offset) < (start.get(`${topic}/${partition}`) ?? 0n)) return
      records.push({
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString('utf8'),
        value: message.value,
        headers: message.headers ?? {},
      })
    },
  })
  // Skip what was there before (for long-lived topics); the offset filter above keeps this exact.
  for (const [tp, offset] of start) {
    const slash = tp.lastIndexOf('/')
    consumer.seek({ topic: tp.slice(0, slash), partition: Number(tp.slice(slash + 1)), offset: offset.toString() })
  }
  return {
    records,
    async close() {
      await consumer.disconnect()
      const cleanup = kafka.admin()
      await cleanup.connect()
      await cleanup.deleteGroups([groupId]).catch(() => undefined)
      await cleanup.disconnect()
    },
  }
}

/** The text of a header (first value). */
export function headerText(headers: TailRecord['headers'], name: string): string | undefined {
  const v = headers[name]
  const first = Array.isArray(v) ? v[0] : v
  return first === undefined ? undefined : typeof first === 'string' ? first : first.toString('utf8')
}
