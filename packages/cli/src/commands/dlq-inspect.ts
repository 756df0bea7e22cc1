import { randomBytes } from 'node:crypto'
import { headerString, IdctxHeader } from '@idctx/kafkajs'
import type { KafkaMessage } from 'kafkajs'
import { Command } from 'commander'
import { CliError, ExitCode } from '../lib/exit-codes.js'
import { emit, progress, type CliIo } from '../lib/io.js'
import { brokersOf, kafkaClient } from '../lib/kafka.js'
import { seconds } from '../lib/numbers.js'
import { readToEnd } from '../lib/topic-reader.js'

/**
 * The oldest or newest dead-lettered record: where it is, where it came from, why.
 *
 * @example
 * ```ts
 * const { oldest } = JSON.parse(stdout) as DeadLetterReport
 * console.log(oldest?.reason, oldest?.original) // 'unknown_kid' 'orders/0/17'
 * ```
 */
export interface DeadLetterSighting {
  /** When it was dead-lettered (the DLQ record's timestamp), ISO 8601. */
  readonly at: string
  /** `dlq-topic/partition/offset`. */
  readonly coordinates: string
  /** `topic/partition/offset` of the rejected original. */
  readonly original: string
  readonly reason: string
}

/**
 * What `idctx dlq inspect --json` prints.
 *
 * @example
 * ```ts
 * const report = JSON.parse(stdout) as DeadLetterReport
 * console.log(report.byReason.unknown_kid ?? 0)
 * ```
 */
export interface DeadLetterReport {
  readonly topic: string
  readonly records: number
  readonly byReason: Record<string, number>
  readonly byOriginalTopic: Record<string, number>
  readonly oldest: DeadLetterSighting | null
  readonly newest: DeadLetterSighting | null
}

/** What a dead-letter record says of itself, from its `idctx-*` headers. */
export function deadLetterFacts(message: KafkaMessage): { reason: string; topic: string | undefined; partition: number | undefined; offset: string | undefined } {
  const h = message.headers
  const partition = headerString(h, IdctxHeader.OriginalPartition)
  return {
    reason: headerString(h, IdctxHeader.RejectReason) ?? '(none)',
    topic: headerString(h, IdctxHeader.OriginalTopic),
    partition: partition !== undefined && /^\d+$/.test(partition) ? Number(partition) : undefined,
    offset: headerString(h, IdctxHeader.OriginalOffset),
  }
}

/** `idctx dlq inspect <dlq-topic>`: counts by reason and original topic, oldest and newest. */
export function dlqInspectCommand(io: CliIo): Command {
  return new Command('inspect')
    .description('read a dead-letter topic to its end and count its records by reason and original topic, with the oldest and newest')
    .argument('<dlq-topic>', 'the dead-letter topic (default name: <topic>.idctx-dlq)')
    .option('--brokers <list>', 'Kafka brokers, host:port[,…] (default: $KAFKA_BROKERS)')
    .option('--timeout <seconds>', 'give up (exit 3) after this many seconds', seconds, 120)
    .option('--json', 'print JSON', false)
    .action(async (topic: string, o: { brokers?: string; timeout: number; json: boolean }) => {
      const kafka = kafkaClient(brokersOf(o.brokers, io.env), 'idctx-cli-dlq-inspect')
      const tick = progress(io, false)
      const byReason: Record<string, number> = {}
      const byOriginalTopic: Record<string, number> = {}
      let oldest: { ts: number; s: DeadLetterSighting } | undefined
      let newest: { ts: number; s: DeadLetterSighting } | undefined
      let records = 0
      let total = 0
      await readToEnd({
        kafka,
        topic,
        // A throw-away group that never commits: inspecting changes nothing.
        groupId: `idctx-dlq-inspect-${randomBytes(6).toString('hex')}`,
        fromCommitted: false,
        timeoutSeconds: o.timeout,
        onStart: (n) => (total = n),
        onBatch: async (partition, messages) => {
          for (const m of messages) {
            const f = deadLetterFacts(m)
            records++
            byReason[f.reason] = (byReason[f.reason] ?? 0) + 1
            const origin = f.topic ?? '(unknown)'
            byOriginalTopic[origin] = (byOriginalTopic[origin] ?? 0) + 1
            const ts = Number(m.timestamp)
            const s: DeadLetterSighting = {
              at: new Date(ts).toISOString(),
              coordinates: `${topic}/${partition}/${m.offset}`,
              original: `${origin}/${f.partition ?? '?'}/${f.offset ?? '?'}`,
              reason: f.reason,
            }
            if (oldest === undefined || ts < oldest.ts) oldest = { ts, s }
            if (newest === undefined || ts >= newest.ts) newest = { ts, s }
          }
          tick(() => `read ${records}/${total} records of ${topic}`)
          return { handled: messages.length, stop: false }
        },
      })
      const report: DeadLetterReport = { topic, records, byReason, byOriginalTopic, oldest: oldest?.s ?? null, newest: newest?.s ?? null }
      emit(io, o.json, report, () => {
        if (records === 0) return `${topic}: empty`
        const lines = [`${topic}: ${records} dead-lettered records`]
        for (const [r, n] of Object.entries(byReason).sort((a, b) => b[1] - a[1])) lines.push(`  ${r.padEnd(20)} ${n}`)
        lines.push('from:')
        for (const [t, n] of Object.entries(byOriginalTopic).sort((a, b) => b[1] - a[1])) lines.push(`  ${t.padEnd(20)} ${n}`)
        lines.push(`oldest ${report.oldest?.at} ${report.oldest?.coordinates} (${report.oldest?.reason}, from ${report.oldest?.original})`)
        lines.push(`newest ${report.newest?.at} ${report.newest?.coordinates} (${report.newest?.reason}, from ${report.newest?.original})`)
        return lines.join('\n')
      })
      if (records > 0) throw new CliError(ExitCode.Findings, '')
    })
}
