import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { decodeProof, encodeProof, hashLeaf, kafkaLeaf, merkleRoot, merkleTree, rootFromProof, type MerkleProof } from '@idctx/core'

const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest()

/** RFC 6962 §2.1 MTH, written from the RFC's recursive definition. */
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0] as Buffer
  let k = 1
  while (k * 2 < leaves.length) k *= 2
  return sha256(Buffer.from([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)))
}

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => hashLeaf(Buffer.from(`record-${i}`)))

describe('merkle: RFC 6962 tree hash', () => {
  it('matches the RFC 6962 / Certificate Transparency test vectors for 1..8 leaves', () => {
    const inputs = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f']
    const expected = [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
      '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
      'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    ]
    const leaves = inputs.map((h) => hashLeaf(Buffer.from(h, 'hex')))
    for (let n = 1; n <= 8; n++) expect(merkleRoot(leaves.slice(0, n)).toString('hex')).toBe(expected[n - 1])
  })

  it('agrees with the recursive definition and merkleTree for every size 1..33', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = leavesOf(n)
      const root = merkleRoot(leaves)
      expect(root.equals(mth(leaves))).toBe(true)
      expect(merkleTree(leaves).root.equals(root)).toBe(true)
    }
  })

  it('a one-leaf tree is the leaf hash itself', () => {
    const [leaf] = leavesOf(1) as [Buffer]
    expect(merkleRoot([leaf]).equals(leaf)).toBe(true)
  })

  it('refuses an empty tree', () => {
    expect(() => merkleRoot([])).toThrow(TypeError)
    expect(() => merkleTree([])).toThrow(TypeError)
  })
})

describe('merkle: audit paths', () => {
  it('every proof of every size 1..33 verifies, and survives encode/decode', () => {
    let checked = 0
    for (let n = 1; n <= 33; n++) {
      const leaves = leavesOf(n)
      const { root, proofs } = merkleTree(leaves)
      expect(proofs).toHaveLength(n)
      proofs.forEach((proof, i) => {
        expect(proof).toMatchObject({ index: i, size: n })
        expect(rootFromProof(leaves[i] as Buffer, proof)?.equals(root)).toBe(true)
        if (n >= 2) {
          const decoded = decodeProof(encodeProof(proof)) as MerkleProof
          expect(decoded).toEqual(proof)
          expect(rootFromProof(leaves[i] as Buffer, decoded)?.equals(root)).toBe(true)
        }
        checked++
      })
    }
    expect(checked).toBe((33 * 34) / 2)
  })

  it('path lengths follow RFC 9162: ceil(log2 n) at most', () => {
    for (let n = 2; n <= 33; n++) {
      for (const p of merkleTree(leavesOf(n)).proofs) {
        expect(p.path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)))
        expect(p.path.length).toBeGreaterThanOrEqual(1)
      }
    }
  })

  it('a proof fails for another leaf, a tampered sibling, another index, a truncated or extended path', () => {
    for (let n = 2; n <= 17; n++) {
      const leaves = leavesOf(n)
      const { root, proofs } = merkleTree(leaves)
      proofs.forEach((proof, i) => {
        const leaf = leaves[i] as Buffer
        const other = leaves[(i + 1) % n] as Buffer
        const same = (p: MerkleProof, l = leaf) => rootFromProof(l, p)?.equals(root) === true
        expect(same(proof, other)).toBe(false)
        proof.path.forEach((_, k) => {
          const path = proof.path.map((h, j) => (j === k ? Buffer.from(h.map((b, x) => (x === 0 ? b ^ 1 : b))) : h))
          expect(same({ ...proof, path })).toBe(false)
        })
        for (let j = 0; j < n; j++) if (j !== i) expect(same({ ...proof, index: j })).toBe(false)
        expect(same({ ...proof, path: proof.path.slice(0, -1) })).toBe(false)
        expect(rootFromProof(leaf, { ...proof, path: [...proof.path, leaf] })).toBeUndefined()
        expect(rootFromProof(leaf, { ...proof, index: n })).toBeUndefined()
        expect(rootFromProof(leaf, { ...proof, index: -1 })).toBeUndefined()
      })
    }
  })
})

