import { KeyError, kafkaDestination, kafkaLeaf, ReasonCode, StoreError, type Verifier, type VerifyInput } from '@idctx/core'
import { headerOccurrences, IdctxHeader } from '@idctx/kafkajs'
import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { Command } from 'commander'
import { CliError, ExitCode } from '../lib/exit-codes.js'
import { emit, progress, type CliIo } from '../lib/io.js'
import { brokersOf, kafkaClient, reach } from '../lib/kafka.js'
import { seconds } from '../lib/numbers.js'
import { readToEnd } from '../lib/topic-reader.js'
import { collect, verifierFrom, type TrustOptions } from '../lib/trust.js'
import { deadLetterFacts } from './dlq-inspect.js'

/**
 * The header a redriven record gets: the DLQ coordinates it was redriven from (`dlq/partition/offset`).
 *
 * @example
 * ```ts
 * const from = headerString(message.headers, REDRIVEN_FROM_HEADER) // 'orders.idctx-dlq/0/17' on a redriven record
 * ```
 */
export const REDRIVEN_FROM_HEADER = IdctxHeader.RedrivenFrom

/** Headers the dead-letter copy added; the redriven record leaves them behind. */
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  IdctxHeader.RejectReason,
  IdctxHeader.OriginalTopic,
  IdctxHeader.OriginalPartition,
  IdctxHeader.OriginalOffset,
  IdctxHeader.ReplacedValues,
  REDRIVEN_FROM_HEADER,
])

/** Largest `--expiry-grace`: the verifier's own cap on `maxExpiryGraceSeconds`. */
const MAX_GRACE_SECONDS = 86_400

const EMPTY = Buffer.alloc(0)

interface RedriveOptions extends TrustOptions {
  readonly brokers?: string
  readonly group?: string
  readonly tenant?: string
  readonly expiryGrace?: number
  readonly dryRun: boolean
  readonly skipFailing: boolean
  readonly timeout: number
  readonly json: boolean
}

/**
 * What `idctx dlq redrive --json` prints.
 *
 * @example
 * ```ts
 * const report = JSON.parse(stdout) as RedriveReport
 * if (report.pending > 0) console.log('the key is still unknown: run again later')
 * ```
 */
export interface RedriveReport {
  readonly topic: string
  readonly group: string
  readonly dryRun: boolean
  /** Records read from the DLQ in this run. */
  readonly scanned: number
  /** Re-published to their original topic (with `--dry-run`: would have been). */
  readonly redriven: number
  /** Redriven records per original topic. */
  readonly byTarget: Record<string, number>
  /** Not eligible (a reason that is not transient, or `expired` without `--expiry-grace`), by reason: left behind. */
  readonly skipped: Record<string, number>
  /** Eligible but rejected now for another reason (or expired beyond the grace), by that reason: left behind. */
  readonly failed: Record<string, number>
  /** Eligible, still `unknown_kid`: the partition stops there for the next run (unless --skip-failing). */
  readonly pending: number
}

function carrier(headers: IHeaders | undefined, name: string): (Buffer | string)[] {
  return headerOccurrences(headers, name).map((v) =>
    typeof v === 'string' || Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : EMPTY,
  )
}

/** The original record's headers: the DLQ record's minus what dead-lettering added. */
function originalHeaders(headers: IHeaders | undefined, from: string): IHeaders {
  const out: IHeaders = {}
  for (const name of Object.keys(headers ?? {})) {
    if (DEAD_LETTER_HEADERS.has(name)) continue
    const all = carrier(headers, name)
    if (all.length === 0) continue
    Object.defineProperty(out, name, { value: all.length === 1 ? all[0] : all, enumerable: true, writable: true, configurable: true })
  }
  out[REDRIVEN_FROM_HEADER] = from
  return out
}

type Decision =
  | { readonly kind: 'redrive'; readonly topic: string; readonly message: Message }
  | { readonly kind: 'skipped'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'pending' }

