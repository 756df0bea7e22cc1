import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express from 'express'
import Fastify from 'fastify'
import {
  createKeySet,
  createMemoryReplayStore,
  createSigner,
  createVerifier,
  currentContext,
  generateKey,
  runWithContext,
  SigningError,
  type IdentityContext,
  type KeySet,
  type Verifier,
} from '@idctx/core'
import { createHopFetch, createHopVerifier, expressMiddleware, fastifyHook, fastifyRawBody, nodeHttpHandler, type HopVerifierOptions, type HttpGate } from '@idctx/ingress'
import { call, listen, type Answer, type Running } from './idp.js'

const alice: IdentityContext = { sub: 'u-7d2f', tid: 'acme', txn: randomUUID(), pty: 'user', roles: ['buyer'] }
const ORDER = JSON.stringify({ item: 'widget', qty: 2 })
const open: { close(): Promise<void> }[] = []
afterAll(() => Promise.all(open.map((r) => r.close())))

let keys: KeySet
beforeAll(() => {
  keys = createKeySet({ active: generateKey('EdDSA', { kid: 'gateway-1' }) })
})

function hopVerifier(authority: string): Verifier {
  return createVerifier({
    audience: 'shop',
    issuers: { gateway: keys },
    producerAcl: { gateway: { destinations: [`http:POST ${authority}/orders`, `http:POST ${authority}/refunds`, `http:PUT ${authority}/orders`] } },
    replay: createMemoryReplayStore(),
  })
}

/** The handler of every server: what it ran in (after an await) and the body it was handed. */
async function answer(res: ServerResponse, body: unknown): Promise<void> {
  await new Promise((r) => setTimeout(r, 1))
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ current: currentContext(), body }))
}

type Kind = 'node:http' | 'express' | 'fastify'

/** A real server of `kind` on loopback, its gate built once the port is known. */
async function server(kind: Kind, options: Partial<HopVerifierOptions> = {}): Promise<string> {
  let gate: HttpGate | undefined
  const gateOf = () => gate as HttpGate
  let url: string
  if (kind === 'node:http') {
    const running: Running = await listen((req, res) => nodeHttpHandler(gateOf(), (_q, r, { body }) => answer(r, body?.toString('utf8')))(req, res))
    open.push(running)
    url = running.url
  } else if (kind === 'express') {
    const app = express()
    app.use((req, res, next) => expressMiddleware(gateOf())(req, res, next))
    app.use(express.json())
    app.all('/{*any}', (req, res) => void answer(res, Buffer.isBuffer(req.body) ? req.body.toString('utf8') : req.body))
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      console.error(error)
      res.status(500).json({ error: 'internal error' })
    })
    const running = await listen(app as unknown as (req: IncomingMessage, res: ServerResponse) => void)
    open.push(running)
    url = running.url
  } else {
    const app = Fastify()
    fastifyRawBody(app)
    app.addHook('preHandler', (request, reply, done) => fastifyHook(gateOf())(request, reply, done))
    app.all('/*', async (request, reply) => {
      await new Promise((r) => setTimeout(r, 1))
      return reply.send({ current: currentContext(), body: Buffer.isBuffer(request.body) ? request.body.toString('utf8') : request.body })
    })
    url = await app.listen({ port: 0, host: '127.0.0.1' })
    open.push({ close: () => app.close() })
  }
  const authority = new URL(url).host
  gate = createHopVerifier({ verifier: hopVerifier(authority), tenant: { any: true }, authorities: [authority], ...options })
  return url
}

const signer = () => createSigner({ issuer: 'gateway', audience: 'shop', key: keys })

/** A fetch that keeps what went over the wire, to replay or tamper with it. */
function capturing() {
  const sent: { url: URL; init: RequestInit; token: string }[] = []
  const hop = createHopFetch({
    signer: signer(),
    fetch: (url, init) => {
      sent.push({ url: new URL(String(url)), init: init as RequestInit, token: new Headers(init?.headers).get('idctx') as string })
      return fetch(url, init)
    },
  })
  return { hop, sent }
}

function expectRefused(a: Answer, status: number, reason: string): void {
  expect({ status: a.status, reason: a.body.reason }).toEqual({ status, reason })
  expect(a.headers.get('www-authenticate')).toMatch(/^Idctx error="(invalid_token|insufficient_scope)", error_description="[a-z ]+"$/)
}

