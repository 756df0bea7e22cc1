import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { afterAll, describe, expect, it } from 'vitest'
import express from 'express'
import { createKeySet, createVerifier, generateKey } from '@idctx/core'
import { createHopVerifier, expressMiddleware, fastifyHook, nodeHttpHandler, type FastifyReplyLike, type HttpGate } from '@idctx/ingress'
import { listen, type Running } from './idp.js'

const open: Running[] = []
afterAll(() => Promise.all(open.map((r) => r.close())))

const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'gw-1' }) })
const gate = (): HttpGate => createHopVerifier({ verifier: createVerifier({ audience: 'shop', issuers: { gateway: keys } }), tenant: { any: true }, maxBodyBytes: 1024 })

/** Sends 4 KiB of a body that never ends: the answer must come without waiting for the rest. */
function endlessUpload(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const req = httpRequest({ host: u.hostname, port: u.port, path: '/orders', method: 'POST', headers: { 'transfer-encoding': 'chunked', idctx: 'x.y.z' } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => {
        req.destroy()
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
    req.on('error', () => {})
    req.write(Buffer.alloc(4096, 0x61))
    const timer = setTimeout(() => {
      req.destroy()
      reject(new Error('no answer while the body was still coming'))
    }, 3000)
    req.on('close', () => clearTimeout(timer))
  })
}

describe('hostile bodies at the middleware', () => {
  it('node:http and express answer an oversize body at once (413-like refusal), without reading the rest', async () => {
    const node = await listen(nodeHttpHandler(gate(), (_q, r) => r.end('ran')))
    open.push(node)
    const app = express()
    app.use(expressMiddleware(gate()))
    app.use((_q: express.Request, r: express.Response) => void r.end('ran'))
    const ex = await listen(app as unknown as (req: IncomingMessage, res: ServerResponse) => void)
    open.push(ex)
    for (const url of [node.url, ex.url]) {
      const a = await endlessUpload(url)
      expect({ status: a.status, reason: (JSON.parse(a.body) as { reason: string }).reason }).toEqual({ status: 401, reason: 'oversize' })
    }
  })

  it('fastify: a body parsed to null or to a string is not the bytes on the wire', async () => {
    for (const parsed of [null, 'abc']) {
      let failed: unknown
      let sent = false
      await new Promise<void>((resolve) => {
        const reply = { code: () => reply, headers: () => reply, send: () => ((sent = true), resolve(), reply) } as unknown as FastifyReplyLike
        fastifyHook(gate())({ raw: { method: 'POST', url: '/orders', headers: { host: 'h' } } as IncomingMessage, body: parsed }, reply, (e) => {
          failed = e
          resolve()
        })
      })
      expect(sent).toBe(false)
      expect(failed).toBeInstanceOf(TypeError)
    }
  })
})