async function decide(verifier: Verifier, o: RedriveOptions, dlq: string, partition: number, m: KafkaMessage): Promise<Decision> {
  const f = deadLetterFacts(m)
  const eligible = f.reason === ReasonCode.UnknownKid || (f.reason === ReasonCode.Expired && o.expiryGrace !== undefined)
  if (!eligible || f.topic === undefined) return { kind: 'skipped', reason: f.topic === undefined ? `${f.reason} (no original topic)` : f.reason }
  const headers = m.headers
  const proofs = carrier(headers, IdctxHeader.Proof)
  const input: VerifyInput = {
    tokens: carrier(headers, IdctxHeader.Token),
    proof: proofs.length > 1 ? '' : proofs[0],
    contextRecord: carrier(headers, IdctxHeader.Context),
    destination: kafkaDestination(f.topic),
    leaf: () => kafkaLeaf(f.topic as string, m.key, m.value),
    expectedTenant: o.tenant ?? { any: true },
    // No coordinates: this check records nothing in any replay store; the consumer's does, when
    // the redriven record arrives.
    ...(o.expiryGrace === undefined ? {} : { expiryGraceSeconds: o.expiryGrace }),
  }
  let r
  try {
    r = await verifier.verify(input)
  } catch (e) {
    if (e instanceof KeyError || e instanceof StoreError) throw new CliError(ExitCode.Unreachable, `verification could not complete: ${e.message}`)
    throw e
  }
  if (!r.ok) return r.error.reason === ReasonCode.UnknownKid ? { kind: 'pending' } : { kind: 'failed', reason: r.error.reason }
  const message: Message = {
    key: m.key,
    value: m.value,
    headers: originalHeaders(headers, `${dlq}/${partition}/${m.offset}`),
    ...(f.partition === undefined ? {} : { partition: f.partition }),
  }
  return { kind: 'redrive', topic: f.topic, message }
}

/**
 * `idctx dlq redrive <dlq-topic>`: re-publishes dead-lettered records whose reason was transient
 * to their original topic, once they verify now, then commits the DLQ group's offsets.
 */
