/**
 * Differential test: every corpus entry goes through idctx's verifier and through a reference
 * built on jose's `jwtVerify` with the same key, algorithm allow-list, issuer, audience, typ,
 * clock tolerance and clock. jose does not know idctx's own rules, so the reference applies them
 * itself, identically: carrier count and size cap, exactly the header members {alg, kid, typ},
 * core's `REQUIRED_CLAIMS` and `claimsSchema`, 0 < exp - iat <= cap, the actor depth cap, `dst`,
 * and `mh` against the message leaf (walked up its proof by an independent RFC 6962 walk here).
 * Both must reach the same accept/reject on every entry.
 *
 * Two deliberate differences, each kept in its own expectation (idctx rejects, jose accepts):
 *
 * 1. Non-canonical base64url. jose on Node 20 decodes with `atob`, which accepts `=` padding,
 *    embedded ASCII whitespace and non-zero unused trailing bits: several strings decode to the
 *    same bytes. idctx accepts exactly one spelling per byte string. Token strings must be unique:
 *    the verified-token cache, the replay store and every log line key on the token string or its
 *    SHA-256, and the property suite demands that no single-byte mutation of a valid token ever
 *    verifies; with lenient decoding, flipping an unused bit of the signature's last character
 *    yields a different token that still verifies.
 * 2. `typ` spelling. jose compares `typ` after lower-casing and adding `application/` (RFC 7515
 *    media-type equivalence). idctx requires the exact `idctx+jwt` its signers write (design,
 *    step 3): one spelling, nothing to normalise, and no token minted by a generic JWT library
 *    with a look-alike media type passes.
 * 3. JSON nesting. idctx measures a header's and a payload's nesting on the text before parsing
 *    (at most 2 levels in the header, max(maxActorDepth, 8) + 1 in the payload) and refuses a
 *    deeper one as `malformed`, even in a claim it would ignore: no parser or schema recursion
 *    ever meets attacker-sized depth. jose parses any depth and ignores unknown claims.
 * 4. Non-integer NumericDate. RFC 7519 §2 allows fractional `exp`, `iat`, `nbf`; jose accepts them.
 *    idctx signers write whole seconds and its claim schema requires integers, so a fractional
 *    one is `malformed` (the reference applies the schema; the plain-jose test below shows the
 *    difference).
 * 5. ES256 high-S. jose (WebCrypto) accepts both (r, s) and (r, n - s); idctx accepts only the
 *    low-S one, so a token has one spelling (keys.test.ts holds that test).
 * 6. Weak keys. RSA keys whose public exponent is not 65537 and small-order Ed25519 points are
 *    refused when imported (keys.test.ts), so no token under them is ever checked.
 */
import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { decodeProtectedHeader, jwtVerify } from 'jose'
import {
  actorDepth,
  claimsSchema,
  createVerifier,
  REQUIRED_CLAIMS,
  type IdctxKey,
  type VerifierOptions,
  type VerifyInput,
} from '@idctx/core'
import { corpus } from './corpus.js'
import { ALGS, baseInput, baseOptions, clock, DEST, forge, LEAF, makeKeyring, NOW, ordersSigner, signBatch, CONTEXT } from './fixtures.js'

const ring = makeKeyring()
const entries = corpus(ring)

// ---- an independent RFC 6962 audit-path walk (top-down recursion, unlike core's loop) ----

const node = (l: Buffer, r: Buffer) => createHash('sha256').update(Buffer.from([1])).update(l).update(r).digest()

function walk(leaf: Buffer, m: number, n: number, path: Buffer[]): Buffer | undefined {
  if (n === 1) return path.length === 0 ? leaf : undefined
  if (path.length === 0) return undefined
  let k = 1
  while (k * 2 < n) k *= 2
  const sibling = path[path.length - 1] as Buffer
  const rest = path.slice(0, -1)
  if (m < k) {
    const left = walk(leaf, m, k, rest)
    return left === undefined ? undefined : node(left, sibling)
  }
  const right = walk(leaf, m - k, n - k, rest)
  return right === undefined ? undefined : node(sibling, right)
}

const PROOF = /^(0|[1-9][0-9]{0,7})\.([1-9][0-9]{0,7})((?:\.[A-Za-z0-9_-]{43})*)$/

function referenceRoot(leaf: Buffer, proof: string): Buffer | undefined {
  const m = PROOF.exec(proof)
  if (m === null) return undefined
  const index = Number(m[1])
  const size = Number(m[2])
  if (size < 2 || size > 2 ** 20 || index >= size) return undefined
  const hashes = (m[3] as string).split('.').slice(1)
  const path: Buffer[] = []
  for (const h of hashes) {
    const bytes = Buffer.from(h, 'base64url')
    if (bytes.toString('base64url') !== h) return undefined
    path.push(bytes)
  }
  return walk(leaf, index, size, path)
}

// ---- the jose-based reference verifier ----

const MEMBERS = 'alg,kid,typ'

