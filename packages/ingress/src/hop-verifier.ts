import { randomUUID } from 'node:crypto'
import {
  ConfigError,
  defaultContextStore,
  httpDestination,
  httpLeaf,
  isContextStore,
  unknownOptions,
  type ContextStore,
  type OptionIssue,
  type ExpectedTenant,
  type Requirements,
  type Verifier,
} from '@idctx/core'
import { headerValues, type GateOutcome, type HttpGate, type HttpRequestLike } from './gate.js'
import { HOP_HEADER } from './hop-fetch.js'
import { refusal, type IngressReason } from './refusal.js'

/**
 * Options of {@link createHopVerifier}; `verifier` and `tenant` are required. An invalid or
 * unknown option is a `ConfigError` (`ERR_IDCTX_CONFIG`) listing every one.
 *
 * @example
 * ```ts
 * const options: HopVerifierOptions = {
 *   verifier, // createVerifier({ audience: 'shop', issuers, producerAcl, replay: createRedisReplayStore({ client: redis }) })
 *   tenant: ['acme', 'globex'], // the tenants this deployment serves
 *   authorities: ['orders.internal', 'orders.internal:8080'],
 *   maxBodyBytes: 256 * 1024,
 *   requirements: { scopes: ['orders:write'] },
 *   realm: 'orders',
 * }
 * const hop = createHopVerifier(options)
 * ```
 */
export interface HopVerifierOptions {
  /**
   * The idctx verifier (`createVerifier`): trusted issuers and their keys, audience, producer ACL
   * on `http:<METHOD> <authority><path>` destinations, and a replay store — without one a
   * captured request could be sent again.
   */
  verifier: Verifier
  /** The tenant a request must belong to, derived independently of the token; `{ any: true }` to accept all. */
  tenant: ExpectedTenant | ((request: HttpRequestLike) => ExpectedTenant)
  /**
   * The authorities (`host[:port]`) this service answers to. A request whose `Host` is not one of
   * them is refused (`binding_mismatch`), so a token signed for another service never verifies
   * here, whatever `Host` the sender writes. Without it the `Host` header is taken as it comes:
   * then only the audience and the producer ACL keep a token for one service off another.
   */
  authorities?: readonly string[]
  /**
   * Largest body read and bound, in bytes: an integer from 0 to 2³¹, default 1048576 (1 MiB). A
   * larger one is refused (`oversize`, 401) as soon as the limit is passed.
   */
  maxBodyBytes?: number
  /** Scopes and roles every request must carry (`insufficient_scope`). */
  requirements?: Requirements
  /** The realm of the `WWW-Authenticate: Idctx` challenge. */
  realm?: string
  /** The store requests run in (default the process-wide one). */
  store?: ContextStore
}

const KNOWN = ['verifier', 'tenant', 'authorities', 'maxBodyBytes', 'requirements', 'realm', 'store']

/**
 * Creates the gate of a service hop: the request's `idctx` header (exactly one) verified by the
 * idctx verifier with its rules and reason codes, bound to this exact request (`httpLeaf` of the
 * method, the authority, the path and query and the body bytes), for the expected tenant, once
 * (the verifier's replay store, keyed by the token's `jti`: a second sighting anywhere is
 * `replayed`). Refusals are 401 (403 for `tenant_mismatch`, `actor_not_allowed`,
 * `insufficient_scope`) with a `WWW-Authenticate: Idctx` challenge and `{ error, reason }`. The
 * handler runs inside the verified context, so what it sends next carries the identity on.
 * Throws a `ConfigError` listing every invalid option.
 *
 * @example
 * ```ts
 * const hop = createHopVerifier({
 *   verifier: createVerifier({
 *     audience: 'shop',
 *     issuers: { gateway: createRemoteJwks('https://gateway.internal/.well-known/idctx-jwks.json') },
 *     producerAcl: { gateway: { destinations: ['http:POST orders.internal/orders'] } },
 *     replay: createMemoryReplayStore(),
 *   }),
 *   tenant: { any: true },
 *   authorities: ['orders.internal'],
 * })
 * ```
 */
export function createHopVerifier(options: HopVerifierOptions): HttpGate {
  if (typeof options !== 'object' || options === null) throw new ConfigError('hop verifier options', [{ path: '', message: 'an options object ({ verifier, tenant, … })' }])
  const o = options as Partial<HopVerifierOptions>
  const issues: OptionIssue[] = unknownOptions(o, KNOWN)
  if (typeof o.verifier?.verify !== 'function') issues.push({ path: 'verifier', message: 'a Verifier (createVerifier)' })
  const t = o.tenant as unknown
  const tenantOk =
    (typeof t === 'string' && t.length > 0) ||
    (Array.isArray(t) && t.every((x) => typeof x === 'string' && x.length > 0)) ||
    typeof t === 'function' ||
    (typeof t === 'object' && t !== null && (t as { any?: unknown }).any === true)
  if (!tenantOk) issues.push({ path: 'tenant', message: 'a tenant id, a list of them, { any: true } or a function of the request' })
  if (o.authorities !== undefined && !(Array.isArray(o.authorities) && o.authorities.length > 0 && o.authorities.every((a) => typeof a === 'string' && a.length > 0))) {
    issues.push({ path: 'authorities', message: 'a non-empty list of host[:port]' })
  }
  const maxBodyBytes = o.maxBodyBytes ?? 1024 * 1024
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 0 || maxBodyBytes > 2 ** 31) issues.push({ path: 'maxBodyBytes', message: 'an integer number of bytes' })
  if (o.store !== undefined && !isContextStore(o.store)) issues.push({ path: 'store', message: 'a ContextStore (createContextStore)' })
  if (issues.length > 0) throw new ConfigError('hop verifier options', issues)
  const { verifier } = options
  const authorities = options.authorities === undefined ? undefined : new Set(options.authorities.map((a) => a.toLowerCase()))
  const store = options.store ?? defaultContextStore
  const refuse = (reason: IngressReason): GateOutcome => ({ ok: false, refusal: refusal(reason, { realm: options.realm, scheme: 'Idctx' }) })

  const check = async (request: HttpRequestLike, body: Buffer | undefined): Promise<GateOutcome> => {
    if (body !== undefined && body.byteLength > maxBodyBytes) return refuse('oversize')
    const tokens = headerValues(request, HOP_HEADER)
    const hosts = headerValues(request, 'host')
    const method = request.method ?? 'GET'
    const target = request.url ?? '/'
    const authority = hosts.length === 1 ? (hosts[0] as string).toLowerCase() : undefined
    let destination: string
    try {
      if (authority === undefined || (authorities !== undefined && !authorities.has(authority))) throw new TypeError('authority')
      const q = target.search(/[?#]/)
      destination = httpDestination(method, authority, q < 0 ? target : target.slice(0, q))
    } catch {
      // No token can be bound to a request without one authority, or with a target no client sends.
      return refuse(tokens.length === 0 ? 'missing' : 'binding_mismatch')
    }
    const expectedTenant = typeof options.tenant === 'function' ? options.tenant(request) : options.tenant
    const traceparent = headerValues(request, 'traceparent')[0]
    const r = await verifier.verify({
      tokens,
      destination,
      leaf: () => httpLeaf(method, authority, target, body ?? null),
      expectedTenant,
      requirements: options.requirements,
      // Every request is its own delivery: a token seen before, anywhere, is a replay.
      coordinates: `http:${randomUUID()}`,
      firstDelivery: true,
      ...(traceparent !== undefined ? { traceparent } : {}),
    })
    return r.ok ? { ok: true, context: r.context } : refuse(r.error.reason)
  }
  return { store, maxBodyBytes, check }
}
