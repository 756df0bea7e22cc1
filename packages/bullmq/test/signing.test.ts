import { describe, it, expect } from 'vitest'
import {
  bullmqDestination,
  bullmqLeaf,
  ConfigError,
  createContextStore,
  createSigner,
  createVerifier,
  generateKey,
  ReasonCode,
  SigningError,
} from '@idctx/core'
import { decodeCarrier, IDCTX_KEY, wrapFlowProducer, wrapQueue } from '@idctx/bullmq'
import { lifetimeFor, resolveSigningOptions, signJobs, type PendingJob } from '../src/signing.js'
import { fakeFlowProducer, fakeQueue, thrownBy } from './util.js'

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
    destination: bullmqDestination(queueName, name),
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
    expect(() => signJobs(o, [job('a', {})], undefined)).toThrow(
      new SigningError('no identity context to sign the job with: pass { context } or add inside contextStore.run()'),
    )
    const [signed] = store.run(context, () => signJobs(o, [job('a', {})], undefined))
    const carrier = decodeCarrier(signed?.[IDCTX_KEY])
    expect(carrier).toMatchObject({ kind: 'message', proof: undefined })
    const claims = JSON.parse(Buffer.from((carrier as { token: string }).token.split('.')[1]!, 'base64url').toString()) as { txn: string }
    expect(claims.txn).toBe(context.txn)
    const lenient = resolveSigningOptions('test', { signer, contextStore: store, onMissingContext: 'unsigned' })
    expect(signJobs(lenient, [job('a', { n: 1 })], undefined)).toEqual([{ n: 1 }])
  })

  it('gives a delayed job lifetime + delay, capped by maxDelayLifetimeSeconds', () => {
    expect(lifetimeFor(options, [job('a', {})], undefined)).toBeUndefined()
    expect(lifetimeFor(options, [job('a', {}, 600_000)], undefined)).toBe(900)
    expect(lifetimeFor(options, [job('a', {}, 1), job('b', {}, 1500)], undefined)).toBe(302)
    expect(lifetimeFor(options, [job('a', {})], { lifetimeSeconds: 60 })).toBe(60)
    expect(() => lifetimeFor(options, [job('a', {})], { lifetimeSeconds: 1.5 })).toThrow(ConfigError)
    const o = resolveSigningOptions('test', { signer, lifetimeSeconds: 120, maxDelayLifetimeSeconds: 3600 })
    expect(lifetimeFor(o, [job('a', {}, 3_000_000)], undefined)).toBe(3120)
    expect(() => lifetimeFor(options, [job('a', {}, 601_000)], undefined)).toThrow(SigningError)
    expect(() => lifetimeFor(options, [job('a', {})], { lifetimeSeconds: 901 })).toThrow(SigningError)
  })

  it('checks its options once, listing every problem', () => {
    const e = thrownBy(() =>
      resolveSigningOptions('wrapQueue options', { signer: {} as never, lifetimeSeconds: 0, maxDelayLifetimeSeconds: 1.5, onMissingContext: 'skip' as never }),
    )
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues.map((i) => i.path)).toEqual(['signer', 'lifetimeSeconds', 'maxDelayLifetimeSeconds', 'onMissingContext'])
    expect(() => resolveSigningOptions('x', { signer, lifetimeSeconds: 1000 })).toThrow(/must not exceed maxDelayLifetimeSeconds/)
  })

  it('refuses unknown option keys with a did-you-mean, and a context store without exit', () => {
    const e = thrownBy(() =>
      wrapQueue(fakeQueue().queue, { signer, lifetimeSecond: 60, contextStore: { run: () => 1, current: () => undefined } } as never),
    )
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues).toEqual([
      { path: 'lifetimeSecond', message: "unknown option 'lifetimeSecond'; did you mean 'lifetimeSeconds'?" },
      { path: 'contextStore', message: 'must be a ContextStore (run, current and exit)' },
    ])
    const f = thrownBy(() => wrapFlowProducer(fakeFlowProducer().flows, { signer, onMissing: 'unsigned' } as never))
    expect(f).toBeInstanceOf(ConfigError)
    expect((f as ConfigError).issues).toEqual([{ path: 'onMissing', message: "unknown option 'onMissing'; did you mean 'onMissingContext'?" }])
    const g = thrownBy(() => wrapQueue(fakeQueue().queue, { signer, verbose: true } as never))
    expect((g as ConfigError).issues).toEqual([
      { path: 'verbose', message: "unknown option 'verbose'; known options are signer, contextStore, lifetimeSeconds, maxDelayLifetimeSeconds, onMissingContext, batchProfile, maxBatchJobs" },
    ])
  })

  it('refuses unknown per-call keys at every entry point, with a did-you-mean, and adds nothing', async () => {
    const { queue, calls } = fakeQueue()
    const { flows, calls: flowCalls } = fakeFlowProducer()
    const q = wrapQueue(queue, { signer })
    const fp = wrapFlowProducer(flows, { signer })
    const typo = { contxt: context } as never
    const issue = { path: 'contxt', message: "unknown option 'contxt'; did you mean 'context'?" }
    const rejections = await Promise.allSettled([
      q.add('a', {}, {}, typo),
      q.addBulk([{ name: 'a', data: {} }], typo),
      q.addBulk([], typo),
      fp.add({ name: 'a', queueName: 'q' }, undefined, typo),
      fp.addBulk([{ name: 'a', queueName: 'q' }], typo),
      q.upsertJobScheduler('s', { every: 1000 }, { name: 'a', data: {} }, { context, grantLifetime: 60 } as never),
    ])
    const reasons = rejections.map((r) => (r.status === 'rejected' ? (r.reason as ConfigError) : undefined))
    expect(reasons.map((r) => r?.constructor)).toEqual([ConfigError, ConfigError, ConfigError, ConfigError, ConfigError, ConfigError])
    expect(reasons.slice(0, 5).map((r) => r?.issues)).toEqual([[issue], [issue], [issue], [issue], [issue]])
    expect(reasons[0]?.message).toBe("invalid add options: contxt: unknown option 'contxt'; did you mean 'context'?")
    expect(reasons[5]?.issues).toEqual([{ path: 'grantLifetime', message: "unknown option 'grantLifetime'; did you mean 'grantLifetimeSeconds'?" }])
    // BullMQ options in the idctx position: named, not silently ignored.
    await expect(q.add('a', {}, undefined, { delay: 1000 } as never)).rejects.toThrow(
      "invalid add options: delay: unknown option 'delay'; known options are context, lifetimeSeconds",
    )
    await expect(q.add('a', {}, undefined, 'ctx' as never)).rejects.toThrow('invalid add options: (root): must be an object with context, lifetimeSeconds')
    expect(calls.added).toEqual([])
    expect(flowCalls.added).toEqual([])
  })

  it('an empty or missing txn (or sub, tid) is a SigningError at add, addBulk, flows and upsertJobScheduler; nothing is added', async () => {
    const { queue, calls } = fakeQueue()
    const { flows, calls: flowCalls } = fakeFlowProducer()
    const store = createContextStore()
    const q = wrapQueue(queue, { signer, contextStore: store, onMissingContext: 'unsigned' })
    const fp = wrapFlowProducer(flows, { signer, contextStore: store })
    const bad = [
      { sub: 'u-1', tid: 'acme', txn: '' },
      { sub: 'u-1', tid: 'acme' },
      { sub: '', tid: 'acme', txn: 't' },
      { sub: 'u-1', tid: '', txn: 't' },
      null,
    ] as never[]
    for (const ctx of bad) {
      const attempts = [
        () => q.add('a', { n: 1 }, {}, { context: ctx }),
        () => q.addBulk([{ name: 'a', data: {} }, { name: 'b', data: {} }], { context: ctx }),
        () => fp.add({ name: 'a', queueName: 'q', children: [{ name: 'b', queueName: 'q' }] }, undefined, { context: ctx }),
        () => fp.addBulk([{ name: 'a', queueName: 'q' }], { context: ctx }),
        () => q.upsertJobScheduler('s', { every: 1000 }, { name: 'a', data: {} }, { context: ctx }),
        // The same context as the current one of the store.
        () => store.run(ctx, () => q.add('a', { n: 1 })),
      ]
      const settled = await Promise.allSettled(attempts.map((a) => a()))
      expect(settled.map((r) => (r.status === 'rejected' ? (r.reason as Error).constructor : 'added')), JSON.stringify(ctx)).toEqual(
        attempts.map(() => SigningError),
      )
    }
    const [first] = await Promise.allSettled([q.add('a', {}, {}, { context: bad[0] as never })])
    expect(first.status === 'rejected' && (first.reason as SigningError).message).toBe(
      'the identity context is not signable: txn: Too small: expected string to have >=1 characters (sub, tid and txn are required non-empty strings of at most 256 characters)',
    )
    // Even with onMissingContext 'unsigned': a context that is there but not signable is an error.
    expect(calls.added).toEqual([])
    expect(flowCalls.added).toEqual([])
  })
})
