import { ConfigError, createSigner, createVerifier, generateKey } from '@idctx/core'
import { Kafka, logLevel } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { wrapConsumer, wrapProducer } from '../src/index.js'

// Clients are built but never connected: these tests only check option validation.
const kafka = new Kafka({ clientId: 'options-test', brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING })
const key = generateKey('EdDSA', { kid: 'k1' })
const signer = createSigner({ issuer: 'svc', audience: 'aud', key })
const verifier = createVerifier({ audience: 'aud', issuers: { svc: [key] } })

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

  it('passes every other member through to the producer', () => {
    const wrapped = wrapProducer(producer, { signer })
    expect(wrapped.events).toBe(producer.events)
    expect(wrapped.isIdempotent()).toBe(false)
    expect(wrapped.logger()).toBe(producer.logger())
  })
})
