import type { IncomingMessage } from 'node:http'
import type { HttpGate } from './gate.js'
import { OVERSIZE, unavailable } from './lib/respond.js'

/**
 * The parts of a fastify request the hook uses (typed here: fastify is not a dependency); a
 * fastify `FastifyRequest` is one.
 *
 * @example
 * ```ts
 * fastifyRawBody(app)
 * app.addHook('preHandler', fastifyHook(hop))
 * app.post('/orders', async (request: FastifyRequestLike) => {
 *   const order = JSON.parse((request.body as Buffer).toString('utf8'))
 *   return { tenant: currentContext()?.tid, sku: order.sku }
 * })
 * ```
 */
export interface FastifyRequestLike {
  /** The node:http request the gate checks. */
  readonly raw: IncomingMessage
  /** The body: a Buffer under {@link fastifyRawBody}, undefined for a request without one. */
  readonly body?: unknown
}

/**
 * The parts of a fastify reply the hook uses to answer a refusal; a fastify `FastifyReply` is one.
 *
 * @example
 * ```ts
 * const answer = (reply: FastifyReplyLike, r: Refusal) => reply.code(r.status).headers({ ...r.headers }).send(r.body)
 * ```
 */
export interface FastifyReplyLike {
  /** Sets the status code. */
  code(status: number): FastifyReplyLike
  /** Sets response headers. */
  headers(values: Record<string, string>): FastifyReplyLike
  /** Sends the payload (an object as JSON). */
  send(payload?: unknown): FastifyReplyLike
}

/**
 * A fastify callback-style hook (`preHandler`), as {@link fastifyHook} returns it.
 *
 * @example
 * ```ts
 * const authenticated: FastifyHook = fastifyHook(ingress)
 * app.get('/me', { preHandler: authenticated }, async () => ({ tenant: currentContext()?.tid }))
 * ```
 */
export type FastifyHook = (request: FastifyRequestLike, reply: FastifyReplyLike, done: (error?: Error) => void) => void

/**
 * The parts of a fastify instance {@link fastifyRawBody} uses; a fastify instance, or the scope a
 * plugin gets, is one.
 *
 * @example
 * ```ts
 * await app.register(async (scope) => {
 *   fastifyRawBody(scope, 256 * 1024) // this scope's bodies stay bytes, up to 256 KiB
 *   scope.addHook('preHandler', fastifyHook(hop))
 *   scope.post('/orders', async (request) => ({ tenant: currentContext()?.tid }))
 * })
 * ```
 */
export interface FastifyInstanceLike {
  /** Removes every content-type parser, the built-in JSON and text ones included. */
  removeAllContentTypeParsers(): void
  /** Adds a content-type parser; `bodyLimit` in bytes. */
  addContentTypeParser(
    contentType: string,
    options: { parseAs: 'buffer'; bodyLimit?: number },
    parser: (request: unknown, body: Buffer, done: (error: Error | null, body?: unknown) => void) => void,
  ): void
}

/**
 * Makes a fastify instance (or an encapsulated plugin scope) keep every request body as the exact
 * bytes received (a Buffer in `request.body`), which a hop gate must verify: parse them in the
 * handler (`JSON.parse(request.body.toString())`).
 *
 * @example
 * ```ts
 * fastifyRawBody(app)
 * app.addHook('preHandler', fastifyHook(hop))
 * ```
 */
export function fastifyRawBody(app: FastifyInstanceLike, bodyLimit?: number): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', ...(bodyLimit !== undefined ? { bodyLimit } : {}) }, (_request, body, done) => done(null, body))
}

/**
 * A fastify `preHandler` hook for a gate ({@link createIngress}, `createHopVerifier`). A refused
 * request is answered with its status, `WWW-Authenticate` and `{ error, reason }`; unreachable keys
 * with 503; otherwise the handler runs inside the identity (the gate's store: `currentContext()`
 * gives it). A gate that binds the body needs it as bytes: see {@link fastifyRawBody}; a request
 * without a body verifies over an empty one.
 *
 * @example
 * ```ts
 * app.addHook('preHandler', fastifyHook(ingress))
 * app.get('/me', async () => ({ tenant: currentContext()?.tid }))
 * ```
 */
export function fastifyHook(gate: HttpGate): FastifyHook {
  if (typeof gate?.check !== 'function') throw new TypeError('fastifyHook: gate must come from createIngress or createHopVerifier')
  return (request, reply, done) => {
    let body: Buffer | undefined
    if (gate.maxBodyBytes !== undefined) {
      const b = request.body
      // Only the raw bytes are what was signed: a string or null is a parsed body (JSON "abc",
      // JSON null), whose bytes on the wire were different.
      if (b === undefined) body = Buffer.alloc(0)
      else if (Buffer.isBuffer(b)) body = b
      else return done(new TypeError('idctx: the request body was parsed; call fastifyRawBody(app) so the exact bytes can be verified'))
      if (body.byteLength > gate.maxBodyBytes) {
        reply.code(OVERSIZE.status).headers({ ...OVERSIZE.headers }).send(OVERSIZE.body)
        return
      }
    }
    gate.check(request.raw, body).then(
      (outcome) => {
        if (!outcome.ok) {
          reply.code(outcome.refusal.status).headers({ ...outcome.refusal.headers }).send(outcome.refusal.body)
          return
        }
        gate.store.run(outcome.context, () => done())
      },
      (e: unknown) => {
        const answer = unavailable(e)
        if (answer === undefined) return done(e instanceof Error ? e : new Error('idctx gate failed'))
        reply.code(answer.status).headers(answer.headers).send(answer.body)
      },
    )
  }
}