export function dlqRedriveCommand(io: CliIo): Command {
  return new Command('redrive')
    .description(
      're-publish dead-lettered records rejected for a transient reason (unknown_kid; expired with --expiry-grace) to their original topic, ' +
        'unchanged (token and proof intact, so the consumer verifies them again), once they verify now. ' +
        "The DLQ consumer group's offsets are committed only after the broker acknowledged the re-publish.",
    )
    .argument('<dlq-topic>', 'the dead-letter topic')
    .option('--issuer <id>', 'a trusted issuer (repeatable, paired with --jwks)', collect)
    .option('--jwks <file|url>', "the issuer's JWKS: a file (a JWKS or a key set file) or an http(s) URL (repeatable)", collect)
    .option('--audience <aud>', 'the audience tokens must be issued for')
    .option('--tenant <tid>', 'the tenant records must belong to (default: any)')
    .option('--expiry-grace <seconds>', `also redrive records dead-lettered as expired, if they expired at most this long ago (≤ ${MAX_GRACE_SECONDS}); the consumer must grant the same grace to accept them`, seconds)
    .option('--brokers <list>', 'Kafka brokers, host:port[,…] (default: $KAFKA_BROKERS)')
    .option('--group <id>', 'the consumer group that remembers how far the DLQ was redriven (default: idctx-redrive.<dlq-topic>)')
    .option('--dry-run', 'verify and count, but re-publish nothing and commit nothing', false)
    .option('--skip-failing', 'move past records still unknown_kid instead of stopping their partition there', false)
    .option('--timeout <seconds>', 'give up (exit 3) after this many seconds', seconds, 120)
    .option('--json', 'print JSON', false)
    .action(async (topic: string, o: RedriveOptions) => {
      if (o.expiryGrace !== undefined && o.expiryGrace > MAX_GRACE_SECONDS) throw new CliError(ExitCode.Usage, `--expiry-grace is at most ${MAX_GRACE_SECONDS} seconds`)
      const brokers = brokersOf(o.brokers, io.env)
      const verifier = await verifierFrom(o, o.expiryGrace === undefined ? {} : { maxExpiryGraceSeconds: o.expiryGrace })
      const kafka = kafkaClient(brokers, 'idctx-cli-dlq-redrive')
      const group = o.group ?? `idctx-redrive.${topic}`
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
      const tick = progress(io, false)
      const report = { topic, group, dryRun: o.dryRun, scanned: 0, redriven: 0, byTarget: {} as Record<string, number>, skipped: {} as Record<string, number>, failed: {} as Record<string, number>, pending: 0 }
      let total = 0
      if (!o.dryRun) await reach('cannot reach Kafka', () => producer.connect())
      try {
        await readToEnd({
          kafka,
          topic,
          groupId: group,
          fromCommitted: true,
          timeoutSeconds: o.timeout,
          onStart: (n) => {
            total = n
            tick(() => `${n} dead-lettered records to look at in ${topic}${o.dryRun ? ' (dry run)' : ''}`, true)
          },
          onBatch: async (partition, messages, consumer) => {
            const out: { topic: string; messages: Message[] }[] = []
            let handled = 0
            let stop = false
            for (const m of messages) {
              const d = await decide(verifier, o, topic, partition, m)
              if (d.kind === 'pending') {
                report.pending++
                if (!o.skipFailing) {
                  stop = true
                  break
                }
              } else if (d.kind === 'skipped') {
                report.skipped[d.reason] = (report.skipped[d.reason] ?? 0) + 1
              } else if (d.kind === 'failed') {
                report.failed[d.reason] = (report.failed[d.reason] ?? 0) + 1
              } else {
                const last = out[out.length - 1]
                if (last !== undefined && last.topic === d.topic) last.messages.push(d.message)
                else out.push({ topic: d.topic, messages: [d.message] })
              }
              handled++
            }
            const sending = out.reduce((n, t) => n + t.messages.length, 0)
            if (!o.dryRun && handled > 0) {
              // Acknowledged by the in-sync replicas before the DLQ offset moves: a crash in between
              // re-publishes at most once more, and the consumer's replay store rejects the copy.
              if (sending > 0) await reach('re-publish failed', () => producer.sendBatch({ topicMessages: out, acks: -1 }))
              const next = BigInt((messages[handled - 1] as KafkaMessage).offset) + 1n
              await reach('commit failed', () => consumer.commitOffsets([{ topic, partition, offset: next.toString() }]))
            }
            report.scanned += handled + (stop ? 1 : 0)
            report.redriven += sending
            for (const t of out) report.byTarget[t.topic] = (report.byTarget[t.topic] ?? 0) + t.messages.length
            tick(() => `${report.scanned}/${total} looked at, ${report.redriven} ${o.dryRun ? 'to redrive' : 'redriven'}, ${report.pending} pending`)
            return { handled, stop }
          },
        })
      } finally {
        await producer.disconnect().catch(() => {})
      }
      emit(io, o.json, report satisfies RedriveReport, () => {
        const lines = [
          `${topic}: ${report.scanned} looked at, ${report.redriven} ${o.dryRun ? 'would be redriven (dry run)' : 'redriven'}, ${report.pending} pending`,
        ]
        for (const [t, n] of Object.entries(report.byTarget)) lines.push(`  → ${t}: ${n}`)
        for (const [r, n] of Object.entries(report.skipped)) lines.push(`  skipped ${r}: ${n}`)
        for (const [r, n] of Object.entries(report.failed)) lines.push(`  rejected now ${r}: ${n}`)
        if (report.pending > 0) lines.push(`  ${report.pending} still unknown_kid: ${o.skipFailing ? 'moved past' : 'their partitions stop there until the next run'}`)
        return lines.join('\n')
      })
      if (report.pending > 0 || Object.keys(report.failed).length > 0) throw new CliError(ExitCode.Findings, '')
    })
}
