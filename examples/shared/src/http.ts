import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Route = (req: IncomingMessage, body: Buffer, res: ServerResponse) => Promise<void> | void

/** A small HTTP server: `routes` keyed by `METHOD /path`; 404 otherwise, 500 without details. */
export async function startHttp(
  port: number,
  routes: Record<string, Route>,
  host = process.env.HOST ?? '127.0.0.1',
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]
      const route = routes[`${req.method} ${path}`]
      if (route === undefined) return json(res, 404, { error: 'not found' })
      Promise.resolve(route(req, Buffer.concat(chunks), res)).catch((e: unknown) => {
        if (!res.headersSent) json(res, 500, { error: 'internal error', type: e instanceof Error ? e.name : 'unknown' })
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(port, host, resolve))
  const { port: actual } = server.address() as AddressInfo
  return {
    server,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actual}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
