import { randomBytes } from 'node:crypto'
import type { IdctxObserver, RejectedEvent, VerifiedEvent } from '@idctx/core'
import { wrapConsumer } from '@idctx/kafkajs'
import { Command } from 'commander'
import { CliError, ExitCode } from '../lib/exit-codes.js'
import { progress, type CliIo } from '../lib/io.js'
import { brokersOf, kafkaClient, reach } from '../lib/kafka.js'
import { count, seconds } from '../lib/numbers.js'
import { collect, verifierFrom, type TrustOptions } from '../lib/trust.js'
import { userHasher } from '../lib/user-hash.js'

interface TailOptions extends TrustOptions {
  readonly brokers?: string
  readonly group?: string
  readonly tenant?: string
  readonly fromBeginning: boolean
  readonly max?: number
  readonly idle?: number
  readonly json: boolean
}

/**
 * One line of `idctx tail --json`: ids and the verdict, never the token or the record's key or value.
 *
 * @example
 * ```ts
 * const line = JSON.parse(row) as TailLine
 * if (line.verdict === 'rejected') console.log(line.reason, `${line.topic}/${line.partition}/${line.offset}`)
 * ```
 */
export interface TailLine {
  readonly topic: string
  readonly partition: number
  readonly offset: string
  readonly verdict: 'accepted' | 'rejected'
  readonly reason: string | null
  readonly iss: string | null
  readonly tid: string | null
  readonly kid: string | null
  /** SHA-256 (HMAC with IDCTX_USER_SALT) of `sub`, 128 bits in hex. */
  readonly user: string | null
  readonly txn: string | null
  readonly tokenSha256: string | null
}

/**
 * `idctx tail <topic>`: a verified kcat. Consumes with kafkajs through `wrapConsumer` in audit
 * mode, so every record gets the verdict the real consumer's verifier would give it.
 */
export function tailCommand(io: CliIo): Command {
  return new Command('tail')
    .description(
      "consume a topic and print each record's verdict (accepted, or rejected with its reason code) and ids: " +
        'issuer, tenant, kid, hashed user id. Never prints tokens, keys or values. Uses a throw-away consumer group.',
    )
    .argument('<topic>', 'the topic to read')
    .option('--issuer <id>', 'a trusted issuer (repeatable, paired with --jwks)', collect)
    .option('--jwks <file|url>', "the issuer's JWKS: a file (a JWKS or a key set file) or an http(s) URL (repeatable)", collect)
    .option('--audience <aud>', 'the audience tokens must be issued for')
    .option('--tenant <tid>', 'the tenant records must belong to (default: any)')
    .option('--brokers <list>', 'Kafka brokers, host:port[,…] (default: $KAFKA_BROKERS)')
    .option('--group <id>', 'consumer group id (default: a new idctx-tail-… group)')
    .option('--from-beginning', 'read the topic from its beginning (default: new records only)', false)
    .option('--max <n>', 'stop after n records', count)
    .option('--idle <seconds>', 'stop after this many seconds without a record', seconds)
    .option('--json', 'print one JSON object per record, then a summary object', false)
    .action(async (topic: string, o: TailOptions) => {
      const brokers = brokersOf(o.brokers, io.env)
      const hash = userHasher(io.env.IDCTX_USER_SALT)
      let lastVerified: VerifiedEvent | undefined
      let lastRejected: RejectedEvent | undefined
      const observer: IdctxObserver = {
        onVerified: (e) => void (lastVerified = e),
        onRejected: (e) => void (lastRejected = e),
      }
      const verifier = await verifierFrom(o, { observer })
      const kafka = kafkaClient(brokers, 'idctx-cli-tail')
      const consumer = kafka.consumer({ groupId: o.group ?? `idctx-tail-${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 500 })
      const wrapped = wrapConsumer(consumer, { verifier, tenant: o.tenant ?? { any: true }, policy: 'audit' })
      const counts = { records: 0, accepted: 0, rejected: 0, byReason: {} as Record<string, number> }
      const tick = progress(io, o.json)
      let done = false
      let finish: () => void = () => {}
      const finished = new Promise<void>((resolve) => (finish = resolve))
      let idleTimer: NodeJS.Timeout | undefined
      const armIdle = () => {
        if (o.idle === undefined) return
        clearTimeout(idleTimer)
        idleTimer = setTimeout(() => {
          done = true
          finish()
        }, o.idle * 1000)
      }
      const stop = () => {
        done = true
        finish()
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
      try {
        await reach('cannot reach Kafka', async () => {
          await wrapped.connect()
          await wrapped.subscribe({ topics: [topic], fromBeginning: o.fromBeginning })
        })
        tick(() => `tailing ${topic} (${o.fromBeginning ? 'from the beginning' : 'new records'})`, true)
        armIdle()
        await wrapped.run({
          eachMessage: async ({ partition, message, identity, violation }) => {
            if (done) return
            armIdle()
            const tokenSha256 = identity?.tokenSha256 ?? violation?.tokenSha256
            let line: TailLine
            if (identity !== undefined) {
              const e = lastVerified?.tokenSha256 === tokenSha256 ? lastVerified : undefined
              line = {
                topic, partition, offset: message.offset, verdict: 'accepted', reason: null,
                iss: identity.claims.iss, tid: identity.tid, kid: e?.kid ?? null, user: hash(identity.sub), txn: identity.txn,
                tokenSha256: tokenSha256 ?? null,
              }
            } else {
              const e = lastRejected?.tokenSha256 === tokenSha256 ? lastRejected : undefined
              line = {
                topic, partition, offset: message.offset, verdict: 'rejected', reason: violation?.reason ?? 'unknown',
                iss: e?.iss ?? null, tid: e?.tid ?? null, kid: e?.kid ?? null, user: e?.sub === undefined ? null : hash(e.sub), txn: e?.txn ?? null,
                tokenSha256: tokenSha256 ?? null,
              }
              counts.byReason[line.reason as string] = (counts.byReason[line.reason as string] ?? 0) + 1
            }
            counts.records++
            counts[line.verdict]++
            io.stdout(o.json ? `${JSON.stringify(line)}\n` : `${textLine(line)}\n`)
            if (o.max !== undefined && counts.records >= o.max) stop()
          },
        })
        await finished
      } finally {
        clearTimeout(idleTimer)
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        await consumer.disconnect().catch(() => {})
      }
      if (o.json) io.stdout(`${JSON.stringify({ summary: counts })}\n`)
      else tick(() => `${counts.records} records: ${counts.accepted} accepted, ${counts.rejected} rejected`, true)
      if (counts.rejected > 0) throw new CliError(ExitCode.Findings, '')
    })
}

function textLine(l: TailLine): string {
  const ids = [`iss=${l.iss ?? '-'}`, `tid=${l.tid ?? '-'}`, `kid=${l.kid ?? '-'}`, `user=${l.user ?? '-'}`].join(' ')
  return `${l.topic}/${l.partition}/${l.offset} ${l.verdict === 'accepted' ? 'accepted' : `rejected ${l.reason}`} ${ids}`
}
