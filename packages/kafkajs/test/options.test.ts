import { inspect } from 'node:util'
import { ConfigError, createSigner, createVerifier, generateKey } from '@idctx/core'
import { Kafka, logLevel } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { wrapConsumer, wrapProducer } from '../src/index.js'

// Clients are built but never connected: these tests only check option validation.
const kafka = new Kafka({ clientId: 'options-test', brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING })
const key = generateKey('EdDSA', { kid: 'k1' })
const signer = createSigner({ issuer: 'svc', audience: 'aud', key })
const verifier = createVerifier({ audience: 'aud', issuers: { svc: [key] } })

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (e) {
    if (e instanceof ConfigError) return e
    throw e
  }
  throw new Error('expected a ConfigError, nothing was thrown')
}

function issuesOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => i.path)
    throw e
  }
  return []
}

describe('wrapConsumer options', () => {
  const consumer = kafka.consumer({ groupId: 'g' })
  const producer = kafka.producer()

  it('needs a verifier, a tenant and, for dead-letter, a producer', () => {
    expect(issuesOf(() => wrapConsumer(consumer, {} as never))).toEqual(['verifier', 'tenant', 'deadLetter'])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: '' }))).toEqual(['tenant', 'deadLetter'])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: { any: false } as never, policy: 'skip' }))).toEqual(['tenant'])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip' }))).toEqual([])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: ['acme', 'globex'], deadLetter: { producer } }))).toEqual([])
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: { any: true }, policy: 'audit' }))).toEqual([])
  })

  it('refuses an unknown policy and a signing producer as the dead-letter producer', () => {
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'drop' as never }))).toEqual(['policy'])
    const signing = wrapProducer(producer, { signer })
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', deadLetter: { producer: signing } }))).toEqual([
      'deadLetter.producer',
    ])
    // A signing producer of the other Kafka adapter would re-sign the copies just the same.
    const otherSigning = { send: async () => [], [Symbol.for('@idctx/platformatic-kafka.signing-producer')]: true }
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', deadLetter: { producer: otherSigning as never } }))).toEqual([
      'deadLetter.producer',
    ])
  })

  it('refuses unknown keys, naming the path and the fix', () => {
    const e = configErrorOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip', replayStore: {} } as never))
    expect(e.issues).toEqual([
      { path: 'replayStore', message: expect.stringMatching(/^unknown option 'replayStore'; it is an option of the verifier: pass it to createVerifier/) },
    ])
    expect(e.message).toContain("replayStore: unknown option 'replayStore'")
    expect(configErrorOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', polcy: 'skip', policy: 'skip' } as never)).issues).toEqual([
      { path: 'polcy', message: "unknown option 'polcy'; did you mean 'policy'?" },
    ])
    expect(configErrorOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip', zzz: 1 } as never)).issues).toEqual([
      {
        path: 'zzz',
        message: "unknown option 'zzz'; known options are verifier, tenant, payloadTenant, requirements, policy, deadLetter, contextStore, observer, redriveGraceSeconds, eachMessageVerify",
      },
    ])
    expect(configErrorOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', deadLetter: { producer, topics: () => 'x' } } as never)).issues).toEqual([
      { path: 'deadLetter.topics', message: "unknown option 'topics'; did you mean 'topic'?" },
    ])
    // A key that is not printable ASCII is shown sanitized, never as given.
    expect(issuesOf(() => wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip', 'bad\nkey': 1 } as never))).toEqual(['bad?key'])
  })

  it('passes every other member through to the consumer', () => {
    const wrapped = wrapConsumer(consumer, { verifier, tenant: 'acme', policy: 'skip' })
    expect(wrapped.events).toBe(consumer.events)
    expect(typeof wrapped.subscribe).toBe('function')
    expect(wrapped.paused()).toEqual([])
  })
})

