import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs'
import { CliError, ExitCode } from './exit-codes.js'
import { reach } from './kafka.js'

/** What `onBatch` decided for the records it was given. */
export interface BatchDecision {
  /** Records handled, in order from the first: their offsets are resolved (and committed if asked). */
  readonly handled: number
  /** True to stop reading this partition here (the first unhandled record stays unread). */
  readonly stop: boolean
}

/** Options of {@link readToEnd}. */
export interface ReadToEndOptions {
  readonly kafka: Kafka
  readonly topic: string
  readonly groupId: string
  /** Start at the group's committed offsets (else at the beginning of each partition). */
  readonly fromCommitted: boolean
  /** Seconds before giving up (exit 3). */
  readonly timeoutSeconds: number
  /** Called with the records of one partition, in order, up to the end offsets seen at start. */
  readonly onBatch: (partition: number, messages: KafkaMessage[], consumer: Consumer) => Promise<BatchDecision>
  /** Called with the number of records to read, once known. */
  readonly onStart?: (total: number) => void
}

async function endOffsets(admin: Admin, topic: string): Promise<Map<number, { low: bigint; high: bigint }>> {
  const topics = await admin.listTopics()
  if (!topics.includes(topic)) throw new CliError(ExitCode.Usage, `topic ${JSON.stringify(topic)} does not exist`)
  const offsets = await admin.fetchTopicOffsets(topic)
  return new Map(offsets.map((o) => [o.partition, { low: BigInt(o.low), high: BigInt(o.high) }]))
}

/**
 * Reads a topic up to the end offsets it had when the read began (records written meanwhile wait
 * for the next run), with a consumer group that never commits on its own: `onBatch` decides.
 */
export async function readToEnd(o: ReadToEndOptions): Promise<void> {
  const admin = o.kafka.admin()
  const ends = await reach('cannot reach Kafka', async () => {
    await admin.connect()
    try {
      const ends = await endOffsets(admin, o.topic)
      const starts = new Map<number, bigint>()
      if (o.fromCommitted) {
        const [committed] = await admin.fetchOffsets({ groupId: o.groupId, topics: [o.topic] })
        for (const p of committed?.partitions ?? []) if (BigInt(p.offset) >= 0n) starts.set(p.partition, BigInt(p.offset))
      }
      return { ends, starts }
    } finally {
      await admin.disconnect()
    }
  })
  const remaining = new Map<number, bigint>()
  let total = 0n
  for (const [partition, { low, high }] of ends.ends) {
    const start = ends.starts.get(partition) ?? low
    const from = start > low ? start : low
    if (from < high) {
      remaining.set(partition, high)
      total += high - from
    }
  }
  o.onStart?.(Number(total))
  if (remaining.size === 0) return

  const consumer = o.kafka.consumer({ groupId: o.groupId, maxWaitTimeInMs: 500, allowAutoTopicCreation: false })
  let finish: (e?: unknown) => void = () => {}
  const finished = new Promise<void>((resolve, reject) => (finish = (e?: unknown) => (e === undefined ? resolve() : reject(e))))
  const doneWith = (partition: number) => {
    remaining.delete(partition)
    if (remaining.size === 0) finish()
  }
  const timer = setTimeout(() => finish(new CliError(ExitCode.Unreachable, `gave up after ${o.timeoutSeconds} s before reading ${o.topic} to its end`)), o.timeoutSeconds * 1000)
  try {
    await reach('cannot reach Kafka', async () => {
      await consumer.connect()
      await consumer.subscribe({ topics: [o.topic], fromBeginning: true })
    })
    consumer.on(consumer.events.CRASH, (e) => finish(new CliError(ExitCode.Unreachable, `the consumer stopped: ${String((e.payload as { error?: Error }).error?.message)}`)))
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        const high = remaining.get(batch.partition)
        if (high === undefined) return
        const messages = batch.messages.filter((m) => BigInt(m.offset) < high)
        if (messages.length === 0) return
        let decision: BatchDecision
        try {
          decision = await o.onBatch(batch.partition, messages, consumer)
        } catch (e) {
          finish(e)
          return
        }
        for (const m of messages.slice(0, decision.handled)) resolveOffset(m.offset)
        await heartbeat()
        const last = messages[decision.handled - 1]
        if (decision.stop) {
          consumer.pause([{ topic: o.topic, partitions: [batch.partition] }])
          doneWith(batch.partition)
        } else if (last !== undefined && BigInt(last.offset) + 1n >= high) {
          doneWith(batch.partition)
        }
      },
    })
    await finished
  } finally {
    clearTimeout(timer)
    await consumer.disconnect().catch(() => {})
  }
}
