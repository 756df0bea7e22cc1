import { createHmac, randomUUID, type KeyObject } from 'node:crypto'
import {
  ConfigError,
  defaultContextStore,
  isContextStore,
  meetsRequirements,
  unknownOptions,
  type ContextStore,
  type IdentityContext,
  type OptionIssue,
  type Requirements,
} from '@idctx/core'
import type { JWTPayload } from 'jose'
import type { AccessTokenVerifier } from './access-token.js'
import { isRefusal, type ClaimMapper } from './claim-mapper.js'
import { headerValues, type GateOutcome, type HttpGate, type HttpRequestLike } from './gate.js'
import { refusal, type IngressReason } from './refusal.js'

/**
 * Options of {@link createIngress}; `accessTokens` and `mapper` are required. An invalid or
 * unknown option is a `ConfigError` (`ERR_IDCTX_CONFIG`) listing every one.
 *
 * @example
 * ```ts
 * const options: IngressOptions = {
 *   accessTokens: createAccessTokenVerifier({ issuer, jwksUri, audience: 'shop-api' }),
 *   mapper: keycloakClaims({ clients: ['shop-api'] }),
 *   subject: { hmacKey: createSecretKey(Buffer.from(process.env.SUBJECT_KEY!, 'base64')) }, // ≥ 32 bytes
 *   txnHeader: 'x-request-id',
 *   tenantOf: (req) => /^\/t\/([^/]+)\//.exec(req.url ?? '')?.[1], // '/t/acme/orders' → 'acme'
 *   requirements: { scopes: ['orders:read'] },
 *   realm: 'shop',
 * }
 * const ingress = createIngress(options)
 * ```
 */
export interface IngressOptions {
  /** Verifies the provider's access tokens (`createAccessTokenVerifier`). */
  accessTokens: AccessTokenVerifier
  /** Reads user, tenants, roles and scopes from the verified claims (`keycloakClaims()`, …). */
  mapper: ClaimMapper<any>
  /**
   * How the context's `sub` is made from the provider's user id: `'provider'` (default) keeps the
   * provider's opaque id, and refuses one that looks like an email address (`no_subject`);
   * `{ hmacKey }` replaces it by base64url HMAC-SHA256(key, issuer ‖ 0x00 ‖ id), a pseudonym
   * that is stable per user and reveals nothing without the key: a secret `KeyObject`, or at
   * least 32 bytes.
   */
  subject?: 'provider' | { readonly hmacKey: KeyObject | Uint8Array }
  /**
   * The header a caller may set the transaction id with (e.g. `x-request-id`); a value must be
   * 8–128 characters of `A–Z a–z 0–9 . _ ~ : -`, or the request is refused (`invalid_request`).
   * Without this option, or without the header, every request gets a new UUID.
   */
  txnHeader?: string
  /**
   * The tenant the request is for, derived from the request itself (a path segment, a host name):
   * when it returns a tenant, the token's tenant must be that one (`tenant_mismatch`).
   */
  tenantOf?: (request: HttpRequestLike) => string | undefined
  /** Scopes and roles every request must carry (`insufficient_scope`). */
  requirements?: Requirements
  /** The realm in `WWW-Authenticate` challenges. */
  realm?: string
  /** The store requests run in (default the process-wide one). */
  store?: ContextStore
}

/**
 * The gate of the edge: an access token in, an idctx identity context out. Made by
 * {@link createIngress}; give it to `nodeHttpHandler`, `expressMiddleware` or `fastifyHook`, or
 * call `authenticate` yourself.
 *
 * @example
 * ```ts
 * const ingress: Ingress = createIngress({ accessTokens, mapper: keycloakClaims() })
 * app.use(expressMiddleware(ingress))
 * // or, in a router of your own:
 * const outcome = await ingress.authenticate(req)
 * if (!outcome.ok) console.log(outcome.refusal.status, outcome.refusal.reason) // 401 'expired'
 * ```
 */
export interface Ingress extends HttpGate {
  /** Always undefined: the edge reads no body. */
  readonly maxBodyBytes: undefined
  /**
   * Same as `check`: the identity of a request, or why it is refused. Throws a `KeyError`
   * (`ERR_IDCTX_KEY`) only when the provider's keys could not be fetched: answer 503.
   */
  authenticate(request: HttpRequestLike): Promise<GateOutcome>
}

