/**
 * The hand-crafted token corpus: every hostile token of the hostile suite that depends on the
 * token and the message alone, plus valid tokens at the edges. Shared by hostile.test.ts (exact
 * reason codes) and differential.test.ts (same accept/reject as a jose-based reference).
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto'
import {
  bullmqLeaf,
  encodeProof,
  decodeProof,
  kafkaLeaf,
  REQUIRED_CLAIMS,
  type ReasonCode,
  type VerifierOptions,
  type VerifyInput,
} from '@idctx/core'
import {
  ALGS,
  b64,
  baseClaims,
  baseInput,
  DEST,
  forge,
  ISS,
  LEAF,
  nonCanonical,
  NOW,
  ordersSigner,
  OTHER_ISS,
  RECORD,
  signBatch,
  TOPIC,
  withSegment,
  CONTEXT,
  type Keyring,
} from './fixtures.js'

export interface CorpusCase {
  readonly name: string
  /** The exact reason idctx must give, or 'ok'. */
  readonly reason: ReasonCode | 'ok'
  readonly input: VerifyInput
  /** Verifier options for this case (applied to the jose reference too). */
  readonly options?: Partial<VerifierOptions>
  /**
   * Set when jose's `jwtVerify` deliberately accepts what idctx refuses (see differential.test.ts):
   * a non-canonical base64url spelling of signed bytes, or a typ spelling jose normalises.
   */
  readonly joseAccepts?: 'non-canonical-base64url' | 'typ-spelling' | 'nesting-depth'
}

const segments = (token: string) => token.split('.') as [string, string, string]

/** JSON text padded with trailing spaces until its base64url form has unused trailing bits. */
function withUnusedBits(value: unknown): string {
  let text = JSON.stringify(value)
  while (Buffer.byteLength(text) % 3 === 0) text += ' '
  return text
}

/** base64url with `=` padding, as base64 (not base64url) would write it. */
function padded(text: string): string {
  const s = b64(text)
  return s + '='.repeat((4 - (s.length % 4)) % 4)
}

/** A valid token whose signature, written in standard base64, contains `ch` ('+' or '/'). */
function tokenWithStdChar(ring: Keyring, ch: '+' | '/'): string {
  for (let i = 0; i < 500; i++) {
    const token = forge(ring)
    const sig = segments(token)[2]
    const std = Buffer.from(sig, 'base64url').toString('base64').replace(/=+$/, '')
    if (std.includes(ch)) return withSegment(token, 2, std)
  }
  throw new Error(`no signature with ${ch} in 500 tries`)
}

/** Replaces the bytes of `marker` in the JSON of `claims` with raw bytes (e.g. invalid UTF-8). */
function jsonWithBytes(value: unknown, marker: string, bytes: number[]): string {
  const text = Buffer.from(JSON.stringify(value))
  const at = text.indexOf(marker)
  if (at < 0) throw new Error('marker not found')
  return Buffer.concat([text.subarray(0, at), Buffer.from(bytes), text.subarray(at + marker.length)]).toString('base64url')
}

