import * as nodeCrypto from 'node:crypto'
import { decodeBase64url, encodeBase64url } from './lib/base64url.js'

const LEAF_PREFIX = Buffer.from([0x00])
const NODE_PREFIX = Buffer.from([0x01])
const MAX_TREE_SIZE = 1 << 20

/**
 * A message's position in a signed batch: its leaf index, the batch size and the sibling hashes
 * from the leaf up to the root (RFC 6962 audit path). Carried in the `idctx-proof` header.
 *
 * @example
 * ```ts
 * const { root, proofs } = merkleTree(leaves)
 * const proof: MerkleProof = proofs[1]! // { index: 1, size: 3, path: [<32 bytes>, <32 bytes>] }
 * rootFromProof(leaves[1]!, proof)?.equals(root) // true
 * headers['idctx-proof'] = encodeProof(proof)
 * ```
 */
export interface MerkleProof {
  /** The leaf's position in the batch, from 0. */
  readonly index: number
  /** The number of leaves in the batch. */
  readonly size: number
  /** The sibling hashes (32 bytes each) from the leaf up to the root. */
  readonly path: readonly Buffer[]
}

/**
 * RFC 6962 leaf hash: SHA-256(0x00 || data). The 0x00/0x01 prefixes keep a leaf from ever being
 * taken for an inner node.
 *
 * @example
 * ```ts
 * const h = hashLeaf(Buffer.from('leaf bytes'))
 * ```
 */
export function hashLeaf(data: Uint8Array): Buffer {
  return nodeCrypto.createHash('sha256').update(LEAF_PREFIX).update(data).digest()
}

/**
 * {@link hashLeaf} of a leaf encoding built in place: `input` already starts with the 0x00 leaf
 * prefix, so no second buffer is made.
 */
export function hashPrefixedLeaf(input: Buffer): Buffer {
  if (input[0] !== 0x00) throw new TypeError('a prefixed leaf starts with 0x00')
  // On Node 20 crypto.hash is markedly slower returning a Buffer than a latin1 ('binary') string;
  // the string and one Buffer.from still cost less. This runs once per consumed record or job.
  if (oneShot !== undefined) return Buffer.from(oneShot('sha256', input, 'binary'), 'latin1')
  return nodeCrypto.createHash('sha256').update(input).digest()
}

// crypto.hash (Node >= 20.12) skips the Hash object: ~30% cheaper for 65-byte inputs.
const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash
const nodeInput = Buffer.alloc(65)

function hashNode(left: Uint8Array, right: Uint8Array): Buffer {
  if (oneShot !== undefined && left.length === 32 && right.length === 32) {
    nodeInput[0] = 0x01
    nodeInput.set(left, 1)
    nodeInput.set(right, 33)
    return oneShot('sha256', nodeInput, 'buffer')
  }
  return nodeCrypto.createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest()
}

function splitPoint(n: number): number {
  let k = 1
  while (k << 1 < n) k <<= 1
  return k
}

/**
 * Where one RFC 9162 §2.1.3.2 step goes from position (fn, sn): whether the sibling is on the
 * left, and the position of the node above. The three walks (rootFromProof, pathLength,
 * verifyInclusion) share it; `step` is reused to keep the hot path free of allocations.
 */
interface Step {
  siblingOnLeft: boolean
  fn: number
  sn: number
}

function stepUp(step: Step): void {
  let { fn, sn } = step
  step.siblingOnLeft = (fn & 1) === 1 || fn === sn
  // A right-edge node without a sibling at this level is promoted until it has one.
  if (step.siblingOnLeft && (fn & 1) === 0) {
    while ((fn & 1) === 0 && fn !== 0) {
      fn >>>= 1
      sn >>>= 1
    }
  }
  step.fn = fn >>> 1
  step.sn = sn >>> 1
}

/**
 * The RFC 6962 Merkle tree hash over already-hashed leaves. One leaf: the leaf hash itself.
 *
 * @example
 * ```ts
 * const root = merkleRoot([hashLeaf(a), hashLeaf(b)])
 * ```
 */
export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) throw new TypeError('merkleRoot needs at least one leaf')
  return subtreeRoot(leaves, 0, leaves.length)
}

function subtreeRoot(leaves: readonly Buffer[], start: number, end: number): Buffer {
  const n = end - start
  if (n === 1) return leaves[start] as Buffer
  const k = splitPoint(n)
  return hashNode(subtreeRoot(leaves, start, start + k), subtreeRoot(leaves, start + k, end))
}

/**
 * Builds the root and every leaf's audit path in one pass (O(n log n) hashes in total).
 *
 * @example
 * ```ts
 * const { root, proofs } = merkleTree(leafHashes)
 * ```
 */