for (const kind of ['node:http', 'express', 'fastify'] as const) {
  describe(`HTTP hop on ${kind}`, () => {
    let url: string
    beforeAll(async () => {
      url = await server(kind)
    })

    it('the handler runs inside the signed context, with the exact body; the gateway is on the actor chain', async () => {
      const { hop } = capturing()
      const res = await runWithContext(alice, () => hop(`${url}/orders?dry=1`, { method: 'post', headers: { 'content-type': 'application/json' }, body: ORDER }))
      const a = (await res.json()) as { current: IdentityContext; body: string }
      expect(res.status).toBe(200)
      expect(a.current).toMatchObject({ sub: 'u-7d2f', tid: 'acme', txn: alice.txn, roles: ['buyer'], act: { sub: 'gateway' } })
      expect(a.body).toBe(ORDER)
    })

    it('a tampered body: binding_mismatch', async () => {
      const hop = createHopFetch({ signer: signer(), fetch: (u, init) => fetch(u, { ...init, body: ORDER.replace('2', '200') }) })
      const res = await runWithContext(alice, () => hop(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ORDER }))
      expectRefused({ status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers, text: '' }, 401, 'binding_mismatch')
    })

    it('the same request sent twice: replayed', async () => {
      const { hop, sent } = capturing()
      expect((await runWithContext(alice, () => hop(`${url}/orders`, { method: 'POST', body: ORDER }))).status).toBe(200)
      const [first] = sent
      const again = await call(first!.url.href, { method: 'POST', headers: { idctx: first!.token }, body: ORDER })
      expectRefused(again, 401, 'replayed')
    })

    it('the token moved to another path, method or query: binding_mismatch', async () => {
      const { hop, sent } = capturing()
      // signed for a request that is never delivered (the capture keeps it, the server never sees it)
      const nowhere = createHopFetch({ signer: signer(), fetch: async (u, init) => (sent.push({ url: new URL(String(u)), init: init!, token: new Headers(init?.headers).get('idctx')! }), new Response(null)) })
      void hop
      await runWithContext(alice, () => nowhere(`${url}/orders?dry=1`, { method: 'POST', body: ORDER }))
      const token = sent[0]!.token
      expectRefused(await call(`${url}/refunds?dry=1`, { method: 'POST', headers: { idctx: token }, body: ORDER }), 401, 'binding_mismatch')
      expectRefused(await call(`${url}/orders?dry=1`, { method: 'PUT', headers: { idctx: token }, body: ORDER }), 401, 'binding_mismatch')
      expectRefused(await call(`${url}/orders?dry=0`, { method: 'POST', headers: { idctx: token }, body: ORDER }), 401, 'binding_mismatch')
      // and on the request it was signed for, it still verifies (the refusals above were not replays)
      expect((await call(`${url}/orders?dry=1`, { method: 'POST', headers: { idctx: token }, body: ORDER })).status).toBe(200)
    })

    it('no token: missing, with a bare challenge; two tokens: duplicate', async () => {
      const none = await call(`${url}/orders`, { method: 'POST', body: ORDER })
      expect({ status: none.status, reason: none.body.reason, challenge: none.headers.get('www-authenticate') }).toEqual({ status: 401, reason: 'missing', challenge: 'Idctx' })
      const { hop, sent } = capturing()
      await runWithContext(alice, () => hop(`${url}/orders`, { method: 'POST', body: ORDER }))
      const token = sent[0]!.token
      const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const u = new URL(url)
        const req = httpRequest({ host: u.hostname, port: u.port, path: '/orders', method: 'POST', headers: { idctx: [token, token] } }, (res) => {
          let body = ''
          res.on('data', (c: Buffer) => (body += c.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        })
        req.on('error', reject)
        req.end(ORDER)
      })
      expect({ status: status.status, reason: (JSON.parse(status.body) as { reason: string }).reason }).toEqual({ status: 401, reason: 'duplicate' })
    })
  })
}

describe('HTTP hop: authority, tenant, context', () => {
  it('a token signed for another service (authority) is refused, whatever Host the sender writes', async () => {
    const url = await server('node:http')
    const other = await server('node:http')
    const { hop, sent } = capturing()
    await runWithContext(alice, () => hop(`${other}/orders`, { method: 'POST', body: ORDER }))
    const token = sent[0]!.token
    // fetch sets Host from the URL: the token for `other` sent to `url`
    expectRefused(await call(`${url}/orders`, { method: 'POST', headers: { idctx: token }, body: ORDER }), 401, 'binding_mismatch')
  })

  it('express under a mount path verifies the target as sent, not the rewritten req.url', async () => {
    const app = express()
    let gate: HttpGate | undefined
    app.use('/svc', (req, res, next) => expressMiddleware(gate as HttpGate)(req, res, next))
    app.post('/svc/orders', (_req, res) => void answer(res, 'mounted'))
    const running = await listen(app as unknown as (req: IncomingMessage, res: ServerResponse) => void)
    open.push(running)
    const authority = new URL(running.url).host
    gate = createHopVerifier({
      verifier: createVerifier({ audience: 'shop', issuers: { gateway: keys }, producerAcl: { gateway: { destinations: [`http:POST ${authority}/svc/*`] } }, replay: createMemoryReplayStore() }),
      tenant: 'acme',
      authorities: [authority],
    })
    const { hop } = capturing()
    const res = await runWithContext(alice, () => hop(`${running.url}/svc/orders`, { method: 'POST', body: ORDER }))
    expect(res.status).toBe(200)
    expect(((await res.json()) as { current: IdentityContext }).current.tid).toBe('acme')
  })

  it('a tenant the service does not serve: tenant_mismatch (403)', async () => {
    const url = await server('node:http', { tenant: 'globex' })
    const { hop } = capturing()
    const res = await runWithContext(alice, () => hop(`${url}/orders`, { method: 'POST', body: ORDER }))
    expectRefused({ status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers, text: '' }, 403, 'tenant_mismatch')
  })

  it('outside an identity context nothing is sent', async () => {
    let sent = 0
    const hop = createHopFetch({ signer: signer(), fetch: async () => (sent++, new Response(null)) })
    await expect(hop('http://127.0.0.1:9/orders', { method: 'POST', body: ORDER })).rejects.toBeInstanceOf(SigningError)
    expect(sent).toBe(0)
  })
})