export function corpus(ring: Keyring): CorpusCase[] {
  const cases: CorpusCase[] = []
  const add = (name: string, reason: ReasonCode | 'ok', input: VerifyInput, extra: Partial<CorpusCase> = {}) =>
    cases.push({ name, reason, input, ...extra })
  const one = (name: string, reason: ReasonCode | 'ok', token: string | Buffer, extra: Partial<CorpusCase> = {}) =>
    add(name, reason, baseInput(token), extra)

  // ---- valid tokens, at the edges of every rule ----
  for (const alg of ALGS) one(`valid ${alg} (forged by hand)`, 'ok', forge(ring, { key: ring[alg] }))
  for (const alg of ALGS) {
    const signed = ordersSigner(ring[alg]).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }])
    one(`valid ${alg} (createSigner)`, 'ok', signed.token)
  }
  one('valid: token given as a Buffer', 'ok', Buffer.from(forge(ring)))
  one('valid: header members in another order', 'ok', forge(ring, { header: { typ: 'idctx+jwt', kid: ring.EdDSA.kid, alg: 'EdDSA' } }))
  one('valid: unknown extra claims are ignored', 'ok', forge(ring, { claimsPatch: { extra: { deep: [1, 2] }, email: 'x' } }))
  one('valid: optional claims', 'ok', forge(ring, { claimsPatch: { pty: 'user', roles: ['admin'], scope: 'a b', nbf: NOW - 10, dst: DEST, trc: 'a'.repeat(32), act: { sub: ISS } } }))
  one('valid: exp just inside tolerance (exp = now - 29)', 'ok', forge(ring, { claimsPatch: { iat: NOW - 329, exp: NOW - 29 } }))
  one('valid: nbf at the tolerance edge (nbf = now + 30)', 'ok', forge(ring, { claimsPatch: { nbf: NOW + 30 } }))
  one('valid: iat at the tolerance edge (iat = now + 30)', 'ok', forge(ring, { claimsPatch: { iat: NOW + 30, exp: NOW + 330 } }))
  one('valid: lifetime exactly the cap (900 s)', 'ok', forge(ring, { claimsPatch: { iat: NOW - 100, exp: NOW + 800 } }))
  {
    let act: Record<string, unknown> | undefined
    for (let i = 0; i < 8; i++) act = act === undefined ? { sub: `a${i}` } : { sub: `a${i}`, act }
    one('valid: actor chain exactly at the depth cap (8)', 'ok', forge(ring, { claimsPatch: { act } }))
  }
  one('valid: billing token with billing key', 'ok', forge(ring, { key: ring.billing, claimsPatch: { iss: OTHER_ISS } }))
  {
    const h = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: ring.EdDSA.kid, typ: 'idctx+jwt' }))])
    one('valid: UTF-8 BOM before the header JSON (signed; ignored as RFC 8259 allows)', 'ok', forge(ring, { h64: h.toString('base64url') }))
  }
  {
    const batch = signBatch(ring)
    batch.records.forEach((r, i) =>
      add(`valid: batch record ${i} with its proof`, 'ok', baseInput(batch.token, { leaf: batch.leaves[i] as Buffer, proof: batch.proofs[i] })),
    )
  }
  {
    const leaf = bullmqLeaf('invoices', 'invoice', { n: 1, tenant: 'acme' })
    const token = forge(ring, { claimsPatch: { mh: leaf.toString('base64url'), dst: 'bullmq:invoices/invoice' } })
    add('valid: BullMQ job', 'ok', baseInput(token, { destination: 'bullmq:invoices/invoice', leaf: bullmqLeaf('invoices', 'invoice', { tenant: 'acme', n: 1, __idctx: token }) }))
  }

  // ---- 1. carrier ----
  add('missing: no token at all', 'missing', baseInput('', { tokens: [] }))
  add('missing: an empty string', 'missing', baseInput(''))
  add('missing: an empty Buffer', 'missing', baseInput(Buffer.alloc(0)))
  {
    const t = forge(ring)
    add('duplicate: the same token twice', 'duplicate', baseInput(t, { tokens: [t, t] }))
    add('duplicate: two different valid tokens', 'duplicate', baseInput(t, { tokens: [t, forge(ring)] }))
    add('duplicate: a valid token and an empty one', 'duplicate', baseInput(t, { tokens: [Buffer.from(t), Buffer.alloc(0)] }))
  }
  one('oversize: 4097 ASCII bytes', 'oversize', 'a'.repeat(4097))
  one('oversize: a 5000-byte Buffer', 'oversize', Buffer.alloc(5000, 0x41))
  one('oversize: 2049 two-byte characters (4098 bytes, under 4096 chars)', 'oversize', 'é'.repeat(2049))
  one('oversize: a validly signed token with a 4 KiB claim', 'oversize', forge(ring, { claimsPatch: { pad: 'x'.repeat(4096) } }))
  one('oversize: a normal token over a 256-byte cap', 'oversize', forge(ring), { options: { maxTokenBytes: 256 } })

  // ---- 2. syntax ----
  {
    const [h, p, s] = segments(forge(ring))
    one('malformed: JWS JSON serialization (flattened)', 'malformed', JSON.stringify({ protected: h, payload: p, signature: s }))
    one('malformed: JWS JSON serialization (general)', 'malformed', JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }] }))
    one('malformed: two segments', 'malformed', `${h}.${p}`)
    one('malformed: four segments', 'malformed', `${h}.${p}.${s}.${s}`)
    one('malformed: empty header segment', 'malformed', `.${p}.${s}`)
    one('malformed: header with "+"', 'malformed', `+${h.slice(1)}.${p}.${s}`)
    one('malformed: header is not JSON', 'malformed', `${b64('not json')}.${p}.${s}`)
    one('malformed: header is a JSON array', 'malformed', `${b64([{ alg: 'EdDSA' }])}.${p}.${s}`)
    one('malformed: header is JSON null', 'malformed', `${b64('null')}.${p}.${s}`)
    one('malformed: header is a JSON string', 'malformed', `${b64('"idctx+jwt"')}.${p}.${s}`)
    one('malformed: header length ≡ 1 mod 4', 'malformed', `${h}A.${p}.${s}`)
    one('malformed: NUL byte inside the token', 'malformed', `${h}.${p}\u0000.${s}`)
  }
  one('malformed: signature in standard base64 with "+"', 'malformed', tokenWithStdChar(ring, '+'))
  one('malformed: signature in standard base64 with "/"', 'malformed', tokenWithStdChar(ring, '/'))
  one('malformed: invalid UTF-8 in the header (signed)', 'malformed', forge(ring, { h64: jsonWithBytes({ alg: 'EdDSA', kid: 'orders-ed', typ: 'idctx+jwt' }, '-ed', [0x2d, 0x65, 0x64, 0xff]) }))
  one('malformed: invalid UTF-8 in the payload (signed)', 'malformed', forge(ring, { p64: jsonWithBytes({ ...baseClaims(), sub: 'u-MARK' }, 'MARK', [0xc3, 0x28]) }))
  one('malformed: payload is not JSON (signed)', 'malformed', forge(ring, { p64: b64('hello') }))
  one('malformed: payload is a JSON array (signed)', 'malformed', forge(ring, { p64: b64([baseClaims()]) }))
  one('malformed: payload is JSON null (signed)', 'malformed', forge(ring, { p64: b64('null') }))
  one('malformed: aud is an array (signed)', 'malformed', forge(ring, { claimsPatch: { aud: ['shop'] } }))
  one('malformed: iat is a string (signed)', 'malformed', forge(ring, { claimsPatch: { iat: String(NOW) } }))
  one('malformed: exp is fractional (signed)', 'malformed', forge(ring, { claimsPatch: { exp: NOW + 300.5 } }))
  one('malformed: mh is not a SHA-256 (signed)', 'malformed', forge(ring, { claimsPatch: { mh: 'abc' } }))
  one('malformed: trc is upper-case hex (signed)', 'malformed', forge(ring, { claimsPatch: { trc: 'A'.repeat(32) } }))
  one('malformed: sub is empty (signed)', 'malformed', forge(ring, { claimsPatch: { sub: '' } }))
  one('malformed: pty is unknown (signed)', 'malformed', forge(ring, { claimsPatch: { pty: 'root' } }))
  one('malformed: exp equals iat (signed)', 'malformed', forge(ring, { claimsPatch: { exp: NOW } }))
  one('malformed: exp before iat (signed)', 'malformed', forge(ring, { claimsPatch: { iat: NOW, exp: NOW - 1 } }))
  {
    let act: Record<string, unknown> | undefined
    for (let i = 0; i < 9; i++) act = act === undefined ? { sub: `a${i}` } : { sub: `a${i}`, act }
    one('malformed: actor chain deeper than the cap (signed)', 'malformed', forge(ring, { claimsPatch: { act } }))
  }
  one('malformed: actor with an extra member (signed)', 'malformed', forge(ring, { claimsPatch: { act: { sub: ISS, email: 'x' } } }))

  // Non-canonical base64url: the same bytes under another spelling. idctx refuses; jose accepts.
  const nc = { joseAccepts: 'non-canonical-base64url' } as const
  for (const alg of ALGS) {
    const t = forge(ring, { key: ring[alg] })
    one(`malformed: ${alg} signature with non-zero unused trailing bits`, 'malformed', withSegment(t, 2, nonCanonical(segments(t)[2])), nc)
  }
  {
    const t = forge(ring)
    one('malformed: signature with "==" padding', 'malformed', withSegment(t, 2, `${segments(t)[2]}==`), nc)
    const s = segments(t)[2]
    one('malformed: signature with an embedded space', 'malformed', withSegment(t, 2, `${s.slice(0, 40)} ${s.slice(40)}`), nc)
    one('malformed: signature with an embedded newline', 'malformed', withSegment(t, 2, `${s.slice(0, 40)}\n${s.slice(40)}`), nc)
    const header = { alg: 'EdDSA', kid: ring.EdDSA.kid, typ: 'idctx+jwt' }
    one('malformed: header with non-zero unused trailing bits (signed)', 'malformed', forge(ring, { h64: nonCanonical(b64(withUnusedBits(header))) }), nc)
    one('malformed: header with "=" padding (signed)', 'malformed', forge(ring, { h64: padded(withUnusedBits(header)) }), nc)
    const claims = baseClaims()
    one('malformed: payload with non-zero unused trailing bits (signed)', 'malformed', forge(ring, { p64: nonCanonical(b64(withUnusedBits(claims))) }), nc)
    one('malformed: payload with "=" padding (signed)', 'malformed', forge(ring, { p64: padded(withUnusedBits(claims)) }), nc)
  }

  // ---- 3. typ, alg, header members ----
  one('wrong_typ: typ JWT', 'wrong_typ', forge(ring, { headerPatch: { typ: 'JWT' } }))
  one('wrong_typ: typ missing', 'wrong_typ', forge(ring, { headerPatch: { typ: undefined } }))
  one('wrong_typ: typ at+jwt', 'wrong_typ', forge(ring, { headerPatch: { typ: 'at+jwt' } }))
  one('wrong_typ: typ is a number', 'wrong_typ', forge(ring, { headerPatch: { typ: 1 } }))
  one('wrong_typ: typ upper-case IDCTX+JWT', 'wrong_typ', forge(ring, { headerPatch: { typ: 'IDCTX+JWT' } }), { joseAccepts: 'typ-spelling' })
  one('wrong_typ: typ application/idctx+jwt', 'wrong_typ', forge(ring, { headerPatch: { typ: 'application/idctx+jwt' } }), { joseAccepts: 'typ-spelling' })

  {
    const [, p] = segments(forge(ring))
    one('alg_not_allowed: alg none, unsigned', 'alg_not_allowed', `${b64({ alg: 'none', kid: ring.EdDSA.kid, typ: 'idctx+jwt' })}.${p}.`)
    one('alg_not_allowed: alg none, no kid, unsigned', 'alg_not_allowed', `${b64({ alg: 'none', typ: 'idctx+jwt' })}.${p}.`)
    one('alg_not_allowed: alg None (case)', 'alg_not_allowed', `${b64({ alg: 'None', kid: ring.EdDSA.kid, typ: 'idctx+jwt' })}.${p}.`)
  }
  const noHs = { options: { algorithms: ['EdDSA', 'ES256', 'RS256'], allowHS256: false } } as const
  one('alg_not_allowed: HS256 signed with the RSA public key PEM, HS256 not allowed', 'alg_not_allowed',
    forge(ring, { key: ring.RS256, headerPatch: { alg: 'HS256' }, signAlg: 'HS256', secret: Buffer.from(ring.rsaPublicPem) }), noHs)
  one('alg_not_allowed: a genuine HS256 token, HS256 not allowed', 'alg_not_allowed', forge(ring, { key: ring.HS256 }), noHs)
  one('alg_not_allowed: ES256 token, only EdDSA allowed', 'alg_not_allowed', forge(ring, { key: ring.ES256 }), { options: { algorithms: ['EdDSA'] } })
  one('alg_not_allowed: RS384', 'alg_not_allowed', forge(ring, { key: ring.RS256, headerPatch: { alg: 'RS384' } }))
  one('alg_not_allowed: PS256', 'alg_not_allowed', forge(ring, { key: ring.RS256, headerPatch: { alg: 'PS256' } }))
  one('alg_not_allowed: eddsa (case)', 'alg_not_allowed', forge(ring, { headerPatch: { alg: 'eddsa' } }))
  one('alg_not_allowed: alg missing', 'alg_not_allowed', forge(ring, { headerPatch: { alg: undefined } }))
  one('alg_not_allowed: alg is an array', 'alg_not_allowed', forge(ring, { headerPatch: { alg: ['EdDSA'] } }))

  {
    const rogueJwk = ring.rogue.verificationKey.export({ format: 'jwk' })
    one('header_not_allowed: jwk (embedded attacker key)', 'header_not_allowed', forge(ring, { key: ring.rogue, headerPatch: { jwk: rogueJwk } }))
    one('header_not_allowed: jwk on a trusted kid', 'header_not_allowed', forge(ring, { headerPatch: { jwk: rogueJwk } }))
  }
  one('header_not_allowed: jku', 'header_not_allowed', forge(ring, { headerPatch: { jku: 'https://attacker.example/jwks.json' } }))
  one('header_not_allowed: x5u', 'header_not_allowed', forge(ring, { headerPatch: { x5u: 'https://attacker.example/cert.pem' } }))
  one('header_not_allowed: x5c', 'header_not_allowed', forge(ring, { headerPatch: { x5c: ['MIIB'] } }))
  one('header_not_allowed: crit', 'header_not_allowed', forge(ring, { headerPatch: { crit: ['exp'] } }))
  one('header_not_allowed: crit + b64 false', 'header_not_allowed', forge(ring, { headerPatch: { crit: ['b64'], b64: false } }))
  one('header_not_allowed: cty', 'header_not_allowed', forge(ring, { headerPatch: { cty: 'JWT' } }))
  one('header_not_allowed: zip', 'header_not_allowed', forge(ring, { headerPatch: { zip: 'DEF' } }))
  one('header_not_allowed: __proto__ member', 'header_not_allowed',
    forge(ring, { h64: b64(`{"alg":"EdDSA","kid":"${ring.EdDSA.kid}","typ":"idctx+jwt","__proto__":{"kid":"x"}}`) }))

  // ---- 4. kid ----
  one('unknown_kid: a kid nobody has', 'unknown_kid', forge(ring, { headerPatch: { kid: 'nope' } }))
  one('unknown_kid: injected path kid', 'unknown_kid', forge(ring, { headerPatch: { kid: '../../etc/passwd' } }))
  one('unknown_kid: injected SQL kid', 'unknown_kid', forge(ring, { headerPatch: { kid: "x' OR '1'='1' --" } }))
  one('unknown_kid: __proto__ kid', 'unknown_kid', forge(ring, { headerPatch: { kid: '__proto__' } }))
  one('unknown_kid: constructor kid', 'unknown_kid', forge(ring, { headerPatch: { kid: 'constructor' } }))
  one('unknown_kid: trusted kid plus a newline', 'unknown_kid', forge(ring, { headerPatch: { kid: `${ring.EdDSA.kid}\n` } }))
  one('unknown_kid: kid missing', 'unknown_kid', forge(ring, { headerPatch: { kid: undefined } }))
  one('unknown_kid: kid is a number', 'unknown_kid', forge(ring, { headerPatch: { kid: 1 } }))
  one('unknown_kid: kid is empty', 'unknown_kid', forge(ring, { headerPatch: { kid: '' } }))
  one('unknown_kid: kid of 257 characters', 'unknown_kid', forge(ring, { headerPatch: { kid: 'k'.repeat(257) } }))
  one('unknown_kid: an untrusted key signs under its own kid', 'unknown_kid', forge(ring, { key: ring.rogue }))
  one('unknown_kid: HS256 signed with the RSA public key PEM under the RS256 kid, HS256 allowed', 'unknown_kid',
    forge(ring, { key: ring.RS256, headerPatch: { alg: 'HS256' }, signAlg: 'HS256', secret: Buffer.from(ring.rsaPublicPem) }))
  one('unknown_kid: HS256 signed with the RSA public key DER under the RS256 kid, HS256 allowed', 'unknown_kid',
    forge(ring, { key: ring.RS256, headerPatch: { alg: 'HS256' }, signAlg: 'HS256', secret: ring.RS256.verificationKey.export({ type: 'spki', format: 'der' }) }))
  one('unknown_kid: ES256 header on the EdDSA kid', 'unknown_kid', forge(ring, { key: ring.ES256, headerPatch: { kid: ring.EdDSA.kid } }))
  one('unknown_kid: EdDSA header on the HS256 kid', 'unknown_kid', forge(ring, { headerPatch: { kid: ring.HS256.kid } }))

  // ---- 5. signature and claim shape ----
  {
    const a = forge(ring)
    const b = forge(ring)
    one('bad_signature: signature of another token', 'bad_signature', withSegment(a, 2, segments(b)[2]))
    one('bad_signature: payload of another token', 'bad_signature', withSegment(a, 1, segments(b)[1]))
    one('bad_signature: claims changed after signing (tid)', 'bad_signature', withSegment(a, 1, b64({ ...JSON.parse(Buffer.from(segments(a)[1], 'base64url').toString()), tid: 'globex' })))
  }
  one('bad_signature: signed by an untrusted key under a trusted kid', 'bad_signature', forge(ring, { key: ring.rogue, headerPatch: { kid: ring.EdDSA.kid } }))
  one('bad_signature: signed by the issuer\'s other EdDSA key', 'bad_signature', forge(ring, { key: ring.EdDSA2, headerPatch: { kid: ring.EdDSA.kid } }))
  one('bad_signature: empty EdDSA signature', 'bad_signature', forge(ring, { sig: '' }))
  one('bad_signature: ES256 signature in DER instead of IEEE P1363', 'bad_signature',
    forge(ring, { key: ring.ES256, sig: (_s, input) => cryptoSign('sha256', Buffer.from(input), ring.ES256.signingKey as KeyObject).toString('base64url') }))
  one('bad_signature: RS256 signature one byte short', 'bad_signature',
    forge(ring, { key: ring.RS256, sig: (s) => Buffer.from(s, 'base64url').subarray(1).toString('base64url') }))
  one('bad_signature: HS256 with the wrong secret', 'bad_signature', forge(ring, { key: ring.HS256, secret: Buffer.alloc(32, 7) }))
  for (const alg of ALGS) {
    one(`bad_signature: ${alg} signature with one bit flipped`, 'bad_signature', forge(ring, {
      key: ring[alg],
      sig: (s) => {
        const bytes = Buffer.from(s, 'base64url')
        bytes[5] = (bytes[5] as number) ^ 0x10
        return bytes.toString('base64url')
      },
    }))
  }
  one('bad_signature: EdDSA signature over the same claims with another header spelling', 'bad_signature', (() => {
    const t = forge(ring)
    const other = b64(`{"kid":"${ring.EdDSA.kid}","alg":"EdDSA","typ":"idctx+jwt"}`)
    return withSegment(t, 0, other)
  })())
  for (const claim of REQUIRED_CLAIMS) {
    one(`missing_claim: ${claim}`, 'missing_claim', forge(ring, { claimsPatch: { [claim]: undefined } }))
  }
  one('missing_claim: empty claim set', 'missing_claim', forge(ring, { claims: {} }))

  // ---- 6. issuer and audience ----
  one('wrong_issuer: billing key, iss orders', 'wrong_issuer', forge(ring, { key: ring.billing }))
  one('wrong_issuer: orders key, iss billing', 'wrong_issuer', forge(ring, { claimsPatch: { iss: OTHER_ISS } }))
  one('wrong_issuer: orders key, iss of an untrusted service', 'wrong_issuer', forge(ring, { claimsPatch: { iss: 'payments' } }))
  one('wrong_audience: another audience', 'wrong_audience', forge(ring, { claimsPatch: { aud: 'other' } }))
  one('wrong_audience: case differs', 'wrong_audience', forge(ring, { claimsPatch: { aud: 'SHOP' } }))
  one('wrong_audience: trailing space', 'wrong_audience', forge(ring, { claimsPatch: { aud: 'shop ' } }))

  // ---- 7. time ----
  {
    // An act chain ~1500 levels deep fits once maxTokenBytes is raised to its 64 KiB maximum; its
    // nesting is measured on the text before anything parses it, so it is malformed, never a
    // RangeError from a recursive schema (which an adapter would retry forever).
    let act: Record<string, unknown> | undefined
    for (let i = 0; i < 1500; i++) act = act === undefined ? { sub: 'a' } : { sub: 'a', act }
    one('malformed: act chain 1500 levels deep (64 KiB cap)', 'malformed', forge(ring, { claimsPatch: { act } }), { options: { maxTokenBytes: 65_536 } })
    let deep: unknown = 1
    for (let i = 0; i < 2000; i++) deep = [deep]
    one('malformed: an unknown claim nested 2000 arrays deep', 'malformed', forge(ring, { claimsPatch: { x: deep } }), { options: { maxTokenBytes: 65_536 }, joseAccepts: 'nesting-depth' })
    let hdeep: unknown = 1
    for (let i = 0; i < 500; i++) hdeep = { a: hdeep }
    one('malformed: a header member nested 500 objects deep', 'malformed', forge(ring, { headerPatch: { x: hdeep } }), { options: { maxTokenBytes: 65_536 } })
  }
  one('expired: an hour ago', 'expired', forge(ring, { claimsPatch: { iat: NOW - 3900, exp: NOW - 3600 } }))
  one('expired: exactly at the tolerance edge (exp = now - 30)', 'expired', forge(ring, { claimsPatch: { iat: NOW - 330, exp: NOW - 30 } }))
  // The edges once more on a whole-second clock: with the shared clock's 0.25 s fraction, `<=` vs
  // `<` (and `>` vs `>=`) could flip without any case noticing. Both sides of each edge.
  {
    const whole = { clock: () => NOW * 1000 }
    one('edge, whole-second clock: exp = now - 30 is expired', 'expired', forge(ring, { claimsPatch: { iat: NOW - 330, exp: NOW - 30 } }), { options: whole })
    one('edge, whole-second clock: exp = now - 29 is valid', 'ok', forge(ring, { claimsPatch: { iat: NOW - 329, exp: NOW - 29 } }), { options: whole })
    one('edge, whole-second clock: nbf = now + 30 is valid', 'ok', forge(ring, { claimsPatch: { nbf: NOW + 30 } }), { options: whole })
    one('edge, whole-second clock: nbf = now + 31 is not yet valid', 'not_yet_valid', forge(ring, { claimsPatch: { nbf: NOW + 31 } }), { options: whole })
    one('edge, whole-second clock: iat = now + 30 is valid', 'ok', forge(ring, { claimsPatch: { iat: NOW + 30, exp: NOW + 330 } }), { options: whole })
    one('edge, whole-second clock: iat = now + 31 is not yet valid', 'not_yet_valid', forge(ring, { claimsPatch: { iat: NOW + 31, exp: NOW + 331 } }), { options: whole })
  }
  add('expired: retry grace asked for but not granted by the verifier', 'expired',
    baseInput(forge(ring, { claimsPatch: { iat: NOW - 400, exp: NOW - 100 } }), { expiryGraceSeconds: 3600 }))
  one('not_yet_valid: nbf beyond tolerance', 'not_yet_valid', forge(ring, { claimsPatch: { nbf: NOW + 31 } }))
  one('not_yet_valid: nbf a day ahead', 'not_yet_valid', forge(ring, { claimsPatch: { nbf: NOW + 86_400, exp: NOW + 600 } }))
  one('not_yet_valid: iat in the future', 'not_yet_valid', forge(ring, { claimsPatch: { iat: NOW + 31, exp: NOW + 331 } }))
  one('not_yet_valid: iat far in the future', 'not_yet_valid', forge(ring, { claimsPatch: { iat: NOW + 86_400, exp: NOW + 86_700 } }))
  one('lifetime_exceeded: 901 s', 'lifetime_exceeded', forge(ring, { claimsPatch: { iat: NOW - 1, exp: NOW + 900 } }))
  one('lifetime_exceeded: a day', 'lifetime_exceeded', forge(ring, { claimsPatch: { iat: NOW, exp: NOW + 86_400 } }))
  one('lifetime_exceeded: 300 s over a 60 s cap', 'lifetime_exceeded', forge(ring), { options: { maxLifetimeSeconds: 60 } })

  // ---- 8. binding ----
  {
    const batch = signBatch(ring)
    const proof0 = decodeProof(batch.proofs[0] as string)
    if (proof0 === undefined) throw new Error('bad fixture')
    const batchInput = (i: number, extra: Partial<VerifyInput>) => baseInput(batch.token, { leaf: batch.leaves[i] as Buffer, proof: batch.proofs[i], ...extra })
    add('binding_mismatch: leaf swapped (proof of record 0, leaf of record 1)', 'binding_mismatch', batchInput(0, { leaf: batch.leaves[1] as Buffer }))
    add('binding_mismatch: proof truncated', 'binding_mismatch', batchInput(0, { proof: encodeProof({ ...proof0, path: proof0.path.slice(0, -1) }) }))
    add('binding_mismatch: proof with an extra hash', 'binding_mismatch', batchInput(0, { proof: encodeProof({ ...proof0, path: [...proof0.path, LEAF] }) }))
    add('binding_mismatch: proof index changed', 'binding_mismatch', batchInput(0, { proof: encodeProof({ ...proof0, index: 1 }) }))
    add('binding_mismatch: proof size changed', 'binding_mismatch', batchInput(0, { proof: encodeProof({ ...proof0, size: 2 }) }))
    add('binding_mismatch: proof index with a leading zero', 'binding_mismatch', batchInput(0, { proof: `0${batch.proofs[0] as string}` }))
    add('binding_mismatch: proof is garbage', 'binding_mismatch', batchInput(0, { proof: 'not a proof' }))
    add('binding_mismatch: batch token without its proof', 'binding_mismatch', batchInput(0, { proof: undefined }))
    add('binding_mismatch: a record that is not in the batch, with a batch proof', 'binding_mismatch', batchInput(0, { leaf: kafkaLeaf(TOPIC, 'order-9', '{"n":9}') }))
  }
  one('binding_mismatch: value changed by one byte', 'binding_mismatch', forge(ring, { claimsPatch: { mh: kafkaLeaf(TOPIC, RECORD.key, '{"total":4,"tenant":"acme"}').toString('base64url') } }))
  add('binding_mismatch: key changed', 'binding_mismatch', baseInput(forge(ring), { leaf: kafkaLeaf(TOPIC, 'order-2', RECORD.value) }))
  add('binding_mismatch: null key instead of empty key', 'binding_mismatch',
    baseInput(forge(ring, { claimsPatch: { mh: kafkaLeaf(TOPIC, '', RECORD.value).toString('base64url') } }), { leaf: kafkaLeaf(TOPIC, null, RECORD.value) }))
  add('binding_mismatch: a proof on a single-message token', 'binding_mismatch', baseInput(forge(ring), { proof: `0.2.${LEAF.toString('base64url')}` }))
  {
    const payments = kafkaLeaf('payments', RECORD.key, RECORD.value)
    const t = forge(ring, { claimsPatch: { dst: 'kafka:payments', mh: payments.toString('base64url') } })
    add('binding_mismatch: dst for another topic (header lifted onto orders)', 'binding_mismatch', baseInput(t))
    const u = forge(ring, { claimsPatch: { mh: payments.toString('base64url') } })
    add('binding_mismatch: no dst, leaf of another topic', 'binding_mismatch', baseInput(u))
    add('binding_mismatch: dst for another topic, leaf claimed for it', 'binding_mismatch', baseInput(t, { leaf: payments }))
  }
  {
    const leaf = bullmqLeaf('invoices', 'invoice', { n: 1, tenant: 'acme' })
    const t = forge(ring, { claimsPatch: { mh: leaf.toString('base64url'), dst: 'bullmq:invoices/invoice' } })
    add('binding_mismatch: BullMQ job data changed', 'binding_mismatch', baseInput(t, { destination: 'bullmq:invoices/invoice', leaf: bullmqLeaf('invoices', 'invoice', { n: 2, tenant: 'acme', __idctx: t }) }))
    add('binding_mismatch: BullMQ job name changed', 'binding_mismatch', baseInput(t, { destination: 'bullmq:invoices/refund', leaf: bullmqLeaf('invoices', 'refund', { n: 1, tenant: 'acme' }) }))
  }
  return cases
}