describe('wrapProducer options', () => {
  const producer = kafka.producer()

  it('needs a signer', () => {
    expect(issuesOf(() => wrapProducer(producer, {} as never))).toEqual(['signer'])
    expect(issuesOf(() => wrapProducer(producer, { signer, requireContext: 'yes' as never }))).toEqual(['requireContext'])
  })

  it('checks batchProfile and maxBatchRecords', () => {
    expect(issuesOf(() => wrapProducer(producer, { signer, batchProfile: 'no' as never }))).toEqual(['batchProfile'])
    expect(issuesOf(() => wrapProducer(producer, { signer, maxBatchRecords: 1 }))).toEqual(['maxBatchRecords'])
    expect(issuesOf(() => wrapProducer(producer, { signer, maxBatchRecords: 2.5 }))).toEqual(['maxBatchRecords'])
    expect(issuesOf(() => wrapProducer(producer, { signer, batchProfile: false, maxBatchRecords: 10 }))).toEqual(['maxBatchRecords'])
    expect(() => wrapProducer(producer, { signer, batchProfile: true, maxBatchRecords: 2 ** 20 })).not.toThrow()
    expect(configErrorOf(() => wrapProducer(producer, { signer, batchProfil: false } as never)).issues).toEqual([
      { path: 'batchProfil', message: "unknown option 'batchProfil'; did you mean 'batchProfile'?" },
    ])
  })

  it('refuses unknown keys, naming the path and the fix', () => {
    expect(configErrorOf(() => wrapProducer(producer, { signer, requireContxt: false } as never)).issues).toEqual([
      { path: 'requireContxt', message: "unknown option 'requireContxt'; did you mean 'requireContext'?" },
    ])
    expect(configErrorOf(() => wrapProducer(producer, { signer, issuer: 'svc' } as never)).issues).toEqual([
      { path: 'issuer', message: expect.stringMatching(/^unknown option 'issuer'; it is an option of the signer: pass it to createSigner/) },
    ])
    expect(configErrorOf(() => wrapProducer(producer, { signer, other: 1 } as never)).issues).toEqual([
      { path: 'other', message: "unknown option 'other'; known options are signer, contextStore, requireContext, traceparent, batchProfile, maxBatchRecords" },
    ])
    expect(issuesOf(() => wrapProducer(producer, null as never))).toEqual([''])
  })

  it('refuses unknown per-call send options before sending anything', async () => {
    const sent: unknown[] = []
    const record = async (r: unknown) => {
      sent.push(r)
      return []
    }
    const fake = { send: record, sendBatch: record, transaction: async () => fake }
    const wrapped = wrapProducer(fake, { signer })
    const context = { sub: 'u', tid: 't', txn: 'x' }
    const rejection = (p: Promise<unknown>) => p.then(() => 'sent', (e: unknown) => (e instanceof ConfigError ? e.issues : e))
    expect(await rejection(wrapped.send({ topic: 't', messages: [{ value: 'v' }] }, { contxt: context } as never))).toEqual([
      { path: 'contxt', message: "unknown option 'contxt'; did you mean 'context'?" },
    ])
    expect(await rejection(wrapped.sendBatch({ topicMessages: [{ topic: 't', messages: [{ value: 'v' }] }] }, { unsinged: true } as never))).toEqual([
      { path: 'unsinged', message: "unknown option 'unsinged'; did you mean 'unsigned'?" },
    ])
    expect(await rejection(wrapped.send({ topic: 't', messages: [{ value: 'v' }] }, { unsigned: 'yes' } as never))).toEqual([
      { path: 'unsigned', message: 'true, or leave it out' },
    ])
    expect(sent).toEqual([])
    expect(await rejection(wrapped.send({ topic: 't', messages: [{ value: 'v' }] }, { context }))).toBe('sent')
    expect(sent).toHaveLength(1)
  })

  it('a message without a value is a TypeError before signing: kafkajs would quote the signed record, token included', async () => {
    const context = { sub: 'u', tid: 't', txn: 'x' }
    for (const batchProfile of [true, false]) {
      const wrapped = wrapProducer(kafka.producer(), { signer, batchProfile })
      for (const send of [
        () => wrapped.send({ topic: 'orders', messages: [{ key: 'order-1', headers: { note: 'n' } }] as never }, { context }),
        () => wrapped.sendBatch({ topicMessages: [{ topic: 'orders', messages: [{ key: 'order-1' }] as never }] }, { context }),
      ]) {
        const e = await send().then(() => undefined, (err: unknown) => err)
        expect(e).toBeInstanceOf(TypeError)
        // No compact JWS (base64url JSON header, a dot, base64url JSON payload) anywhere in it.
        expect(`${String(e)} ${inspect(e, { depth: 10 })}`).not.toMatch(/eyJ[\w-]*\.eyJ/)
      }
    }
  })

  it('passes every other member through to the producer', () => {
    const wrapped = wrapProducer(producer, { signer })
    expect(wrapped.events).toBe(producer.events)
    expect(wrapped.isIdempotent()).toBe(false)
    expect(wrapped.logger()).toBe(producer.logger())
  })
})