const TXN = /^[A-Za-z0-9._~:-]{8,128}$/
const EMAIL_LIKE = /@/
// Control (C0, DEL, C1), format (bidi overrides, zero-width), unpaired surrogate, line and
// paragraph separator characters: none belongs in an id that is logged, compared and signed.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u
const EDGE_SPACE = /^[\s\p{Z}]|[\s\p{Z}]$/u
// RFC 6749 §3.3 scope-token: visible ASCII except `"` and `\`.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/** An id (subject, tenant, role) as the claim schema takes it: 1–256 characters, nothing invisible, no space at either end. */
function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 256 && !INVISIBLE.test(v) && !EDGE_SPACE.test(v)
}
const MAX_ROLES = 64
const MAX_SCOPE = 2048
const KNOWN = ['accessTokens', 'mapper', 'subject', 'txnHeader', 'tenantOf', 'requirements', 'realm', 'store']

function scopeString(scopes: readonly string[]): string | undefined {
  let out = ''
  for (const s of new Set(scopes)) {
    if (typeof s !== 'string' || !SCOPE_TOKEN.test(s) || out.length + s.length + 1 > MAX_SCOPE) continue
    out = out === '' ? s : `${out} ${s}`
  }
  return out === '' ? undefined : out
}

function roleList(roles: readonly string[]): string[] | undefined {
  const out = [...new Set(roles.filter(isId))].slice(0, MAX_ROLES)
  return out.length === 0 ? undefined : out
}

function validate(options: IngressOptions): void {
  if (typeof options !== 'object' || options === null) throw new ConfigError('ingress options', [{ path: '', message: 'an options object ({ accessTokens, mapper, … })' }])
  const o = options as Partial<IngressOptions>
  const issues: OptionIssue[] = unknownOptions(o, KNOWN)
  if (typeof o.accessTokens?.verify !== 'function') issues.push({ path: 'accessTokens', message: 'an AccessTokenVerifier (createAccessTokenVerifier)' })
  if (typeof o.mapper?.map !== 'function') issues.push({ path: 'mapper', message: 'a ClaimMapper (keycloakClaims(), defineClaimMapper(), …)' })
  const subject = o.subject as unknown
  const key = (subject as { hmacKey?: unknown } | undefined)?.hmacKey
  if (subject !== undefined && subject !== 'provider' && !(key instanceof Uint8Array ? key.byteLength >= 32 : isKeyObject(key))) {
    issues.push({ path: 'subject', message: "'provider' or { hmacKey } with a KeyObject or at least 32 bytes" })
  }
  if (o.txnHeader !== undefined && (typeof o.txnHeader !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(o.txnHeader))) issues.push({ path: 'txnHeader', message: 'a header name' })
  if (o.tenantOf !== undefined && typeof o.tenantOf !== 'function') issues.push({ path: 'tenantOf', message: 'a function of the request' })
  if (o.requirements !== undefined && (typeof o.requirements !== 'object' || o.requirements === null)) issues.push({ path: 'requirements', message: 'an object ({ scopes?, roles? })' })
  if (o.realm !== undefined && typeof o.realm !== 'string') issues.push({ path: 'realm', message: 'a string' })
  if (o.store !== undefined && !isContextStore(o.store)) issues.push({ path: 'store', message: 'a ContextStore (createContextStore)' })
  if (issues.length > 0) throw new ConfigError('ingress options', issues)
}

function isKeyObject(v: unknown): v is KeyObject {
  return typeof v === 'object' && v !== null && (v as KeyObject).type === 'secret' && typeof (v as KeyObject).export === 'function'
}

