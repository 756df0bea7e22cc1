import { BATCH_REQUIRED_CLAIMS, PER_MESSAGE_CLAIMS, type BatchClaims } from '../../batch-context.js'
import { actorDepth, REQUIRED_CLAIMS, type IdctxClaims } from '../../claims.js'
import type { Algorithm } from '../../keys.js'
import { decodeBase64url } from '../base64url.js'
import { verifyBytes } from '../jws.js'
import { ReasonCode } from '../../reason-codes.js'
import { shapeBatchClaims, shapeClaims } from './claim-shape.js'
import { Fail, TYP, wantedTyp, type Accepted, type Entry, type Known, type TokenKind } from './checked.js'
import { nestsDeeperThan, parseJsonObject, strictUtf8 } from './json.js'
import type { FoundKey, KeyLookup } from './key-lookup.js'
import { memberName, type VerifierConfig } from './options.js'

const ALLOWED_HEADER = new Set(['alg', 'kid', 'typ'])
/** A header is a flat object of three strings: nesting past 2 is never legitimate. */
const MAX_HEADER_NESTING = 2

/**
 * Steps 2–6 of the verification order: what depends on the token alone (the cacheable part).
 * `accepted` says which `typ`s the call takes: `message` both profiles of message tokens
 * (`idctx+jwt`, `idctx-batch+jwt`), `grant` only grants. The result is a plain value when the
 * kid's key was at hand (static keys, a key set, a fetched JWKS), a promise only when a key source
 * had to be asked.
 */
export type TokenCheck = (token: string, known: Known, accepted: Accepted) => Entry | Fail | Promise<Entry | Fail>

/** The token kind a header `typ` names when the call accepts it, else undefined. */
function kindOf(typ: unknown, accepted: Accepted): TokenKind | undefined {
  if (accepted === 'grant') return typ === TYP.grant ? 'grant' : undefined
  if (typ === TYP.message) return 'message'
  if (typ === TYP.batch) return 'batch'
  return undefined
}

/** A header segment's parse: the JSON object, or undefined when it is not one. */
type HeaderParse = Record<string, unknown> | undefined
/** Distinct header segments remembered (an issuer's tokens share a handful: one per kid, alg, typ). */
const HEADER_CACHE_SIZE = 256
/** Longest header segment remembered; a legitimate one is under 150 characters. */
const HEADER_CACHE_MAX_LENGTH = 512

/**
 * Builds steps 2–6: compact syntax, `typ`, `alg` and header members, the kid of a trusted issuer
 * (with one refresh on a miss), the signature, the claims' shape (after the signature), issuer
 * and audience.
 */
