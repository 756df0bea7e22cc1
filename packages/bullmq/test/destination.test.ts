import { describe, it, expect } from 'vitest'
import { bullmqDestination, bullmqLeaf, createSigner, createVerifier, encodeDestinationComponent, generateKey, isProducerAllowed } from '@idctx/core'
import { decodeCarrier, wrapQueue } from '@idctx/bullmq'
import { fakeQueue } from './util.js'

const key = generateKey()
const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
const context = { sub: 'u-1', tid: 'acme', txn: 't-1' }

/** Signs one job on queue `queueName` with a wrapped (fake) queue and returns its stored data. */
async function signedOn(queueName: string, name: string, data: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { queue, calls } = fakeQueue(queueName)
  await wrapQueue(queue, { signer }).add(name, data, {}, { context })
  return (calls.added[0] as unknown[])[2] as Record<string, unknown>
}

describe('BullMQ destinations are injective', () => {
  it('percent-encode each component, so (billing, refund/x) and (billing/refund, x) differ', () => {
    expect(bullmqDestination('billing', 'refund/x')).toBe('bullmq:billing/refund%2Fx')
    expect(bullmqDestination('billing/refund', 'x')).toBe('bullmq:billing%2Frefund/x')
    expect(bullmqDestination('a%2Fb', 'c')).toBe('bullmq:a%252Fb/c')
    expect(bullmqDestination('invoices', 'invoice')).toBe('bullmq:invoices/invoice')
  })

  it('a job signed for queue billing, name refund/x does not verify on queue billing/refund, name x', async () => {
    const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] } })
    const data = await signedOn('billing', 'refund/x', { amount: 10 })
    const token = (decodeCarrier(data.__idctx) as { token: string }).token
    const at = (queue: string, name: string) =>
      verifier.verify({ tokens: [token], destination: bullmqDestination(queue, name), leaf: bullmqLeaf(queue, name, data), expectedTenant: 'acme' })
    expect((await at('billing', 'refund/x')).ok).toBe(true)
    const moved = await at('billing/refund', 'x')
    expect(moved.ok === false && moved.error.reason).toBe('binding_mismatch')
  })

  it('ACL patterns match the encoded form: a prefix of one queue never covers a queue whose name extends it with /', () => {
    const acl = { orders: { destinations: ['bullmq:billing/*'] }, reports: { destinations: [`bullmq:${encodeDestinationComponent('billing/refund')}/*`] } }
    expect(isProducerAllowed(acl, 'orders', bullmqDestination('billing', 'refund/x'), 'acme')).toBe(true)
    expect(isProducerAllowed(acl, 'orders', bullmqDestination('billing/refund', 'x'), 'acme')).toBe(false)
    expect(isProducerAllowed(acl, 'reports', bullmqDestination('billing/refund', 'x'), 'acme')).toBe(true)
    expect(isProducerAllowed(acl, 'reports', bullmqDestination('billing', 'refund/x'), 'acme')).toBe(false)
    // A raw pattern with the special character never matches anything.
    expect(isProducerAllowed({ orders: { destinations: ['bullmq:billing/refund/*'] } }, 'orders', bullmqDestination('billing/refund', 'x'), 'acme')).toBe(false)
  })

  it('a producer allowed on bullmq:billing/* is actor_not_allowed on queue billing/refund', async () => {
    const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] }, producerAcl: { orders: { destinations: ['bullmq:billing/*'] } } })
    const verify = async (queue: string, name: string) => {
      const data = await signedOn(queue, name, { amount: 1 })
      const token = (decodeCarrier(data.__idctx) as { token: string }).token
      return verifier.verify({ tokens: [token], destination: bullmqDestination(queue, name), leaf: bullmqLeaf(queue, name, data), expectedTenant: 'acme' })
    }
    expect((await verify('billing', 'refund')).ok).toBe(true)
    const outside = await verify('billing/refund', 'x')
    expect(outside.ok === false && outside.error.reason).toBe('actor_not_allowed')
  })
})
