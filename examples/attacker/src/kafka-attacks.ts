import { randomUUID } from 'node:crypto'
import { Partitioners, type Kafka, type Producer } from 'kafkajs'
import { createSigner, generateKey, type IdentityContext } from '@idctx/core'
import { wrapProducer } from '@idctx/kafkajs'
import { deadLetterTopicOf, idctxJwksUrl } from '@idctx/example-shared'
import { headerText, type TailRecord } from './tail.js'
import type { AttackTargets, Hop } from './targets.js'

/** An attack on billing's consumer, and where its rejection must show: a dead-letter record. */
export interface PendingKafkaAttack {
  readonly id: string
  readonly title: string
  readonly hop: Hop
  readonly expected: string
  readonly dlqTopic: string
  readonly key: string
  readonly skipped?: string
}

/** A user context as the gateway would have made it: the attacker is `u-mallory` of acme. */
function mallory(tid = 'acme'): IdentityContext {
  return { sub: 'u-mallory', tid, txn: randomUUID(), pty: 'user', roles: ['buyer'], scope: 'orders:write', act: { sub: 'gateway' } }
}

function orderValue(orderId: string, tenant: string, amount: number): string {
  return JSON.stringify({ orderId, tenant, item: 'gift card', qty: 1, amount })
}

/** The kid of the orders service's active key, from its public JWKS. */
async function stolenKid(ordersUrl: string): Promise<string> {
  const res = await fetch(idctxJwksUrl(ordersUrl))
  const jwks = (await res.json()) as { keys?: { kid?: unknown }[] }
  const kid = jwks.keys?.[0]?.kid
  if (typeof kid !== 'string') throw new Error('the orders JWKS has no key')
  return kid
}

/**
 * Sends the attacks on the Kafka hop and says where each must show up. `bait` is a legitimate
 * record of the attacker's own order, read back from the topic with its `idctx` header.
 */
export async function kafkaAttacks(t: AttackTargets, kafka: Kafka, bait: TailRecord, run: string): Promise<PendingKafkaAttack[]> {
  const raw: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await raw.connect()
  try {
    const orders = t.topics.orders
    const dlq = deadLetterTopicOf(orders)
    const pending: PendingKafkaAttack[] = []
    const expect = (id: string, title: string, expected: string, key: string, dlqTopic = dlq, skipped?: string) =>
      pending.push({ id, title, hop: 'billing', expected, dlqTopic, key, ...(skipped ? { skipped } : {}) })

    // 1. A token signed with the attacker's own key under the kid of orders' real key.
    const forger = createSigner({ issuer: 'orders', audience: t.audience, key: generateKey('EdDSA', { kid: await stolenKid(t.ordersUrl) }) })
    const forgedKey = `atk-forged-${run}`
    await wrapProducer(raw, { signer: forger }).send(
      { topic: orders, messages: [{ key: forgedKey, value: orderValue(forgedKey, 'acme', 0.01) }] },
      { context: mallory() },
    )
    expect('forged-token', "token signed by an untrusted key under orders' kid", 'bad_signature', forgedKey)

    // 2, 3. What a compromised (or buggy) orders producer could send, and a record that waited.
    const expiredKey = `atk-expired-${run}`
    const crossKey = `atk-xtenant-${run}`
    if (t.insider !== undefined) {
      const stale = createSigner({ issuer: 'orders', audience: t.audience, key: t.insider.ordersKey, clock: () => Date.now() - 10 * 60_000 })
      await wrapProducer(raw, { signer: stale }).send(
        { topic: orders, messages: [{ key: expiredKey, value: orderValue(expiredKey, 'acme', 10) }] },
        { context: mallory() },
      )
      const insider = createSigner({ issuer: 'orders', audience: t.audience, key: t.insider.ordersKey })
      await wrapProducer(raw, { signer: insider }).send(
        { topic: orders, messages: [{ key: crossKey, value: orderValue(crossKey, 'globex', 10) }] },
        { context: mallory('acme') },
      )
    }
    const noInsider = t.insider === undefined ? 'needs the orders signing key (run by the demo)' : undefined
    expect('expired-token', 'record whose token expired 5 minutes ago (signed 10 minutes ago)', 'expired', expiredKey, dlq, noInsider)
    expect('cross-tenant', 'valid token of tenant acme on a record of tenant globex', 'tenant_mismatch', crossKey, dlq, noInsider)

    const token = headerText(bait.headers, 'idctx')
    const traceparent = headerText(bait.headers, 'traceparent')
    if (token === undefined || bait.key === undefined) throw new Error('the bait record has no idctx header or key')

    // 4. The bait's header on another record: a bigger order under a new id.
    const liftedKey = `atk-lifted-${run}`
    await raw.send({ topic: orders, messages: [{ key: liftedKey, value: orderValue(liftedKey, 'acme', 1_000_000), headers: { idctx: token } }] })
    expect('lifted-header', "a valid record's idctx header copied onto another record", 'binding_mismatch', liftedKey)

    // 5, 6. The bait record, byte for byte, again on its topic and on the priority topic.
    const copy = { key: bait.key, value: bait.value, headers: { idctx: token, ...(traceparent ? { traceparent } : {}) } }
    await raw.send({ topic: orders, messages: [copy] })
    expect('replay-same-topic', 'a valid record sent again to its own topic', 'replayed', bait.key)
    await raw.send({ topic: t.topics.priority, messages: [copy] })
    expect('replay-other-topic', 'a valid record replayed onto the priority topic', 'binding_mismatch', bait.key, deadLetterTopicOf(t.topics.priority))
    return pending
  } finally {
    await raw.disconnect()
  }
}