export function createTokenCheck(
  o: VerifierConfig,
  algorithms: ReadonlySet<Algorithm>,
  keys: KeyLookup,
  maxPayloadNesting: number,
): TokenCheck {
  // Header parses are pure functions of the segment: remembering them saves a base64url decode and
  // a JSON parse per uncached token. Parsed objects are frozen, so no caller can alter a shared one.
  const headers = new Map<string, HeaderParse>()
  const headerOf = (h64: string): HeaderParse => {
    let parsed = headers.get(h64)
    if (parsed !== undefined || headers.has(h64)) return parsed
    parsed = parseJsonObject(h64, MAX_HEADER_NESTING)
    if (parsed !== undefined) Object.freeze(parsed)
    if (h64.length <= HEADER_CACHE_MAX_LENGTH) {
      if (headers.size >= HEADER_CACHE_SIZE) headers.clear()
      headers.set(h64, parsed)
    }
    return parsed
  }

  /** Steps 5–6 once the key is known: signature, claims' shape, issuer, audience. */
  const withKey = (found: FoundKey | undefined, h64: string, p64: string, s64: string, kind: TokenKind, alg: string, kid: string, known: Known): Entry | Fail => {
    if (found === undefined) return new Fail(ReasonCode.UnknownKid, 'no trusted issuer has this kid', 'kid')
    known.kid = kid
    if (found.key.alg !== alg) return new Fail(ReasonCode.UnknownKid, 'the key for this kid is not for this alg', 'alg')
    const signature = decodeBase64url(s64)
    if (signature === undefined) return new Fail(ReasonCode.Malformed, 'signature is not canonical base64url')
    const payloadBytes = decodeBase64url(p64)
    if (payloadBytes === undefined) return new Fail(ReasonCode.Malformed, 'payload is not canonical base64url')
    if (!verifyBytes(found.key.alg, found.key.verificationKey, Buffer.from(`${h64}.${p64}`, 'latin1'), signature)) {
      return new Fail(ReasonCode.BadSignature, 'signature does not verify')
    }
    let payload: unknown
    try {
      const text = strictUtf8(payloadBytes)
      if (text === undefined) return new Fail(ReasonCode.Malformed, 'payload is not UTF-8 JSON')
      if (nestsDeeperThan(text, maxPayloadNesting)) return new Fail(ReasonCode.Malformed, 'payload nests too deep', 'act')
      payload = JSON.parse(text)
    } catch {
      return new Fail(ReasonCode.Malformed, 'payload is not JSON')
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      return new Fail(ReasonCode.Malformed, 'payload is not a JSON object')
    }
    const parsed = kind === 'batch' ? batchClaims(payload as Record<string, unknown>) : messageClaims(payload as Record<string, unknown>)
    if (parsed instanceof Fail) return parsed
    const claims = parsed
    if (claims.exp <= claims.iat) return new Fail(ReasonCode.Malformed, 'exp is not after iat', 'exp')
    if (kind !== 'batch' && actorDepth((claims as IdctxClaims).act) > o.maxActorDepth) return new Fail(ReasonCode.Malformed, 'actor chain too deep', 'act')
    known.claims = claims
    if (claims.iss !== found.issuer) return new Fail(ReasonCode.WrongIssuer, 'the key does not belong to the token issuer', 'iss')
    if (claims.aud !== o.audience) return new Fail(ReasonCode.WrongAudience, 'token audience does not match', 'aud')
    const root = decodeBase64url(claims.mh)
    if (root === undefined) return new Fail(ReasonCode.Malformed, 'claim mh is not canonical base64url', 'mh')
    const base = {
      header: { alg: alg as Algorithm, kid },
      key: found.key,
      source: found.source,
      tokenSha256: known.tokenSha256 ?? '',
      root,
      nodes: new Map(),
      context: undefined,
    }
    return kind === 'batch' ? { ...base, kind, claims: claims as BatchClaims } : { ...base, kind, claims: claims as IdctxClaims }
  }

  /** Steps 2–6: everything that depends on the token alone, cached by token string. */
  return (token, known, accepted) => {
    const parts = token.split('.')
    if (parts.length !== 3) return new Fail(ReasonCode.Malformed, 'token is not a compact JWS')
    const [h64, p64, s64] = parts as [string, string, string]
    const header = headerOf(h64)
    if (header === undefined) return new Fail(ReasonCode.Malformed, 'token header is not a base64url JSON object')
    const kind = kindOf(header.typ, accepted)
    if (kind === undefined) return new Fail(ReasonCode.WrongTyp, `token typ is not ${wantedTyp(accepted)}`, 'typ')
    const alg = header.alg
    if (typeof alg !== 'string' || !algorithms.has(alg as Algorithm)) {
      return new Fail(ReasonCode.AlgNotAllowed, 'token alg is not allowed', 'alg')
    }
    for (const name of Object.keys(header)) {
      if (!ALLOWED_HEADER.has(name)) return new Fail(ReasonCode.HeaderNotAllowed, 'token header has a member other than alg, kid, typ', memberName(name))
    }
    const kid = header.kid
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256) {
      return new Fail(ReasonCode.UnknownKid, 'token kid is absent or invalid', 'kid')
    }
    // The payload is read before its signature only to pick between issuers sharing a kid, and to
    // tell a key source when the token was issued; nothing else trusts it.
    let unverified: Record<string, unknown> | null | undefined
    const payloadHint = () => (unverified ??= parseJsonObject(p64, maxPayloadNesting) ?? null)
    const found = keys.findKey(kid, () => payloadHint()?.iss ?? null)
    if (found !== undefined) return withKey(found, h64, p64, s64, kind, alg, kid, known)
    return keys.lookupKey(kid, payloadHint).then((k) => withKey(k, h64, p64, s64, kind, alg, kid, known))
  }
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k)

/** A single-profile token's (or a grant's) claims: every required claim, then the schema. */
function messageClaims(payload: Record<string, unknown>): IdctxClaims | Fail {
  for (const c of REQUIRED_CLAIMS) {
    if (!hasOwn(payload, c)) return new Fail(ReasonCode.MissingClaim, `claim ${c} is missing`, c)
  }
  const parsed = shapeClaims(payload)
  if (!parsed.ok) return new Fail(ReasonCode.Malformed, `claim ${parsed.claim} has the wrong shape`, parsed.claim)
  return parsed.value
}

/**
 * A batch-profile token's claims: every required claim, no per-user claim (those travel in each
 * message's context record, and a token carrying one is of neither profile), then the schema.
 */
function batchClaims(payload: Record<string, unknown>): BatchClaims | Fail {
  for (const c of BATCH_REQUIRED_CLAIMS) {
    if (!hasOwn(payload, c)) return new Fail(ReasonCode.MissingClaim, `claim ${c} is missing`, c)
  }
  for (const c of PER_MESSAGE_CLAIMS) {
    if (hasOwn(payload, c)) return new Fail(ReasonCode.Malformed, `claim ${c} belongs in the context record, not in a batch-profile token`, c)
  }
  const parsed = shapeBatchClaims(payload)
  if (!parsed.ok) return new Fail(ReasonCode.Malformed, `claim ${parsed.claim} has the wrong shape`, parsed.claim)
  return parsed.value
}