/**
 * Creates the edge gate: reads `Authorization: Bearer <token>` (exactly one; RFC 6750 §2.1),
 * verifies the access token, maps its claims, and builds the first idctx context — `sub` (the
 * provider's opaque id or its keyed pseudonym), exactly one `tid`, `roles`, `scope`, `pty`, and a
 * `txn` (from `txnHeader` when valid, else new). A token that maps to no tenant (`no_tenant`),
 * to several (`ambiguous_tenant`), to a tenant other than the request's (`tenant_mismatch`), or
 * to no usable subject (`no_subject`) is refused with 403; an invalid token with 401; each with a
 * `WWW-Authenticate` challenge that holds no token or claim value. Names and emails never enter
 * the context: only the fields above are read from the mapper. Give it to `nodeHttpHandler`,
 * `expressMiddleware` or `fastifyHook`. Throws a `ConfigError` listing every invalid option.
 *
 * @example
 * ```ts
 * const ingress = createIngress({
 *   accessTokens: createAccessTokenVerifier({ issuer, jwksUri, audience: 'shop-api' }),
 *   mapper: keycloakClaims({ tenant: 'organization', clients: ['shop-api'] }),
 *   txnHeader: 'x-request-id',
 * })
 * const outcome = await ingress.authenticate(req)
 * if (outcome.ok) console.log(outcome.context.tid)
 * ```
 */
export function createIngress(options: IngressOptions): Ingress {
  validate(options)
  const { accessTokens, mapper } = options
  const store = options.store ?? defaultContextStore
  const subjectMode = options.subject ?? 'provider'
  const txnHeader = options.txnHeader?.toLowerCase()
  const refuse = (reason: IngressReason): GateOutcome => ({ ok: false, refusal: refusal(reason, { realm: options.realm }) })

  const subjectOf = (claims: JWTPayload, id: string | undefined): string | undefined => {
    if (typeof id !== 'string' || id.length === 0) return undefined
    if (subjectMode === 'provider') return isId(id) && !EMAIL_LIKE.test(id) ? id : undefined
    return createHmac('sha256', subjectMode.hmacKey).update(`${claims.iss ?? ''}\0${id}`, 'utf8').digest('base64url')
  }

  const check = async (request: HttpRequestLike): Promise<GateOutcome> => {
    const auth = headerValues(request, 'authorization')
    if (auth.length === 0) return refuse('missing')
    if (auth.length > 1) return refuse('invalid_request')
    const m = /^Bearer +([^ ]+) *$/i.exec(auth[0] as string)
    // Another scheme (Basic, …) carries no bearer credentials: a plain challenge (RFC 6750 §3.1).
    if (m === null) return /^Bearer\b/i.test(auth[0] as string) ? refuse('invalid_request') : refuse('missing')
    let txn: string | undefined
    if (txnHeader !== undefined) {
      const values = headerValues(request, txnHeader)
      if (values.length > 1 || (values.length === 1 && !TXN.test(values[0] as string))) return refuse('invalid_request')
      txn = values[0]
    }
    const verified = await accessTokens.verify(m[1] as string)
    if (!verified.ok) return refuse(verified.reason)
    const mapped = mapper.map(verified.claims)
    if (isRefusal(mapped)) return refuse(mapped.refused)
    const sub = subjectOf(verified.claims, mapped.subject)
    if (sub === undefined) return refuse('no_subject')
    const tenants = [...new Set((Array.isArray(mapped.tenants) ? mapped.tenants : []).filter(isId))]
    if (tenants.length === 0) return refuse('no_tenant')
    if (tenants.length > 1) return refuse('ambiguous_tenant')
    const tid = tenants[0] as string
    const expected = options.tenantOf?.(request)
    if (expected !== undefined && expected !== tid) return refuse('tenant_mismatch')
    const roles = roleList(Array.isArray(mapped.roles) ? mapped.roles : [])
    const scope = scopeString(Array.isArray(mapped.scopes) ? mapped.scopes : [])
    if (!meetsRequirements(options.requirements, scope, roles)) return refuse('insufficient_scope')
    const context: IdentityContext = Object.freeze({
      sub,
      tid,
      txn: txn ?? randomUUID(),
      pty: mapped.principalType ?? 'user',
      ...(roles !== undefined ? { roles: Object.freeze(roles) } : {}),
      ...(scope !== undefined ? { scope } : {}),
    })
    return { ok: true, context }
  }
  return { store, maxBodyBytes: undefined, check: (request) => check(request), authenticate: check }
}
