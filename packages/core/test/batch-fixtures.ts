/**
 * Batch-profile fixtures: a batch signed by createSigner over the messages of three calls with
 * three different identity contexts, and a hand-made batch (records, leaves and tree built here,
 * token forged with node:crypto) so that hostile tokens and records can be anything.
 */
import { createHash, randomBytes } from 'node:crypto'
import { kafkaLeaf, merkleTree, encodeProof, type IdctxKey, type IdentityContext, type VerifyInput } from '@idctx/core'
import canonicalizeModule from 'canonicalize'
import { AUD, DEST, forge, ISS, NOW, ordersSigner, TOPIC, type Keyring } from './fixtures.js'

/** RFC 8785 reference (the package's typings miss its default export's call signature). */
const canonicalize = canonicalizeModule as unknown as (v: unknown) => string | undefined

export const BATCH_TYP = 'idctx-batch+jwt'

/** Three users of two tenants, each with its own call. */
export const ALICE: IdentityContext = { sub: 'u-alice', tid: 'acme', txn: 'txn-alice', pty: 'user', roles: ['clerk'], scope: 'orders:write' }
export const BOB: IdentityContext = { sub: 'u-bob', tid: 'acme', txn: 'txn-bob', act: { sub: 'gateway' } }
export const CAROL: IdentityContext = { sub: 'u-carol', tid: 'globex', txn: 'txn-carol', scope: 'orders:read' }

/** One message of a signed batch: its record, leaf and carriers. */
export interface BatchMessage {
  readonly key: string
  readonly value: Buffer
  /** The single-profile leaf of the message (what an adapter recomputes). */
  readonly leaf: Buffer
  readonly proof: string
  readonly contextRecord: string
  readonly context: IdentityContext
}

/** A batch signed by createSigner: alice's call has two records, bob's and carol's one each. */
export function signedBatch(key: IdctxKey) {
  const calls = [
    { context: ALICE, records: [['a-1', '{"n":1}'], ['a-2', '{"n":2}']] },
    { context: BOB, records: [['b-1', '{"n":3}']] },
    { context: CAROL, records: [['c-1', '{"n":4}']] },
  ] as const
  const signer = ordersSigner(key)
  const signed = signer.signBatch(
    calls.map((c) => ({ context: c.context, messages: c.records.map(([k, v]) => ({ destination: DEST, leaf: kafkaLeaf(TOPIC, k, v) })) })),
  )
  const messages: BatchMessage[] = []
  calls.forEach((c, i) => {
    const call = signed.calls[i]!
    c.records.forEach(([k, v], j) => {
      messages.push({ key: k, value: Buffer.from(v), leaf: kafkaLeaf(TOPIC, k, v), proof: call.proofs[j]!, contextRecord: call.contextRecord, context: c.context })
    })
  })
  return { token: signed.token, jti: signed.jti, messages }
}

/** The verify input of one batch message (expected tenant: its own). */
export function batchInput(token: string | Buffer, m: BatchMessage, extra: Partial<VerifyInput> = {}): VerifyInput {
  return { tokens: [token], contextRecord: [m.contextRecord], proof: m.proof, destination: DEST, leaf: m.leaf, expectedTenant: m.context.tid, ...extra }
}

/** An independent batch leaf: SHA-256(0x00 ‖ "idctx-batch-leaf-v1\0" ‖ SHA-256(record) ‖ leaf). */
export function referenceBatchLeaf(record: string | Buffer, leaf: Buffer): Buffer {
  const recordHash = createHash('sha256').update(record).digest()
  return createHash('sha256').update(Buffer.from([0])).update('idctx-batch-leaf-v1\0', 'latin1').update(recordHash).update(leaf).digest()
}

/** A canonical context record of `members` (with a fresh `n` unless given). */
export function recordOf(members: Record<string, unknown>): string {
  const withNonce = 'n' in members ? members : { ...members, n: randomBytes(16).toString('base64url') }
  return canonicalize(withNonce) as string
}

/**
 * A hand-made batch: the given records (raw strings, any content) over messages `k<i>`/`v<i>`,
 * the token forged with `claims` (default: a valid batch claim set over the tree) and `header`.
 */
export function forgedBatch(
  ring: Keyring,
  records: readonly string[],
  o: { claimsPatch?: Record<string, unknown>; claims?: (mh: string) => Record<string, unknown>; headerPatch?: Record<string, unknown>; key?: IdctxKey } = {},
) {
  const leaves = records.map((_, i) => kafkaLeaf(TOPIC, `k${i}`, `v${i}`))
  const batchLeaves = records.map((r, i) => referenceBatchLeaf(r, leaves[i]!))
  const tree = merkleTree(batchLeaves)
  const mh = tree.root.toString('base64url')
  const base: Record<string, unknown> = { iss: ISS, aud: AUD, jti: `bjti-${randomBytes(6).toString('hex')}`, iat: NOW, exp: NOW + 300, mh }
  const claims = o.claims?.(mh) ?? { ...base, ...o.claimsPatch }
  for (const [k, v] of Object.entries(o.claimsPatch ?? {})) if (v === undefined) delete claims[k]
  const token = forge(ring, { ...(o.key === undefined ? {} : { key: o.key }), headerPatch: { typ: BATCH_TYP, ...o.headerPatch }, claims })
  const input = (i: number, extra: Partial<VerifyInput> = {}): VerifyInput => ({
    tokens: [token],
    contextRecord: [records[i]!],
    proof: encodeProof(tree.proofs[i]!),
    destination: DEST,
    leaf: leaves[i]!,
    expectedTenant: { any: true },
    ...extra,
  })
  return { token, leaves, proofs: tree.proofs.map(encodeProof), input, jti: claims.jti as string }
}

/** A valid record for the hand-made batches. */
export const validRecord = (sub = 'u-1', tid = 'acme'): string => recordOf({ act: { sub: ISS }, sub, tid, txn: `txn-${sub}` })
