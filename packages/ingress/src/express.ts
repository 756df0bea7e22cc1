import type { IncomingMessage, ServerResponse } from 'node:http'
import type { HttpGate } from './gate.js'
import { OVERSIZE, OVERSIZE_HEADERS, readBody, unavailable } from './lib/respond.js'

/**
 * The parts of an express request the middleware uses (typed here: express is not a dependency);
 * an express `Request` is one.
 *
 * @example
 * ```ts
 * app.post('/orders', expressMiddleware(hop), (req: ExpressRequestLike, res: ExpressResponseLike) => {
 *   const order = JSON.parse((req.body as Buffer).toString('utf8')) // the bytes the hop gate verified
 *   res.end(JSON.stringify({ accepted: order.id }))
 * })
 * ```
 */
export type ExpressRequestLike = IncomingMessage & {
  body?: unknown
  /** The request target as received: express rewrites `url` under a mount path. */
  originalUrl?: string
}

/**
 * The parts of an express response the middleware uses; an express `Response` is one. The
 * middleware sets `locals.identity` to the verified `IdentityContext`.
 *
 * @example
 * ```ts
 * app.get('/me', expressMiddleware(ingress), (req, res: ExpressResponseLike) => {
 *   const identity = res.locals.identity as IdentityContext
 *   res.end(JSON.stringify({ tenant: identity.tid }))
 * })
 * ```
 */
export type ExpressResponseLike = ServerResponse & {
  locals: Record<string, unknown>
}

/**
 * An express middleware, as {@link expressMiddleware} returns it: it answers a refused request
 * itself, or calls `next()` inside the identity, or `next(error)`.
 *
 * @example
 * ```ts
 * const authenticated: ExpressMiddleware = expressMiddleware(ingress)
 * app.use('/api', authenticated)
 * ```
 */
export type ExpressMiddleware = (req: ExpressRequestLike, res: ExpressResponseLike, next: (error?: unknown) => void) => void

/**
 * An express (4 or 5) middleware for a gate ({@link createIngress}, `createHopVerifier`). A
 * refused request is answered with its status, `WWW-Authenticate` and `{ error, reason }`;
 * unreachable keys with 503; otherwise `res.locals.identity` is set and the rest of the chain runs
 * inside the identity (the gate's store: `currentContext()` in a route gives it).
 *
 * A gate that binds the body reads it here, up to its limit, and leaves the bytes in `req.body`
 * (a Buffer): mount it before any body parser, or after `express.raw({ type: () => true })`. A
 * body already parsed into an object cannot be verified and fails the request (500).
 *
 * @example
 * ```ts
 * app.post('/orders', expressMiddleware(hop), express.json(), (req, res) => {
 *   res.json({ tenant: res.locals.identity.tid })
 * })
 * ```
 */
export function expressMiddleware(gate: HttpGate): ExpressMiddleware {
  if (typeof gate?.check !== 'function') throw new TypeError('expressMiddleware: gate must come from createIngress or createHopVerifier')
  const run = async (req: ExpressRequestLike, res: ExpressResponseLike, next: (error?: unknown) => void): Promise<void> => {
    let body: Buffer | undefined
    if (gate.maxBodyBytes !== undefined) {
      if (Buffer.isBuffer(req.body)) body = req.body
      else if (req.readableEnded || (req.body !== undefined && typeof req.body === 'object' && Object.keys(req.body as object).length > 0)) {
        return next(new TypeError('idctx: the request body was already consumed; mount the middleware before body parsers or after express.raw()'))
      } else {
        body = await readBody(req, gate.maxBodyBytes)
        if (body === undefined) {
          res.writeHead(OVERSIZE.status, OVERSIZE_HEADERS).end(JSON.stringify(OVERSIZE.body))
          return
        }
        req.body = body
      }
    }
    let outcome
    try {
      // Under `app.use('/prefix', …)` express strips the prefix from req.url: the token was
      // signed over the target as sent.
      const request = { method: req.method, url: req.originalUrl ?? req.url, headers: req.headers, headersDistinct: req.headersDistinct }
      outcome = await gate.check(request, body)
    } catch (e) {
      const answer = unavailable(e)
      if (answer === undefined) return next(e)
      res.writeHead(answer.status, { ...answer.headers, 'content-type': 'application/json' }).end(JSON.stringify(answer.body))
      return
    }
    if (!outcome.ok) {
      const r = outcome.refusal
      res.writeHead(r.status, { ...r.headers, 'content-type': 'application/json' }).end(JSON.stringify(r.body))
      return
    }
    res.locals.identity = outcome.context
    gate.store.run(outcome.context, () => next())
  }
  return (req, res, next) => {
    run(req, res, next).catch(next)
  }
}
