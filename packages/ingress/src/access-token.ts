import { ConfigError, KeyError, parseOptions } from '@idctx/core'
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose'
import { z } from 'zod'
import type { IngressReason } from './refusal.js'

/**
 * Signature algorithms an access token may use: asymmetric only, never `none` or HMAC (`HS256`
 * cannot be listed: a symmetric key would let anyone who holds it mint tokens).
 *
 * @example
 * ```ts
 * const algorithms: AccessTokenAlgorithm[] = ['RS256', 'PS256']
 * const accessTokens = createAccessTokenVerifier({ issuer, jwksUri, audience: 'shop-api', algorithms })
 * ```
 */
export type AccessTokenAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'Ed25519'

const ALGORITHMS: readonly AccessTokenAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']

/**
 * Options of {@link createAccessTokenVerifier}. Exactly one of `jwksUri` and `keys`, and at least
 * one of `audience` and `clientId`, are required (a `TypeError` otherwise); an unknown option or
 * an out-of-range value is a `ConfigError` (`ERR_IDCTX_CONFIG`).
 *
 * @example
 * ```ts
 * // Amazon Cognito: its access tokens carry no `aud`, so `client_id` is checked instead.
 * const options: AccessTokenVerifierOptions = {
 *   issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz',
 *   jwksUri: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz/.well-known/jwks.json',
 *   clientId: '3n4b5urk1ft4fl3mg5e62d9ado',
 *   algorithms: ['RS256'],
 *   clockToleranceSeconds: 10,
 *   jwks: { timeoutMs: 2000 },
 * }
 * const accessTokens = createAccessTokenVerifier(options)
 * ```
 */
export interface AccessTokenVerifierOptions {
  /**
   * The provider's issuer (`iss`), compared exactly — or the few issuers of one application
   * (Entra ID: one per directory, `https://login.microsoftonline.com/<tid>/v2.0`).
   */
  issuer: string | readonly string[]
  /** The provider's JWKS URL (`jwks_uri` of its discovery document), without `user:password@`. Or give `keys`. */
  jwksUri?: string | URL
  /** A jose key resolver instead of `jwksUri` (a `createLocalJWKSet`, or a remote set you configured). */
  keys?: JWTVerifyGetKey
  /** The audience (`aud`) this API is known by; the token's `aud` must contain one of them. */
  audience?: string | readonly string[]
  /**
   * Accepted `client_id` values, for providers whose access tokens carry no `aud` (Amazon
   * Cognito). At least one of `audience` and `clientId` is required.
   */
  clientId?: string | readonly string[]
  /** Accepted algorithms (default RS256, ES256, EdDSA); asymmetric only. */
  algorithms?: readonly AccessTokenAlgorithm[]
  /**
   * `'at+jwt'`: the header `typ` must be `at+jwt` or `application/at+jwt` (RFC 9068 §4), for
   * providers that set it (Okta custom servers with the RFC 9068 profile, Auth0 with the RFC 9068
   * token dialect). Default: not checked — Keycloak, Entra ID and Cognito send `JWT` or none.
   */
  typ?: 'at+jwt'
  /**
   * Claims that must be present besides `iss` and `exp`, which are always required (default
   * `['iat']`): a list here adds to those two and never removes them.
   */
  requiredClaims?: readonly string[]
  /** Seconds of clock skew tolerated on `exp`, `nbf` and `iat`, at most 60 (default 30). */
  clockToleranceSeconds?: number
  /**
   * Largest token accepted, in bytes (UTF-8), checked before decoding: 1024–65536, default 16384
   * (Entra tokens with many groups are large). A larger token is refused as `oversize`.
   */
  maxTokenBytes?: number
  /**
   * JWKS fetch settings for `jwksUri`, in milliseconds (jose's defaults otherwise: 5 s timeout,
   * 30 s cooldown between refetches on an unknown `kid`, 10 min cache). Ignored with `keys`.
   */
  jwks?: { timeoutMs?: number; cooldownMs?: number; cacheMaxAgeMs?: number }
  /** The current time in epoch milliseconds (default `Date.now`), for tests. */
  clock?: () => number
}

/**
 * The verdict of {@link AccessTokenVerifier.verify}: the verified claims and protected header, or
 * the reason the token is refused.
 *
 * @example
 * ```ts
 * const r: AccessTokenResult = await accessTokens.verify(token)
 * if (r.ok) console.log(r.claims.sub, r.header.kid)
 * else console.log(r.reason) // 'expired', 'wrong_audience', 'unknown_kid', …
 * ```
 */
export type AccessTokenResult =
  | { readonly ok: true; readonly claims: JWTPayload; readonly header: ProtectedHeaderParameters }
  | { readonly ok: false; readonly reason: IngressReason }