async function reference(options: VerifierOptions, input: VerifyInput): Promise<boolean> {
  const algorithms = [...(options.algorithms ?? ['EdDSA', 'ES256', 'RS256'])]
  const tolerance = options.clockToleranceSeconds ?? 30
  const cap = options.maxLifetimeSeconds ?? 900
  const maxBytes = options.maxTokenBytes ?? 4096
  const maxDepth = options.maxActorDepth ?? 8
  if ((options.maxExpiryGraceSeconds ?? 0) !== 0) throw new Error('the reference does not model expiry grace')
  if (input.tokens.length !== 1) return false
  const raw = input.tokens[0] as string | Buffer
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length
  if (size === 0 || size > maxBytes) return false
  const token = typeof raw === 'string' ? raw : raw.toString('utf8')
  try {
    const header = decodeProtectedHeader(token)
    if (Object.keys(header).sort().join(',') !== MEMBERS || typeof header.kid !== 'string') return false
    let owner: string | undefined
    let key: IdctxKey | undefined
    for (const [issuer, keys] of Object.entries(options.issuers)) {
      const found = (keys as readonly IdctxKey[]).find((k) => k.kid === header.kid)
      if (found !== undefined) {
        owner = issuer
        key = found
        break
      }
    }
    if (owner === undefined || key === undefined) return false
    const { payload } = await jwtVerify(token, key.verificationKey, {
      algorithms,
      issuer: owner,
      audience: options.audience,
      typ: 'idctx+jwt',
      clockTolerance: tolerance,
      currentDate: new Date((options.clock ?? Date.now)()),
      // makes jose check that iat is not in the future; the age bound itself is never reached
      maxTokenAge: 10 * 365 * 86_400,
      requiredClaims: [...REQUIRED_CLAIMS],
    })
    const parsed = claimsSchema.safeParse(payload)
    if (!parsed.success) return false
    const c = parsed.data
    if (c.exp <= c.iat || c.exp - c.iat > cap) return false
    if (actorDepth(c.act) > maxDepth) return false
    if (c.dst !== undefined && c.dst !== input.destination) return false
    const leaf = typeof input.leaf === 'function' ? input.leaf() : input.leaf
    const root = input.proof === undefined ? leaf : referenceRoot(leaf, String(input.proof))
    return root !== undefined && root.toString('base64url') === c.mh
  } catch {
    return false
  }
}

async function idctx(options: VerifierOptions, input: VerifyInput): Promise<{ ok: boolean; reason: string }> {
  const r = await createVerifier(options).verify(input)
  return r.ok ? { ok: true, reason: 'ok' } : { ok: false, reason: r.error.reason }
}

/** jose's decoding on Node 20: `-`/`_` → `+`/`/`, then atob (padding, whitespace, any trailing bits). */
function lenientDecode(segment: string): Buffer | undefined {
  if (segment.includes('+') || segment.includes('/')) return undefined
  try {
    return Buffer.from(atob(segment.replace(/-/g, '+').replace(/_/g, '/')), 'latin1')
  } catch {
    return undefined
  }
}

/** Whether `mutated` differs from `original` only by another lenient spelling of the same signature. */
function sameSignatureBytes(original: string, mutated: string): boolean {
  const a = original.split('.')
  const b = mutated.split('.')
  if (b.length !== 3 || a[0] !== b[0] || a[1] !== b[1]) return false
  const bytes = lenientDecode(b[2] as string)
  return bytes !== undefined && bytes.equals(Buffer.from(a[2] as string, 'base64url'))
}

describe('differential: idctx vs a jose-based reference, hand-crafted corpus', () => {
  const stripPolicies = (c: (typeof entries)[number]) => ({
    options: baseOptions(ring, c.options),
    input: { ...c.input, expectedTenant: { any: true } as const },
  })

  it.each(entries.filter((c) => c.joseAccepts === undefined).map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const { options, input } = stripPolicies(c)
    const [mine, ref] = await Promise.all([idctx(options, input), reference(options, input)])
    expect({ idctx: mine.ok, jose: ref }).toEqual({ idctx: c.reason === 'ok', jose: c.reason === 'ok' })
  })

  it.each(entries.filter((c) => c.joseAccepts !== undefined).map((c) => [`${c.name} [${c.joseAccepts}]`, c] as const))(
    'deliberate difference: %s → idctx rejects, jose accepts',
    async (_n, c) => {
      const { options, input } = stripPolicies(c)
      const [mine, ref] = await Promise.all([idctx(options, input), reference(options, input)])
      expect({ idctx: mine.reason, jose: ref }).toEqual({ idctx: c.reason, jose: true })
    },
  )

  it('the corpus has valid tokens of every algorithm and hostile tokens of every token-level reason', () => {
    for (const alg of ALGS) expect(entries.some((c) => c.reason === 'ok' && c.name.includes(alg))).toBe(true)
    const reasons = new Set(entries.map((c) => c.reason))
    for (const r of ['missing', 'duplicate', 'oversize', 'malformed', 'wrong_typ', 'alg_not_allowed', 'header_not_allowed', 'unknown_kid', 'bad_signature', 'missing_claim', 'wrong_issuer', 'wrong_audience', 'expired', 'not_yet_valid', 'lifetime_exceeded', 'binding_mismatch']) {
      expect(reasons.has(r as never)).toBe(true)
    }
  })
})

