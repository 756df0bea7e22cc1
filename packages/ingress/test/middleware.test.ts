import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express from 'express'
import Fastify from 'fastify'
import { currentContext, type IdentityContext } from '@idctx/core'
import { createAccessTokenVerifier, createIngress, expressMiddleware, fastifyHook, keycloakClaims, type Ingress } from '@idctx/ingress'
import { bearer, call, listen, startIdp, type TestIdp } from './idp.js'

const closers: (() => Promise<unknown>)[] = []
afterAll(() => Promise.all(closers.map((c) => c())))

let idp: TestIdp
let ingress: Ingress
const claims = { sub: 'u-7d2f', aud: 'shop-api', organization: ['acme'], realm_access: { roles: ['buyer'] } }

beforeAll(async () => {
  idp = await startIdp({ alg: 'ES256' })
  closers.push(() => idp.close())
  ingress = createIngress({
    accessTokens: createAccessTokenVerifier({ issuer: idp.issuer, jwksUri: idp.jwksUri, audience: 'shop-api', algorithms: ['ES256'] }),
    mapper: keycloakClaims(),
    txnHeader: 'x-request-id',
    realm: 'shop',
  })
})

const later = () => new Promise((r) => setTimeout(r, 2))

async function expressApp(): Promise<string> {
  const app = express()
  app.use(expressMiddleware(ingress))
  app.use(express.json())
  app.post('/orders', async (req, res) => {
    await later()
    res.json({ current: currentContext(), locals: res.locals.identity as IdentityContext, body: req.body as unknown })
  })
  const running = await listen(app as unknown as (req: IncomingMessage, res: ServerResponse) => void)
  closers.push(() => running.close())
  return running.url
}

async function fastifyApp(): Promise<string> {
  const app = Fastify()
  app.addHook('preHandler', fastifyHook(ingress))
  app.post('/orders', async (request) => {
    await later()
    return { current: currentContext(), body: request.body }
  })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  closers.push(() => app.close())
  return url
}

for (const [name, start] of [['express', expressApp], ['fastify', fastifyApp]] as const) {
  describe(`edge middleware on ${name}`, () => {
    let url: string
    beforeAll(async () => {
      url = await start()
    })

    it('the route runs inside the context built from the access token, with the txn from the request; body parsers still work', async () => {
      const token = await idp.mint(claims)
      const a = await call(`${url}/orders`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-request-id': 'req-0001-abcd', 'content-type': 'application/json' }, body: '{"qty":1}' })
      expect(a.status).toBe(200)
      expect(a.body.current).toEqual({ sub: 'u-7d2f', tid: 'acme', txn: 'req-0001-abcd', pty: 'user', roles: ['buyer'] })
      expect(a.body.body).toEqual({ qty: 1 })
      if (name === 'express') expect(a.body.locals).toEqual(a.body.current)
    })

    it('refusals: exact status, reason and challenge; the route never runs', async () => {
      const expired = await idp.mint(claims, { iat: Math.floor(Date.now() / 1000) - 3600 })
      const r = await call(`${url}/orders`, { method: 'POST', ...bearer(expired) })
      expect({ status: r.status, body: r.body, challenge: r.headers.get('www-authenticate') }).toEqual({
        status: 401,
        body: { error: 'invalid_token', reason: 'expired' },
        challenge: 'Bearer realm="shop", error="invalid_token", error_description="token expired"',
      })
      const two = await call(`${url}/orders`, { method: 'POST', ...bearer(await idp.mint({ ...claims, organization: ['acme', 'globex'] })) })
      expect({ status: two.status, reason: two.body.reason }).toEqual({ status: 403, reason: 'ambiguous_tenant' })
      const none = await call(`${url}/orders`, { method: 'POST' })
      expect({ status: none.status, challenge: none.headers.get('www-authenticate') }).toEqual({ status: 401, challenge: 'Bearer realm="shop"' })
    })
  })
}
