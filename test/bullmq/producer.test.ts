import { describe, it, expect, afterEach } from 'vitest'
import { ConfigError, createContextStore, runWithContext, SigningError } from '@idctx/core'
import { decodeCarrier, wrapFlowProducer, wrapQueue } from '@idctx/bullmq'
import { fixture, harness, userContext, type Harness } from './harness.js'

class Invoice {
  constructor(readonly id: string) {}
}

describe('bullmq producer wrappers against a real Redis', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  it('refuses data that is not a plain JSON-safe object, or that has __idctx, and adds nothing', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('invoices')
    const queue = wrapQueue(raw, { signer: f.orders })
    const sparse: unknown[] = [1]
    sparse[2] = 3
    const circular: Record<string, unknown> = { a: 1 }
    circular.self = circular
    const bad: [string, unknown, RegExp][] = [
      ['array', [1, 2], /plain object, got an array/],
      ['null', null, /plain object, got null/],
      ['string', 'text', /plain object, got a string/],
      ['Date', new Date(), /an instance of Date/],
      ['class instance', new Invoice('i-1'), /an instance of Invoice/],
      ['Map', new Map([['a', 1]]), /an instance of Map/],
      ['nested Date', { at: new Date() }, /data\.at is an instance of Date/],
      ['nested Buffer', { raw: Buffer.from('x') }, /data\.raw is an instance of Buffer/],
      ['NaN', { n: Number.NaN }, /data\.n is NaN/],
      ['Infinity', { n: Number.POSITIVE_INFINITY }, /data\.n is a non-finite number/],
      ['bigint', { n: 1n }, /data\.n is a bigint/],
      ['function', { f: () => 1 }, /data\.f is a function/],
      ['undefined in an array', { list: [1, undefined] }, /data\.list\[1\] is undefined/],
      ['hole in an array', { list: sparse }, /data\.list\[1\] is undefined/],
      ['circular', circular, /circular/],
      ['reserved key', { __idctx: 'forged' }, /reserved key __idctx/],
    ]
    await runWithContext(userContext(), async () => {
      for (const [what, data, message] of bad) {
        const p = queue.add('invoice', data as Record<string, unknown>)
        await expect(p, what).rejects.toThrow(SigningError)
        await expect(queue.add('invoice', data as Record<string, unknown>), what).rejects.toThrow(message)
      }
      // One bad job spoils the whole bulk: nothing is signed or added.
      await expect(queue.addBulk([{ name: 'a', data: { ok: true } }, { name: 'b', data: { at: new Date() } }])).rejects.toThrow(SigningError)
    })
    // No payload value in any message.
    await expect(runWithContext(userContext(), () => queue.add('invoice', { secret: 's3cr3t-value', at: new Date() }))).rejects.toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('s3cr3t') }),
    )
    expect(await raw.count()).toBe(0)
  })

  it('undefined properties are dropped like JSON drops them, and the job still verifies the same bytes', async () => {
    h = harness()
    const f = fixture()
    const queue = wrapQueue(h.queue('invoices'), { signer: f.orders })
    const job = await queue.add('invoice', { id: 'i-1', note: undefined }, {}, { context: userContext() })
    const stored = JSON.parse((await h.redis().hget(h.jobKey('invoices', job.id as string), 'data')) as string) as Record<string, unknown>
    expect(Object.keys(stored).sort()).toEqual(['__idctx', 'id'])
  })

  it('without a context it throws, unless onMissingContext is "unsigned"; an explicit context wins over the current one', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('invoices')
    await expect(wrapQueue(raw, { signer: f.orders }).add('invoice', { id: 'i-1' })).rejects.toThrow(SigningError)
    await expect(wrapQueue(raw, { signer: f.orders }).add('invoice', { id: 'i-1' })).rejects.toThrow(/no identity context/)
    await expect(wrapFlowProducer(h.flowProducer(), { signer: f.orders }).add({ name: 'x', queueName: 'invoices' })).rejects.toThrow(
      SigningError,
    )
    expect(await raw.count()).toBe(0)

    const lenient = wrapQueue(raw, { signer: f.orders, onMissingContext: 'unsigned' })
    const unsigned = await lenient.add('invoice', { id: 'i-2' })
    expect(unsigned.data).toEqual({ id: 'i-2' })

    const store = createContextStore()
    const scoped = wrapQueue(raw, { signer: f.orders, contextStore: store })
    const explicit = userContext({ sub: 'u-explicit' })
    const signed = await store.run(userContext({ sub: 'u-current' }), () => scoped.add('invoice', { id: 'i-3' }, {}, { context: explicit }))
    const token = (decodeCarrier((signed.data as Record<string, unknown>).__idctx) as { token: string }).token
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string }
    expect(claims.sub).toBe('u-explicit')
    // The default store is not the one this queue reads.
    await expect(runWithContext(userContext(), () => scoped.add('invoice', { id: 'i-4' }))).rejects.toThrow(SigningError)
  })

  it('passes every other member of the queue through and keeps the queue itself unmodified', async () => {
    h = harness()
    const f = fixture()
    const raw = h.queue('invoices')
    const queue = wrapQueue(raw, { signer: f.orders })
    expect(queue.name).toBe('invoices')
    expect(queue.unwrapped).toBe(raw)
    expect(raw.add).not.toBe(queue.add)
    expect(Object.prototype.hasOwnProperty.call(raw, 'add')).toBe(false)
    await runWithContext(userContext(), () => queue.add('invoice', { id: 'i-1' }))
    expect(await queue.getJobCounts('wait')).toEqual({ wait: 1 })
    expect(await queue.count()).toBe(1)
    expect(() => wrapQueue(raw, {} as never)).toThrow(ConfigError)
    expect(() => wrapQueue(raw, { signer: f.orders, maxDelayLifetimeSeconds: -1 })).toThrow(ConfigError)
  })
})
