import { randomUUID } from 'node:crypto'
import {
  createKeySet,
  createMemoryReplayStore,
  createSigner,
  createVerifier,
  generateKey,
  kafkaLeaf,
  type VerifyInput,
} from '@idctx/core'

/** One line of the summary: what was tried, what idctx said, and whether that was expected. */
export interface Outcome {
  readonly hop: string
  readonly case: string
  readonly expected: string
  readonly got: string
}

/**
 * The core walkthrough: sign one record's context, verify it, then tamper, expire, cross the
 * tenant boundary, lift the header and replay — and show the reason code each one gets.
 */
export async function coreWalkthrough(): Promise<Outcome[]> {
  const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'orders-1' }) })
  let now = Date.now()
  const clock = () => now
  const signer = createSigner({ issuer: 'orders', audience: 'shop', key: keys, clock })
  const verifier = createVerifier({
    audience: 'shop',
    issuers: { orders: keys },
    producerAcl: { orders: { destinations: ['kafka:orders'] } },
    replay: createMemoryReplayStore({ clock }),
    clock,
  })
  const context = { sub: 'u-7d2f', tid: 'acme', txn: randomUUID(), roles: ['buyer'] }
  const value = Buffer.from(JSON.stringify({ order: 'o-1', total: 42 }))
  const other = Buffer.from(JSON.stringify({ order: 'o-2', total: 4200 }))
  const { token } = signer.sign(context, [{ destination: 'kafka:orders', leaf: kafkaLeaf('orders', 'o-1', value) }])
  const base: VerifyInput = {
    tokens: [token],
    destination: 'kafka:orders',
    leaf: kafkaLeaf('orders', 'o-1', value),
    expectedTenant: 'acme',
    coordinates: 'orders/0/0',
  }
  const outcomes: Outcome[] = []
  const run = async (name: string, expected: string, input: VerifyInput) => {
    const r = await verifier.verify(input)
    outcomes.push({ hop: 'core', case: name, expected, got: r.ok ? 'accepted' : r.error.reason })
  }
  await run('valid record', 'accepted', base)
  await run('same record redelivered (same offset)', 'accepted', base)
  await run('value tampered', 'binding_mismatch', { ...base, leaf: kafkaLeaf('orders', 'o-1', other) })
  await run('header lifted onto another record', 'binding_mismatch', { ...base, leaf: kafkaLeaf('orders', 'o-2', other) })
  await run('record re-sent to another topic', 'binding_mismatch', { ...base, destination: 'kafka:payments', leaf: kafkaLeaf('payments', 'o-1', value) })
  await run('signature forged (one byte changed)', 'bad_signature', { ...base, tokens: [forge(token)] })
  await run('consumed by another tenant', 'tenant_mismatch', { ...base, expectedTenant: 'globex' })
  await run('replayed at another offset', 'replayed', { ...base, coordinates: 'orders/0/99' })
  await run('no token', 'missing', { ...base, tokens: [] })
  now += 10 * 60 * 1000
  await run('ten minutes later', 'expired', base)
  return outcomes
}

/** Flips the signature's first character: same length, still base64url, wrong signature. */
function forge(token: string): string {
  const dot = token.lastIndexOf('.')
  const c = token[dot + 1] === 'A' ? 'B' : 'A'
  return `${token.slice(0, dot + 1)}${c}${token.slice(dot + 2)}`
}