describe('differential: deliberate differences shown against plain jose', () => {
  it.each([
    ['exp', { exp: NOW + 300.5 }],
    ['iat', { iat: NOW - 0.5 }],
    ['nbf', { nbf: NOW - 10.5 }],
  ])('a fractional %s: jose accepts, idctx says malformed', async (_name, patch) => {
    const token = forge(ring, { claimsPatch: patch })
    const { payload } = await jwtVerify(token, ring.EdDSA.verificationKey, {
      algorithms: ['EdDSA'],
      currentDate: new Date(clock()),
      clockTolerance: 30,
    })
    expect(payload.sub).toBe(CONTEXT.sub)
    const r = await createVerifier(baseOptions(ring)).verify(baseInput(token))
    expect(r.ok ? 'ok' : r.error.reason).toBe('malformed')
  })
})

describe('differential: every single-character mutation of valid tokens', () => {
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const replacements = (ch: string): string[] => {
    const v = B64.indexOf(ch)
    const out = new Set<string>(['=', ' ', '.', '+'])
    if (v >= 0) {
      out.add(B64[v ^ 1] as string) // flips the lowest bit: non-canonical when those bits are unused
      out.add(B64[v ^ 32] as string)
    } else out.add('A')
    out.delete(ch)
    return [...out]
  }

  const tokens: { name: string; token: string; input: (t: string) => VerifyInput }[] = ALGS.map((alg) => {
    const { token } = ordersSigner(ring[alg]).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])
    return { name: alg, token, input: (t: string) => baseInput(t) }
  })
  {
    const batch = signBatch(ring, ring.ES256)
    tokens.push({ name: 'ES256 batch record 1', token: batch.token, input: (t) => baseInput(t, { leaf: batch.leaves[1] as Buffer, proof: batch.proofs[1] }) })
  }

  it('batch proofs on a warm verifier: every single-character mutation gets the reference walk\'s verdict', async () => {
    // The verifier remembers tree nodes it has authenticated for a token and stops a later walk
    // there; that must never change an outcome, whatever records were verified before.
    const leaves = Array.from({ length: 7 }, (_, i) => Buffer.from(LEAF.map((b) => b ^ i)))
    const signed = ordersSigner(ring.EdDSA).sign(CONTEXT, leaves.map((leaf) => ({ destination: DEST, leaf })))
    const options = baseOptions(ring)
    const verifier = createVerifier(options)
    const mh = JSON.parse(Buffer.from(signed.token.split('.')[1] as string, 'base64url').toString()).mh as string
    const input = (i: number, proof: string) => baseInput(signed.token, { leaf: leaves[i] as Buffer, proof })
    for (let i = 0; i < leaves.length; i++) expect((await verifier.verify(input(i, signed.proofs[i] as string))).ok).toBe(true)
    const disagreements: string[] = []
    let accepted = 0
    for (let i = 0; i < leaves.length; i++) {
      const proof = signed.proofs[i] as string
      for (let at = 0; at < proof.length; at++) {
        for (const r of replacements(proof[at] as string)) {
          const mutated = proof.slice(0, at) + r + proof.slice(at + 1)
          const root = referenceRoot(leaves[i] as Buffer, mutated)
          const expected = root !== undefined && root.toString('base64url') === mh
          if (expected) accepted++
          const got = (await verifier.verify(input(i, mutated))).ok
          if (got !== expected) disagreements.push(`record ${i} pos ${at} '${r}': idctx ${got}, reference ${expected}`)
        }
      }
    }
    expect(disagreements).toEqual([])
    // The only mutations both accept: size 7 rewritten as 6 on records 0..3, whose walk is the
    // same in both trees (the size is not signed; the leaf is still proven under mh).
    expect(accepted).toBe(4)
  })

  it.each(tokens.map((t) => [t.name, t] as const))('%s: idctx rejects all; jose agrees except on same-bytes signature spellings', async (_n, t) => {
    const options = baseOptions(ring)
    const verifier = createVerifier(options)
    expect((await verifier.verify(t.input(t.token))).ok).toBe(true)
    expect(await reference(options, t.input(t.token))).toBe(true)
    const disagreements: string[] = []
    let lenientCount = 0
    for (let i = 0; i < t.token.length; i++) {
      for (const r of replacements(t.token[i] as string)) {
        const mutated = t.token.slice(0, i) + r + t.token.slice(i + 1)
        const input = t.input(mutated)
        const [mine, ref] = await Promise.all([verifier.verify(input), reference(options, input)])
        const joseShouldAccept = sameSignatureBytes(t.token, mutated)
        if (joseShouldAccept) lenientCount++
        if (mine.ok || ref !== joseShouldAccept) disagreements.push(`pos ${i} '${r}': idctx ${mine.ok ? 'ok' : mine.error.reason}, jose ${ref}`)
      }
    }
    expect(disagreements).toEqual([])
    // the xor-1 spelling of the last signature character is always a same-bytes spelling
    expect(lenientCount).toBeGreaterThan(0)
  })
})
