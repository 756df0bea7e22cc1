import type { IncomingMessage, ServerResponse } from 'node:http'
import type { IdentityContext } from '@idctx/core'
import type { HttpGate } from './gate.js'
import { OVERSIZE, OVERSIZE_HEADERS, readBody, unavailable } from './lib/respond.js'

/**
 * What a node:http handler behind a gate gets besides `req` and `res`.
 *
 * @example
 * ```ts
 * createServer(nodeHttpHandler(hop, (req, res, gated: GatedRequest) => {
 *   const order = JSON.parse(gated.body!.toString('utf8')) // the exact bytes the token was bound to
 *   res.end(JSON.stringify({ tenant: gated.identity.tid, sku: order.sku }))
 * })).listen(8080)
 * ```
 */
export interface GatedRequest {
  /** The identity the handler runs in (also the store's current context). */
  readonly identity: IdentityContext
  /** The body bytes the gate read and verified; undefined for a gate that reads no body. */
  readonly body: Buffer | undefined
}

/**
 * A node:http handler that runs inside a verified identity (`currentContext()` gives it too). A
 * handler that throws or rejects gets a 500 without details.
 *
 * @example
 * ```ts
 * const me: GatedHandler = (req, res, { identity }) => {
 *   res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: identity.sub, tenant: identity.tid }))
 * }
 * createServer(nodeHttpHandler(ingress, me)).listen(8080)
 * ```
 */
export type GatedHandler = (req: IncomingMessage, res: ServerResponse, gated: GatedRequest) => unknown

function send(res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body: unknown): void {
  res.writeHead(status, { ...headers, 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

/**
 * Wraps a node:http handler behind a gate ({@link createIngress}, `createHopVerifier`): the
 * request is checked (its body read first, up to the gate's limit, when the gate binds it), a
 * refusal is answered with its status, `WWW-Authenticate` and `{ error, reason }`, unreachable
 * keys with 503, and otherwise the handler runs inside the identity (the gate's store), with the
 * body bytes it was verified over. A handler that throws gets a 500 without details.
 *
 * @example
 * ```ts
 * createServer(nodeHttpHandler(ingress, async (req, res, { identity }) => {
 *   res.end(JSON.stringify({ tenant: identity.tid }))
 * })).listen(8080)
 * ```
 */
export function nodeHttpHandler(gate: HttpGate, handler: GatedHandler): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof gate?.check !== 'function') throw new TypeError('nodeHttpHandler: gate must come from createIngress or createHopVerifier')
  if (typeof handler !== 'function') throw new TypeError('nodeHttpHandler: handler must be a function')
  const run = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let body: Buffer | undefined
    if (gate.maxBodyBytes !== undefined) {
      body = await readBody(req, gate.maxBodyBytes)
      if (body === undefined) return send(res, OVERSIZE.status, OVERSIZE_HEADERS, OVERSIZE.body)
    }
    let outcome
    try {
      outcome = await gate.check(req, body)
    } catch (e) {
      const answer = unavailable(e)
      if (answer === undefined) throw e
      return send(res, answer.status, answer.headers, answer.body)
    }
    if (!outcome.ok) return send(res, outcome.refusal.status, outcome.refusal.headers, outcome.refusal.body)
    const identity = outcome.context
    await gate.store.run(identity, () => handler(req, res, { identity, body }))
  }
  return (req, res) => {
    run(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, {}, { error: 'internal error' })
      else res.destroy()
    })
  }
}