export function merkleTree(leaves: readonly Buffer[]): { root: Buffer; proofs: MerkleProof[] } {
  const n = leaves.length
  if (n === 0) throw new TypeError('merkleTree needs at least one leaf')
  const paths: Buffer[][] = leaves.map(() => [])
  const build = (start: number, end: number): Buffer => {
    if (end - start === 1) return leaves[start] as Buffer
    const k = splitPoint(end - start)
    const left = build(start, start + k)
    const right = build(start + k, end)
    // Audit paths list siblings bottom-up, so the outer (higher) sibling is appended after the
    // recursion below has appended the lower ones.
    for (let i = start; i < start + k; i++) paths[i]?.push(right)
    for (let i = start + k; i < end; i++) paths[i]?.push(left)
    return hashNode(left, right)
  }
  const root = build(0, n)
  return { root, proofs: paths.map((path, index) => ({ index, size: n, path })) }
}

/**
 * Recomputes the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2). Returns undefined
 * when the path has the wrong length for the index and size.
 *
 * @example
 * ```ts
 * rootFromProof(hashLeaf(data), proof)?.equals(expectedRoot)
 * ```
 */
export function rootFromProof(leaf: Buffer, proof: MerkleProof): Buffer | undefined {
  const { index, size, path } = proof
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    return undefined
  }
  const step: Step = { siblingOnLeft: false, fn: index, sn: size - 1 }
  let r = leaf
  for (const p of path) {
    if (step.sn === 0) return undefined
    stepUp(step)
    r = step.siblingOnLeft ? hashNode(p, r) : hashNode(r, p)
  }
  return step.sn === 0 ? r : undefined
}

/**
 * Encodes a proof for the `idctx-proof` header: `<index>.<size>.<hash>.<hash>…`, hashes base64url.
 *
 * @example
 * ```ts
 * headers['idctx-proof'] = encodeProof(proofs[i])
 * ```
 */
export function encodeProof(proof: MerkleProof): string {
  let out = `${proof.index}.${proof.size}`
  for (const h of proof.path) out += `.${encodeBase64url(h)}`
  return out
}

const DECIMAL = /^(0|[1-9][0-9]{0,7})$/

/**
 * Parses an `idctx-proof` header value; undefined when it is not exactly in the canonical form.
 *
 * @example
 * ```ts
 * const proof = decodeProof(headerValue)
 * ```
 */
export function decodeProof(value: string): MerkleProof | undefined {
  const h = proofHead(value)
  if (h === undefined) return undefined
  const { index, size, head } = h
  const path: Buffer[] = []
  for (const part of head < 0 ? [] : value.slice(head).split('.')) {
    const h = decodeBase64url(part)
    if (h === undefined || h.length !== 32) return undefined
    path.push(h)
  }
  return { index, size, path }
}

/**
 * The `<index>.<size>.` head of an `idctx-proof` value, in canonical decimal and in range; `head`
 * is where the path starts, or -1 when the value has no path part at all.
 */
function proofHead(value: string): { index: number; size: number; head: number } | undefined {
  if (value.length > 4096) return undefined
  const d1 = value.indexOf('.')
  if (d1 < 0) return undefined
  const d2 = value.indexOf('.', d1 + 1)
  const i = value.slice(0, d1)
  const s = value.slice(d1 + 1, d2 < 0 ? value.length : d2)
  if (!DECIMAL.test(i) || !DECIMAL.test(s)) return undefined
  const index = Number(i)
  const size = Number(s)
  if (size < 2 || size > MAX_TREE_SIZE || index >= size) return undefined
  return { index, size, head: d2 < 0 ? -1 : d2 + 1 }
}

/**
 * A leaf's position under the root, in a form no rewrite of a proof can change: 1 followed by the
 * audit path's turns bottom-up (1 = sibling on the left). The proof's `size` is not signed, and an
 * index read with another size can take the very same walk (6 of 7 and 3 of 4 both turn left
 * twice), so the stated index is not an identity of the leaf; its turns are. Undefined when the
 * value is not a well-formed proof head.
 */
export function proofPosition(proofHeader: string): number | undefined {
  const h = proofHead(proofHeader)
  if (h === undefined) return undefined
  const step: Step = { siblingOnLeft: false, fn: h.index, sn: h.size - 1 }
  let position = 1
  while (step.sn > 0) {
    stepUp(step)
    position = position * 2 + (step.siblingOnLeft ? 1 : 0)
  }
  return position
}

