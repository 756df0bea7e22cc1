import type { ContextStore, IdentityContext } from '@idctx/core'
import type { Refusal } from './refusal.js'

/**
 * The parts of a node:http `IncomingMessage` a gate reads (express and fastify's `raw` are ones).
 * Header names are lower-case, as node gives them.
 *
 * @example
 * ```ts
 * // A gate called directly, from a router of your own.
 * const request: HttpRequestLike = {
 *   method: 'POST',
 *   url: '/orders?dryRun=1',
 *   headers: { host: 'orders.internal', idctx: token, 'content-type': 'application/json' },
 * }
 * const outcome = await hop.check(request, Buffer.from(body))
 * ```
 */
export interface HttpRequestLike {
  /** The method as sent (default `GET` when absent). */
  readonly method?: string | undefined
  /** The request target as sent: path and query. */
  readonly url?: string | undefined
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** Every value of every header, repeated ones kept apart (node ≥ 18.3). */
  readonly headersDistinct?: Readonly<Record<string, string[] | undefined>> | undefined
}

/**
 * What a gate decided: the identity to run the request in, or the refusal to answer with.
 *
 * @example
 * ```ts
 * const outcome: GateOutcome = await ingress.check(req, undefined)
 * if (outcome.ok) await ingress.store.run(outcome.context, () => handle(req, res))
 * else res.writeHead(outcome.refusal.status, outcome.refusal.headers).end(JSON.stringify(outcome.refusal.body))
 * ```
 */
export type GateOutcome = { readonly ok: true; readonly context: IdentityContext } | { readonly ok: false; readonly refusal: Refusal }

/**
 * A check an HTTP request must pass before its handler runs inside the identity it establishes:
 * the edge ({@link createIngress}: an IdP access token) or a service hop (`createHopVerifier`: an
 * idctx token bound to the request). The node:http, express and fastify adapters take one.
 *
 * @example
 * ```ts
 * const gate: HttpGate = createHopVerifier({ verifier, tenant: { any: true } })
 * createServer(nodeHttpHandler(gate, (req, res, { identity, body }) => {
 *   res.end(`${identity.tid}: ${body?.byteLength ?? 0} bytes`)
 * })).listen(8080)
 * ```
 */
export interface HttpGate {
  /** The store the handler's identity is entered in. */
  readonly store: ContextStore
  /** The largest body the gate reads, in bytes; undefined when it reads no body. */
  readonly maxBodyBytes: number | undefined
  /**
   * Checks a request (and its exact body bytes when `maxBodyBytes` is set). Throws a `KeyError`
   * only when keys could not be fetched: answer 503 and let the caller retry.
   */
  check(request: HttpRequestLike, body: Buffer | undefined): Promise<GateOutcome>
}

/**
 * Every value of a header, repeated ones kept apart.
 *
 * @example
 * ```ts
 * headerValues(req, 'authorization') // ['Bearer eyJ…'] — two entries for a repeated header
 * ```
 */
export function headerValues(request: HttpRequestLike, name: string): string[] {
  const distinct = request.headersDistinct?.[name]
  if (distinct !== undefined) return [...distinct]
  const v = request.headers[name]
  return v === undefined ? [] : Array.isArray(v) ? [...v] : [v]
}