/**
 * Verifies one provider's access tokens (RFC 9068 §4); made by {@link createAccessTokenVerifier}
 * and given to `createIngress` as `accessTokens`.
 *
 * @example
 * ```ts
 * const accessTokens: AccessTokenVerifier = createAccessTokenVerifier({ issuer, jwksUri, audience: 'shop-api' })
 * try {
 *   const r = await accessTokens.verify(token)
 *   if (!r.ok) console.log(r.reason) // answer 401
 * } catch (e) {
 *   if (!(e instanceof KeyError)) throw e // ERR_IDCTX_KEY: the IdP's keys are unreachable, answer 503
 * }
 * ```
 */
export interface AccessTokenVerifier {
  /** The accepted issuers (`iss`), as configured. */
  readonly issuers: readonly string[]
  /**
   * Verifies a compact JWS access token. Returns a verdict for every token a client can send;
   * throws a `KeyError` (from `@idctx/core`) only when the provider's keys could not be fetched
   * (answer 503 and let the client retry: the token is not at fault).
   */
  verify(token: string): Promise<AccessTokenResult>
}

const list = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)])
const schema = z.strictObject({
  issuer: list,
  jwksUri: z.union([z.string().url(), z.instanceof(URL)]).optional(),
  keys: z.custom<JWTVerifyGetKey>((v) => typeof v === 'function', 'a jose key resolver').optional(),
  audience: list.optional(),
  clientId: list.optional(),
  algorithms: z.array(z.enum(ALGORITHMS as [AccessTokenAlgorithm, ...AccessTokenAlgorithm[]])).min(1).optional(),
  typ: z.literal('at+jwt').optional(),
  requiredClaims: z.array(z.string().min(1)).optional(),
  clockToleranceSeconds: z.number().int().min(0).max(60).default(30),
  maxTokenBytes: z.number().int().min(1024).max(65_536).default(16_384),
  jwks: z
    .strictObject({
      timeoutMs: z.number().int().positive().optional(),
      cooldownMs: z.number().int().nonnegative().optional(),
      cacheMaxAgeMs: z.number().int().positive().optional(),
    })
    .optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function', 'a function returning epoch milliseconds').optional(),
})

const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
// Members that name keys or processing rules of the sender's choosing: the keys come from the
// provider's JWKS only.
const FORBIDDEN_HEADER = new Set(['jku', 'jwk', 'x5u', 'x5c', 'crit', 'b64', 'zip', 'enc'])
const INFRA = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC'])

const toList = (v: string | readonly string[]): string[] => (typeof v === 'string' ? [v] : [...v])

function header(token: string): Record<string, unknown> | undefined {
  try {
    const h: unknown = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'))
    return typeof h === 'object' && h !== null && !Array.isArray(h) ? (h as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/**
 * What jose leaves unchecked: times must be finite (JSON's `1e999` is Infinity: an `exp` that never
 * comes), and an `iat` in the future (beyond the tolerance) is `not_yet_valid`, as in the idctx
 * verifier — jose checks `iat` only with `maxTokenAge`.
 */
function timeReason(payload: JWTPayload, nowMs: number, toleranceSeconds: number): IngressReason | undefined {
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    const v = payload[claim]
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v))) return 'malformed'
  }
  if (typeof payload.iat === 'number' && payload.iat > nowMs / 1000 + toleranceSeconds) return 'not_yet_valid'
  return undefined
}

/** The reason for a jose error; undefined when the error is not the token's fault. */
function reasonOf(error: unknown): IngressReason | undefined {
  const { code, claim, reason } = (error ?? {}) as { code?: unknown; claim?: unknown; reason?: unknown }
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired'
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature'
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown_kid'
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'alg_not_allowed'
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed'
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (reason === 'missing') return 'missing_claim'
      if (claim === 'typ') return 'wrong_typ'
      if (claim === 'iss') return 'wrong_issuer'
      if (claim === 'aud') return 'wrong_audience'
      if (claim === 'nbf' || claim === 'iat') return reason === 'check_failed' ? 'not_yet_valid' : 'malformed'
      return 'malformed'
    default:
      return undefined
  }
}

/**
 * Creates the verifier of one identity provider's access tokens, with jose: the size cap and the
 * compact syntax first, then the header (`alg` on the allow-list — never `none` or HMAC — and no
 * key-naming members such as `jku`, `jwk`, `x5u`, `x5c`), the key from the provider's JWKS
 * (`createRemoteJWKSet`: cached, refetched on an unknown `kid` with a cooldown), the signature,
 * then the pinned issuer, the audience (or `client_id`), `typ` `at+jwt` when configured, and
 * `exp`/`nbf`/`iat` with a bounded clock tolerance (RFC 9068 §4). Throws a `ConfigError`
 * (`ERR_IDCTX_CONFIG`) for an unknown option or an out-of-range value, and a `TypeError` when not
 * exactly one of `jwksUri` and `keys` is given, or neither `audience` nor `clientId`.
 *
 * @example
 * ```ts
 * const accessTokens = createAccessTokenVerifier({
 *   issuer: 'https://sso.example.com/realms/shop',
 *   jwksUri: 'https://sso.example.com/realms/shop/protocol/openid-connect/certs',
 *   audience: 'shop-api',
 *   algorithms: ['RS256'],
 * })
 * const r = await accessTokens.verify(token)
 * if (!r.ok) console.log(r.reason) // 'expired', 'wrong_audience', …
 * ```
 */