/** Number of audit-path hashes RFC 9162 expects for a leaf index in a tree of a size. */
function pathLength(index: number, size: number): number {
  const step: Step = { siblingOnLeft: false, fn: index, sn: size - 1 }
  let n = 0
  while (step.sn > 0) {
    stepUp(step)
    n++
  }
  return n
}

/**
 * Inner nodes already authenticated against one token's root (latin1 strings of the hashes, as
 * the walk computes them), keyed by tree position, with the proof text that led from each to the
 * root. Shared by all records of a batch so that each record costs about two node hashes instead
 * of log2(n).
 */
export type VerifiedNodes = Map<number, { readonly node: string; readonly rest: string }>

const POSITION = MAX_TREE_SIZE + 1
const HASH_FIELD = 44
const DOT = 0x2e
/**
 * One sibling in canonical base64url, matched in place: 43 characters carry 258 bits for 32 bytes,
 * so the last one must have its two low bits zero (A, E, I, … 8). The same as decodeBase64url's
 * decode-and-re-encode check, without decoding and re-encoding.
 */
const SIBLING = /[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]/y
const walkInput = Buffer.alloc(65)

/**
 * One step of a proof walk: the inner node over the running node `r` and the sibling whose
 * base64url text starts at `at`, on the left or on the right. Node 20's crypto.hash returns a
 * latin1 string in well under half the time it takes to return a Buffer, so the walk keeps its
 * nodes as latin1 strings and decodes each sibling straight into the hash input.
 */
function walkStep(proofHeader: string, at: number, r: string, siblingOnLeft: boolean): string {
  const sibling = proofHeader.slice(at, at + HASH_FIELD - 1)
  if (r.length !== 32) {
    // Only a caller's leaf of another length gets here: hash it whole, as hashNode does.
    const p = Buffer.from(sibling, 'base64url')
    const node = Buffer.from(r, 'latin1')
    return hashNode(siblingOnLeft ? p : node, siblingOnLeft ? node : p).toString('latin1')
  }
  walkInput[0] = 0x01
  walkInput.write(sibling, siblingOnLeft ? 1 : 33, 32, 'base64url')
  walkInput.write(r, siblingOnLeft ? 33 : 1, 32, 'latin1')
  // 'binary' is Node's name for latin1.
  if (oneShot !== undefined) return oneShot('sha256', walkInput, 'binary')
  return nodeCrypto.createHash('sha256').update(walkInput).digest('binary')
}

/**
 * Checks that `leaf` is included under `root` according to an `idctx-proof` header value. The
 * proof must have exactly the RFC 9162 shape for its index and size; the walk stops early at a
 * node already authenticated for this root (from an earlier record of the same batch) when the
 * rest of this proof is the very text that authenticated it, so the outcome never depends on
 * which records were verified before.
 */
export function verifyInclusion(leaf: Buffer, proofHeader: string, root: Buffer, nodes?: VerifiedNodes): boolean {
  const h = proofHead(proofHeader)
  if (h === undefined || h.head < 0) return false
  const { index, size, head } = h
  // Each sibling is 43 base64url characters (32 bytes), separated by dots: the header's length
  // alone says whether the path has the RFC 9162 length for this index and size.
  const n = pathLength(index, size)
  if (proofHeader.length !== head + n * HASH_FIELD - 1) return false
  const step: Step = { siblingOnLeft: false, fn: index, sn: size - 1 }
  let r = leaf.toString('latin1')
  const walked: [number, string, number][] = []
  const remember = () => {
    if (nodes === undefined || nodes.size >= 2 * size) return
    for (const [pos, node, restAt] of walked) nodes.set(pos, { node, rest: proofHeader.slice(restAt) })
  }
  for (let k = 0; k < n; k++) {
    const at = head + k * HASH_FIELD
    if (k < n - 1 && proofHeader.charCodeAt(at + HASH_FIELD - 1) !== DOT) return false
    SIBLING.lastIndex = at
    if (!SIBLING.test(proofHeader)) return false
    stepUp(step)
    r = walkStep(proofHeader, at, r, step.siblingOnLeft)
    if (nodes !== undefined && step.sn > 0) {
      const position = step.fn * POSITION + step.sn
      const restAt = at + HASH_FIELD
      const known = nodes.get(position)
      // Stop early only when the rest of the path is the very text that authenticated this node:
      // the full walk would then reach mh too, so a proof with altered upper hashes (or garbage
      // there) fails the same way whether or not other records were verified first.
      if (
        known !== undefined &&
        known.rest.length === proofHeader.length - restAt &&
        proofHeader.endsWith(known.rest) &&
        known.node === r
      ) {
        remember()
        return true
      }
      walked.push([position, r, restAt])
    }
  }
  if (step.sn !== 0 || r !== root.toString('latin1')) return false
  remember()
  return true
}
