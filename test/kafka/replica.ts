/**
 * One replica of a producing service, run as its own OS process by key-replicas.test.ts:
 *
 *   node --conditions=@idctx/source --import tsx test/kafka/replica.ts
 *
 * It loads the issuer's key set from the private key set document in `IDCTX_KEYSET` (what every
 * replica of a service shares) — or, without it, generates a key of its own (what replicas must
 * not do) — serves the public JWKS with `createJwksHandler` on 127.0.0.1:`PORT`, and sends signed
 * records to `TOPIC`: `COUNT` of them (then idles), or one every `INTERVAL_MS` until SIGTERM.
 *
 * Talks to the test through stdout, one JSON object a line: `ready` (url, active kid), `sent`
 * (record key, kid that signed it), `stopped`. Never prints a token, a key or a payload value.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { createJwksHandler, createKeySet, createSigner, generateKey, importKeySet, type KeySet } from '@idctx/core'
import { wrapProducer } from '@idctx/kafkajs'
import { Kafka, logLevel, Partitioners } from 'kafkajs'

const env = process.env
const replica = env.REPLICA ?? 'replica'
const issuer = env.ISSUER ?? 'svc-orders'
const topic = env.TOPIC
if (topic === undefined) throw new Error('TOPIC is required')
const count = Number(env.COUNT ?? '0')
const intervalMs = Number(env.INTERVAL_MS ?? '50')

const out = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ replica, ...event })}\n`)

const keys: KeySet =
  env.IDCTX_KEYSET !== undefined && env.IDCTX_KEYSET !== ''
    ? importKeySet(env.IDCTX_KEYSET)
    : createKeySet({ active: generateKey('EdDSA', { kid: `${replica}-${randomBytes(4).toString('hex')}` }) })

const jwks = createJwksHandler(keys, { maxAgeSeconds: Number(env.JWKS_MAX_AGE_SECONDS ?? '1') })
const server = createServer((req, res) => {
  if ((req.url ?? '').split('?')[0] === '/.well-known/idctx-jwks.json') return jwks(req, res)
  res.writeHead(404).end()
})
server.keepAliveTimeout = 500
await new Promise<void>((resolve, reject) => {
  server.once('error', reject)
  server.listen(Number(env.PORT ?? '0'), '127.0.0.1', () => resolve())
})
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/idctx-jwks.json`

const kafka = new Kafka({ clientId: `replica-${replica}`, brokers: (env.KAFKA_BROKERS ?? '127.0.0.1:39092').split(','), logLevel: logLevel.NOTHING })
const raw = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
await raw.connect()
const producer = wrapProducer(raw, { signer: createSigner({ issuer, audience: env.AUDIENCE ?? 'shop', key: keys }) })
const context = { sub: `u-${replica}`, tid: 'acme', txn: `txn-${replica}` }

let stopping = false
let loop: Promise<void> = Promise.resolve()
const stop = async () => {
  if (stopping) return
  stopping = true
  await loop.catch(() => undefined) // the record in flight is sent (or not) before the replica leaves
  await raw.disconnect()
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
  out({ event: 'stopped' })
  process.exit(0)
}
// Before `ready`: a signal that arrives before a listener exists kills the process outright.
process.on('SIGTERM', () => void stop())
process.on('SIGINT', () => void stop())
out({ event: 'ready', url, active: keys.active.kid, staged: keys.staged?.kid ?? null })

loop = (async () => {
  for (let i = 0; !stopping && (count === 0 || i < count); i++) {
    const key = `${env.GENERATION ?? replica}/${i}`
    const kid = keys.active.kid
    await producer.send({ topic, messages: [{ key, value: `order ${i} of ${replica}` }] }, { context })
    out({ event: 'sent', key, kid })
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs))
  }
})()
await loop.catch((e: unknown) => {
  out({ event: 'error', name: e instanceof Error ? e.name : 'error' })
  process.exit(1)
})
