import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { exportPublicJwk, ReasonCode, type IdctxKey, type IdentityContext } from '@idctx/core'
import { wrapProducer } from '@idctx/platformatic-kafka'
import { afterAll, describe, expect, it } from 'vitest'
import { KafkaHarness, rejectReason, service, uniqueName, waitFor } from '../kafka/helpers.js'
import { PlatformaticClients } from './helpers.js'

const h = new KafkaHarness('pk-crash')
const pk = new PlatformaticClients()
const children: ChildProcess[] = []
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await pk.close()
  await h.close()
})

const root = resolve(import.meta.dirname, '../..')
const acme: IdentityContext = { sub: 'u-crash', tid: 'acme', txn: 'txn-crash' }

interface Child {
  readonly process: ChildProcess
  readonly events: Record<string, unknown>[]
}

function start(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--conditions=@idctx/source', '--import', 'tsx', 'test/platformatic-kafka/crash-consumer.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  const events: Record<string, unknown>[] = []
  let buffered = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8')
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>)
  })
  child.stderr?.on('data', (chunk: Buffer) => void (stderr.push(chunk.toString('utf8'))))
  return { process: child, events }
}

const stderr: string[] = []
const keysOf = (c: Child, event: string) => c.events.filter((e) => e.event === event).map((e) => e.key as string)

describe('a wrapped @platformatic/kafka consumer killed mid-stream (SIGKILL) and restarted', () => {
  it('loses nothing and never calls a redelivery `replayed` (shared Redis replay store)', async () => {
    const { topic, dlq } = await h.createTopicWithDlq('pk-crash')
    const orders = service('svc-orders')
    const producer = wrapProducer(pk.producer(), { signer: orders.signer })
    const raw = pk.producer()
    const signed: string[] = []
    const unsigned: string[] = []
    for (let call = 0; call < 6; call++) {
      const keys = Array.from({ length: 10 }, (_, i) => `ok-${call}-${i}`)
      await producer.send({ messages: keys.map((k) => ({ topic, key: Buffer.from(k), value: Buffer.from(`v-${k}`) })) }, { context: acme })
      signed.push(...keys)
      const bad = `bad-${call}`
      await raw.send({ messages: [{ topic, key: Buffer.from(bad), value: Buffer.from(bad) }] })
      unsigned.push(bad)
    }

    const env = {
      TOPIC: topic,
      GROUP: uniqueName('pk-crash-g'),
      ISSUER_JWK: JSON.stringify(exportPublicJwk(orders.key as IdctxKey)),
      REPLAY_PREFIX: `test:pk-crash:${randomUUID()}:`,
      HANDLE_MS: '25',
      KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:39092',
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    }
    // Slow handlers in the first instance: the SIGKILL lands while a verified message is in its handler.
    const first = start({ ...env, HANDLE_MS: '150' })
    const verifiedOf = (c: Child) => c.events.filter((e) => e.event === 'verified').length
    // Killed after 20 handled, while the next one is verified and in its handler (not committed).
    await waitFor('the first consumer to handle 20 messages, the next one in its handler', () => keysOf(first, 'handled').length >= 20 && verifiedOf(first) > keysOf(first, 'handled').length)
    first.process.kill('SIGKILL')
    await new Promise((r) => first.process.once('close', r)) // 'close': its stdout is read to the end
    const handledBefore = new Set(keysOf(first, 'handled'))
    expect(handledBefore.size).toBeGreaterThanOrEqual(20)
    expect(handledBefore.size).toBeLessThan(signed.length) // killed mid-stream, not after the end

    const verifiedBefore = verifiedOf(first)
    const second = start({ ...env, HANDLE_MS: '10' })
    await waitFor('every signed message handled by one of the two', () => {
      const all = new Set([...handledBefore, ...keysOf(second, 'handled')])
      return signed.every((k) => all.has(k))
    }, 90_000).catch((e: unknown) => {
      throw new Error(`${String(e)}; second: ${JSON.stringify(second.events.slice(0, 5))}; stderr: ${stderr.join('').slice(-2000)}`)
    })
    await waitFor('every unsigned message dead-lettered', async () => {
      const dead = await h.readAll(dlq)
      return unsigned.every((k) => dead.some((d) => d.key === k)) ? dead : undefined
    })
    second.process.kill('SIGTERM')

    const rejections = [...first.events, ...second.events].filter((e) => e.event === 'rejected')
    // Only the unsigned records are rejected, as `missing`; a redelivered record is never `replayed`.
    expect(rejections.filter((e) => e.reason === ReasonCode.Replayed)).toEqual([])
    expect(new Set(rejections.map((e) => e.reason))).toEqual(new Set([ReasonCode.Missing]))
    const dead = await h.readAll(dlq)
    expect(new Set(dead.map((d) => d.key))).toEqual(new Set(unsigned))
    expect(dead.every((d) => rejectReason(d) === ReasonCode.Missing)).toBe(true)
    // Some records were verified by both instances (the shared replay store saw them twice, at the
    // same coordinates): redeliveries, and none of them was called `replayed`.
    const verifiedAfter = verifiedOf(second)
    expect(verifiedBefore + verifiedAfter).toBeGreaterThan(signed.length)
    // The second instance resumed from the committed position, not from the beginning.
    expect(keysOf(second, 'handled').length).toBeLessThan(signed.length)
    console.log(
      `[pk-crash] first handled ${handledBefore.size} before SIGKILL; second handled ${keysOf(second, 'handled').length} (${verifiedBefore + verifiedAfter - signed.length} verified by both instances); ${dead.length} DLQ records for ${unsigned.length} unsigned`,
    )
  })
})
