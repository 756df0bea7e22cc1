import { describe, it, expect } from 'vitest'
import {
  bullmqLeaf,
  ConfigError,
  createContextStore,
  createSigner,
  createVerifier,
  generateKey,
  ReasonCode,
  SigningError,
} from '@idctx/core'
import { decodeCarrier, IDCTX_KEY } from '@idctx/bullmq'
import { lifetimeFor, resolveSigningOptions, signJobs, type PendingJob } from '../src/signing.js'

const key = generateKey()
const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] } })
const context = { sub: 'u-1', tid: 'acme', txn: 't-1' }
const options = resolveSigningOptions('test', { signer })
const job = (name: string, data: unknown, delayMs?: number): PendingJob => ({ queueName: 'q', name, data, delayMs })

/** What the worker does with a stored job: JSON round trip, carrier split, leaf recomputed. */
async function verifyStored(queueName: string, name: string, stored: Record<string, unknown>) {
  const data = JSON.parse(JSON.stringify(stored)) as Record<string, unknown>
  const carrier = decodeCarrier(data[IDCTX_KEY])
  if (carrier === undefined || carrier === 'malformed') throw new Error('no carrier')
  return verifier.verify({
    tokens: [carrier.token],
    proof: carrier.proof,
    destination: `bullmq:${queueName}/${name}`,
    leaf: bullmqLeaf(queueName, name, data),
    expectedTenant: 'acme',
  })
}

describe('signing jobs', () => {
  it('one token for a call, each job bound to its own queue, name and data', async () => {
    const signed = signJobs(options, [job('a', { n: 1 }), job('b', { n: 2 }), { queueName: 'other', name: 'a', data: { n: 3 }, delayMs: undefined }], { context })
    expect(new Set(signed.map((d) => (decodeCarrier(d[IDCTX_KEY]) as { token: string }).token)).size).toBe(1)
    expect((await verifyStored('q', 'a', signed[0]!)).ok).toBe(true)
    expect((await verifyStored('q', 'b', signed[1]!)).ok).toBe(true)
    expect((await verifyStored('other', 'a', signed[2]!)).ok).toBe(true)
    // Swapped names, queues or data: the binding fails.
    const wrongName = await verifyStored('q', 'b', signed[0]!)
    expect(wrongName.ok === false && wrongName.error.reason).toBe(ReasonCode.BindingMismatch)
    const wrongQueue = await verifyStored('q', 'a', signed[2]!)
    expect(wrongQueue.ok === false && wrongQueue.error.reason).toBe(ReasonCode.BindingMismatch)
    const tampered = await verifyStored('q', 'a', { ...signed[0]!, n: 9 })
    expect(tampered.ok === false && tampered.error.reason).toBe(ReasonCode.BindingMismatch)
  })

  it('does not change the caller\'s data object', () => {
    const data = { n: 1 }
    const [signed] = signJobs(options, [job('a', data)], { context })
    expect(data).toEqual({ n: 1 })
    expect(signed).not.toBe(data)
  })

  it('reads the context from the store, and throws or leaves the job unsigned without one', () => {
    const store = createContextStore()
    const o = resolveSigningOptions('test', { signer, contextStore: store })
    expect(() => signJobs(o, [job('a', {})], undefined)).toThrow(SigningError)
    const [signed] = store.run(context, () => signJobs(o, [job('a', {})], undefined))
    expect(signed).toHaveProperty(IDCTX_KEY)
    const lenient = resolveSigningOptions('test', { signer, contextStore: store, onMissingContext: 'unsigned' })
    expect(signJobs(lenient, [job('a', { n: 1 })], undefined)).toEqual([{ n: 1 }])
  })

  it('gives a delayed job lifetime + delay, capped by maxDelayLifetimeSeconds', () => {
    expect(lifetimeFor(options, [job('a', {})], undefined)).toBeUndefined()
    expect(lifetimeFor(options, [job('a', {}, 600_000)], undefined)).toBe(900)
    expect(lifetimeFor(options, [job('a', {}, 1), job('b', {}, 1500)], undefined)).toBe(302)
    expect(lifetimeFor(options, [job('a', {})], { lifetimeSeconds: 60 })).toBe(60)
    const o = resolveSigningOptions('test', { signer, lifetimeSeconds: 120, maxDelayLifetimeSeconds: 3600 })
    expect(lifetimeFor(o, [job('a', {}, 3_000_000)], undefined)).toBe(3120)
    expect(() => lifetimeFor(options, [job('a', {}, 601_000)], undefined)).toThrow(SigningError)
    expect(() => lifetimeFor(options, [job('a', {})], { lifetimeSeconds: 901 })).toThrow(SigningError)
  })

  it('checks its options once, listing every problem', () => {
    try {
      resolveSigningOptions('wrapQueue options', { signer: {} as never, lifetimeSeconds: 0, maxDelayLifetimeSeconds: 1.5, onMissingContext: 'skip' as never })
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError)
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual(['signer', 'lifetimeSeconds', 'maxDelayLifetimeSeconds', 'onMissingContext'])
    }
    expect(() => resolveSigningOptions('x', { signer, lifetimeSeconds: 1000 })).toThrow(/must not exceed maxDelayLifetimeSeconds/)
  })
})