describe('merkle: domain separation (RFC 6962 0x00 / 0x01 prefixes)', () => {
  it('leaf hash is SHA-256(0x00 ‖ data) and an inner node SHA-256(0x01 ‖ left ‖ right)', () => {
    const a = hashLeaf(Buffer.from('a'))
    const b = hashLeaf(Buffer.from('b'))
    expect(a.equals(sha256(Buffer.from([0]), Buffer.from('a')))).toBe(true)
    expect(merkleRoot([a, b]).equals(sha256(Buffer.from([1]), a, b))).toBe(true)
  })

  it('a leaf never equals an inner node, even over the very bytes of the two children', () => {
    for (let n = 2; n <= 9; n++) {
      const leaves = leavesOf(n)
      const inner = new Set<string>()
      // every inner node of the tree: the roots of every subtree the recursion visits
      const visit = (ls: Buffer[]): Buffer => {
        if (ls.length === 1) return ls[0] as Buffer
        let k = 1
        while (k * 2 < ls.length) k *= 2
        const l = visit(ls.slice(0, k))
        const r = visit(ls.slice(k))
        const node = sha256(Buffer.from([1]), l, r)
        inner.add(node.toString('hex'))
        // the leaf hash of the children's concatenation is not the node
        expect(hashLeaf(Buffer.concat([l, r])).equals(node)).toBe(false)
        expect(hashLeaf(Buffer.concat([Buffer.from([1]), l, r])).equals(node)).toBe(false)
        return node
      }
      visit(leaves)
      for (const leaf of leaves) expect(inner.has(leaf.toString('hex'))).toBe(false)
    }
  })

  it('a message leaf is a leaf hash: a record cannot stand in for a subtree', () => {
    const l0 = kafkaLeaf('t', 'k0', 'v0')
    const l1 = kafkaLeaf('t', 'k1', 'v1')
    const root = merkleRoot([l0, l1])
    // the bytes of both children as one message value give a leaf, not the node
    expect(kafkaLeaf('t', null, Buffer.concat([l0, l1])).equals(root)).toBe(false)
    expect(hashLeaf(Buffer.concat([l0, l1])).equals(root)).toBe(false)
  })
})

describe('merkle: idctx-proof encoding', () => {
  const { proofs } = merkleTree(leavesOf(5))
  const p = proofs[2] as MerkleProof
  const text = encodeProof(p)
  const [, , ...hashes] = text.split('.')
  const h0 = hashes[0] as string

  it('encodes as <index>.<size>.<sibling>… with canonical base64url siblings', () => {
    expect(text).toMatch(/^2\.5(\.[A-Za-z0-9_-]{43})+$/)
    expect(hashes).toHaveLength(p.path.length)
    expect(decodeProof(text)).toEqual(p)
  })

  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const nonCanonicalHash = h0.slice(0, -1) + B64[B64.indexOf(h0[h0.length - 1] as string) ^ 1]
  const rest = hashes.slice(1).map((h) => `.${h}`).join('')

  it.each([
    ['leading zero in the index', `02.5.${hashes.join('.')}`],
    ['leading zero in the size', `2.05.${hashes.join('.')}`],
    ['plus sign', `+2.5.${hashes.join('.')}`],
    ['negative index', `-1.5.${hashes.join('.')}`],
    ['exponent', `2e0.5.${hashes.join('.')}`],
    ['index not below size', `5.5.${hashes.join('.')}`],
    ['size 1 (a single message has no proof)', `0.1.${hashes.join('.')}`],
    ['size 0', '0.0'],
    ['size beyond 2^20', `2.1048577.${hashes.join('.')}`],
    ['index with nine digits', `000000002.5.${hashes.join('.')}`],
    ['trailing dot', `${text}.`],
    ['empty hash in the middle', `2.5..${hashes.join('.')}`],
    ['a 31-byte hash', `2.5.${Buffer.alloc(31).toString('base64url')}${rest}`],
    ['a 33-byte hash', `2.5.${Buffer.alloc(33).toString('base64url')}${rest}`],
    ['non-canonical trailing bits in a hash', `2.5.${nonCanonicalHash}${rest}`],
    ['padded hash', `2.5.${h0}=${rest}`],
    ['standard-base64 hash', `2.5.${Buffer.alloc(32, 0xfb).toString('base64').replace(/=+$/, '')}${rest}`],
    ['whitespace', ` ${text}`],
    ['only an index', '2'],
    ['empty string', ''],
    ['longer than 4096 characters', `2.5${`.${h0}`.repeat(100)}`],
  ])('rejects a non-canonical form: %s', (_name, value) => {
    expect(decodeProof(value)).toBeUndefined()
  })
})
