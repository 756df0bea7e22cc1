import { ReasonCode } from '@idctx/core'

/**
 * Why an HTTP request was refused at the edge or at a service hop. The token and hop reasons are
 * the stable idctx reason codes (docs/reason-codes.md; every one of them is here); the edge adds three of its own for what a
 * claim mapping can find: `no_subject`, `no_tenant`, `ambiguous_tenant`; and `invalid_request`
 * for a request that is malformed as HTTP (two `Authorization` headers, an invalid transaction id).
 *
 * @example
 * ```ts
 * if (outcome.ok === false && outcome.refusal.reason === 'ambiguous_tenant') metrics.ambiguous.add(1)
 * ```
 */
export const IngressReason = {
  // Every idctx reason code, from core (one list: a code core adds is an ingress reason too, and
  // DESCRIPTIONS below must then describe it, or this package does not compile).
  ...ReasonCode,
  InvalidRequest: 'invalid_request',
  NoSubject: 'no_subject',
  NoTenant: 'no_tenant',
  AmbiguousTenant: 'ambiguous_tenant',
} as const

/**
 * One of the {@link IngressReason} codes.
 *
 * @example
 * ```ts
 * const outcome = await ingress.authenticate(req)
 * if (!outcome.ok) {
 *   const reason: IngressReason = outcome.refusal.reason // 'expired', 'no_tenant', …
 *   refusals.add(1, { reason })
 * }
 * ```
 */
export type IngressReason = (typeof IngressReason)[keyof typeof IngressReason]

/**
 * The RFC 6750 §3.1 error code a refusal carries in `WWW-Authenticate` (none for a request
 * without credentials): `invalid_request` with 400, `invalid_token` with 401,
 * `insufficient_scope` with 403.
 *
 * @example
 * ```ts
 * const error: BearerErrorCode | 'unauthorized' = refusal('wrong_audience').body.error // 'invalid_token'
 * ```
 */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope'

/**
 * A refused request, ready to answer: status, headers (`WWW-Authenticate`) and a JSON body
 * `{ error, reason }`. Nothing in it comes from the token or the request: the reason and the
 * texts are fixed strings, so a refusal can be logged and returned as it is.
 *
 * @example
 * ```ts
 * res.writeHead(refusal.status, { ...refusal.headers, 'content-type': 'application/json' }).end(JSON.stringify(refusal.body))
 * ```
 */
export interface Refusal {
  /** 400, 401 or 403. */
  readonly status: 400 | 401 | 403
  readonly reason: IngressReason
  readonly headers: Readonly<Record<string, string>>
  readonly body: { readonly error: BearerErrorCode | 'unauthorized'; readonly reason: IngressReason }
}

const FORBIDDEN: ReadonlySet<IngressReason> = new Set<IngressReason>([
  'no_subject',
  'no_tenant',
  'ambiguous_tenant',
  'tenant_mismatch',
  'actor_not_allowed',
  'insufficient_scope',
])

const DESCRIPTIONS: Readonly<Record<IngressReason, string>> = {
  missing: 'no credentials',
  duplicate: 'more than one token',
  invalid_request: 'malformed request',
  oversize: 'token too large',
  malformed: 'malformed token',
  wrong_typ: 'wrong token type',
  alg_not_allowed: 'algorithm not allowed',
  header_not_allowed: 'header member not allowed',
  unknown_kid: 'unknown signing key',
  bad_signature: 'invalid signature',
  missing_claim: 'required claim missing',
  wrong_issuer: 'untrusted issuer',
  wrong_audience: 'wrong audience',
  expired: 'token expired',
  not_yet_valid: 'token not yet valid',
  lifetime_exceeded: 'token lifetime too long',
  binding_mismatch: 'token not bound to this request',
  no_subject: 'no pseudonymous subject',
  no_tenant: 'token maps to no tenant',
  ambiguous_tenant: 'token maps to more than one tenant',
  tenant_mismatch: 'token is for another tenant',
  actor_not_allowed: 'caller not allowed here',
  insufficient_scope: 'insufficient scope',
  revoked: 'token revoked',
  replayed: 'token already used',
}

/** A realm value as RFC 7235 quoted-string: configuration, never request data; quotes and backslashes escaped. */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`
}

/**
 * The refusal of a request for `reason`, with an RFC 6750 §3 `WWW-Authenticate` challenge of
 * `scheme` (`Bearer` at the edge, `Idctx` on a service hop): `400 invalid_request`,
 * `401 invalid_token` (no error code for a request that carried no credentials), or
 * `403 insufficient_scope` for a genuine token that may not do this (no tenant, two tenants,
 * another tenant, missing scopes or roles, a caller not allowed). The description is the fixed
 * text of the reason: no token, claim or request value ever enters a challenge.
 *
 * @example
 * ```ts
 * refusal('expired', { realm: 'shop' }).headers['www-authenticate']
 * // 'Bearer realm="shop", error="invalid_token", error_description="token expired"'
 * ```
 */
export function refusal(reason: IngressReason, options: { readonly realm?: string | undefined; readonly scheme?: string | undefined } = {}): Refusal {
  const scheme = options.scheme ?? 'Bearer'
  const params: string[] = []
  if (options.realm !== undefined) params.push(`realm=${quoted(options.realm)}`)
  let status: Refusal['status']
  let error: BearerErrorCode | undefined
  if (reason === 'missing') status = 401
  else if (reason === 'invalid_request') {
    status = 400
    error = 'invalid_request'
  } else if (FORBIDDEN.has(reason)) {
    status = 403
    error = 'insufficient_scope'
  } else {
    status = 401
    error = 'invalid_token'
  }
  if (error !== undefined) params.push(`error="${error}"`, `error_description="${DESCRIPTIONS[reason]}"`)
  const challenge = params.length === 0 ? scheme : `${scheme} ${params.join(', ')}`
  return Object.freeze({
    status,
    reason,
    headers: Object.freeze({ 'www-authenticate': challenge, 'cache-control': 'no-store' }),
    body: Object.freeze({ error: error ?? 'unauthorized', reason }),
  })
}
