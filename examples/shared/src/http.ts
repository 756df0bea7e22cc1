import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Route = (req: IncomingMessage, body: Buffer, res: ServerResponse) => Promise<void> | void

/** A running HTTP server of an example service. */
export interface HttpServer {
  readonly server: Server
  /** A URL to reach it from this machine (`127.0.0.1` when bound to all interfaces). */
  readonly url: string
  close(): Promise<void>
}

/** Largest request body accepted (an order is a few hundred bytes). */
const MAX_BODY = 64 * 1024

/**
 * A small HTTP server: `routes` keyed by `METHOD /path`; 404 otherwise, 413 past 64 KiB, 500
 * without details. Binds `host` (default 127.0.0.1; `0.0.0.0` in containers).
 */
export async function startHttp(port: number, routes: Record<string, Route>, host = '127.0.0.1'): Promise<HttpServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size <= MAX_BODY) chunks.push(c)
    })
    req.on('end', () => {
      if (size > MAX_BODY) return json(res, 413, { error: 'body too large' })
      const path = (req.url ?? '/').split('?')[0]
      const route = routes[`${req.method} ${path}`]
      if (route === undefined) return json(res, 404, { error: 'not found' })
      Promise.resolve()
        .then(() => route(req, Buffer.concat(chunks), res))
        .catch((e: unknown) => {
          if (!res.headersSent) json(res, 500, { error: 'internal error', type: e instanceof Error ? e.name : 'unknown' })
        })
    })
  })
  // Keep-alive sockets of fetch clients would hold close() open.
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port: actual } = server.address() as AddressInfo
  return {
    server,
    url: `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}