export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const o = parseOptions('access token verifier options', schema, options)
  if ((o.jwksUri === undefined) === (o.keys === undefined)) {
    throw new TypeError('createAccessTokenVerifier: give exactly one of jwksUri and keys')
  }
  if (o.audience === undefined && o.clientId === undefined) {
    throw new TypeError('createAccessTokenVerifier: give audience (or clientId for providers without aud)')
  }
  const jwksUrl = o.jwksUri === undefined ? undefined : new URL(o.jwksUri)
  // fetch refuses a URL with userinfo with a TypeError that repeats it, password included, which
  // would become the cause of every KeyError: refused here, without the value.
  if (jwksUrl !== undefined && (jwksUrl.username !== '' || jwksUrl.password !== '')) {
    throw new ConfigError('access token verifier options', [{ path: 'jwksUri', message: 'must not carry credentials (user:password@)' }])
  }
  const keys: JWTVerifyGetKey =
    o.keys ??
    createRemoteJWKSet(jwksUrl as URL, {
      ...(o.jwks?.timeoutMs !== undefined ? { timeoutDuration: o.jwks.timeoutMs } : {}),
      ...(o.jwks?.cooldownMs !== undefined ? { cooldownDuration: o.jwks.cooldownMs } : {}),
      ...(o.jwks?.cacheMaxAgeMs !== undefined ? { cacheMaxAge: o.jwks.cacheMaxAgeMs } : {}),
    })
  const issuers = toList(o.issuer)
  const algorithms = new Set<string>(o.algorithms ?? ['RS256', 'ES256', 'EdDSA'])
  const clientIds = o.clientId === undefined ? undefined : new Set(toList(o.clientId))
  const clock = o.clock ?? Date.now
  // The URL as a KeyError may show it: no credentials, query or fragment.
  const shownUrl = jwksUrl === undefined ? undefined : `${jwksUrl.origin}${jwksUrl.pathname}`
  const verifyOptions = {
    issuer: issuers,
    algorithms: [...algorithms],
    clockTolerance: o.clockToleranceSeconds,
    // iss and exp are never optional: a token without exp would never expire.
    requiredClaims: [...new Set(['iss', 'exp', ...(o.requiredClaims ?? ['iat'])])],
    ...(o.audience !== undefined ? { audience: toList(o.audience) } : {}),
    ...(o.typ !== undefined ? { typ: o.typ } : {}),
  }

  const verify = async (token: string): Promise<AccessTokenResult> => {
    if (typeof token !== 'string' || token.length === 0) return { ok: false, reason: 'missing' }
    if (Buffer.byteLength(token, 'utf8') > o.maxTokenBytes) return { ok: false, reason: 'oversize' }
    if (!COMPACT.test(token)) return { ok: false, reason: 'malformed' }
    const h = header(token)
    if (h === undefined) return { ok: false, reason: 'malformed' }
    if (typeof h.alg !== 'string' || !algorithms.has(h.alg)) return { ok: false, reason: 'alg_not_allowed' }
    if (Object.keys(h).some((k) => FORBIDDEN_HEADER.has(k))) return { ok: false, reason: 'header_not_allowed' }
    try {
      const at = clock()
      const r = await jwtVerify(token, keys, { ...verifyOptions, currentDate: new Date(at) })
      const time = timeReason(r.payload, at, o.clockToleranceSeconds)
      if (time !== undefined) return { ok: false, reason: time }
      // A sender-constrained token (RFC 9449 DPoP `cnf.jkt`, RFC 8705 mTLS `cnf.x5t#S256`) is
      // bound to a key its client must prove; as a plain bearer token it would be a stolen token
      // that works: not bound to this request.
      if (r.payload.cnf !== undefined) return { ok: false, reason: 'binding_mismatch' }
      if (clientIds !== undefined) {
        const cid = r.payload.client_id
        if (typeof cid !== 'string') return { ok: false, reason: 'missing_claim' }
        if (!clientIds.has(cid)) return { ok: false, reason: 'wrong_audience' }
      }
      return { ok: true, claims: r.payload, header: r.protectedHeader }
    } catch (e) {
      const code = (e as { code?: unknown } | undefined)?.code
      const reason = typeof code === 'string' && !INFRA.has(code) ? reasonOf(e) : undefined
      if (reason !== undefined) return { ok: false, reason }
      throw new KeyError('the identity provider keys could not be fetched', {
        cause: e,
        url: shownUrl,
        networkCode: typeof code === 'string' ? code : (e as { cause?: { code?: string } } | undefined)?.cause?.code,
      })
    }
  }
  return { issuers, verify }
}
