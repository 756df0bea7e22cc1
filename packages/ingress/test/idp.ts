import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'

/** A real loopback HTTP server. */
export interface Running {
  readonly url: string
  readonly server: Server
  close(): Promise<void>
}

export async function listen(listener: RequestListener<typeof IncomingMessage, typeof ServerResponse>): Promise<Running> {
  const server = createServer(listener)
  server.keepAliveTimeout = 500
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** A local identity provider: its keys, a JWKS served over real HTTP, and a token minter. */
export interface TestIdp extends Running {
  readonly issuer: string
  readonly jwksUri: string
  /** How many times the JWKS was fetched. */
  readonly fetches: () => number
  mint(claims: JWTPayload, options?: { header?: Record<string, unknown>; lifetimeSeconds?: number; iat?: number; key?: CryptoKey; issuer?: string }): Promise<string>
}

export async function startIdp(options: { alg?: 'RS256' | 'ES256'; issuer?: (url: string) => string } = {}): Promise<TestIdp> {
  const alg = options.alg ?? 'RS256'
  const { privateKey, publicKey } = await generateKeyPair(alg)
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg, use: 'sig' }
  let fetches = 0
  const running = await listen((req, res) => {
    if (req.url === '/jwks') {
      fetches++
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
    } else res.writeHead(404).end()
  })
  const issuer = options.issuer?.(running.url) ?? running.url
  return {
    ...running,
    issuer,
    jwksUri: `${running.url}/jwks`,
    fetches: () => fetches,
    mint(claims, o = {}) {
      const now = o.iat ?? Math.floor(Date.now() / 1000)
      return new SignJWT({ iss: o.issuer ?? issuer, iat: now, exp: now + (o.lifetimeSeconds ?? 300), ...claims })
        .setProtectedHeader({ alg, kid: 'idp-1', typ: 'JWT', ...o.header })
        .sign(o.key ?? privateKey)
    },
  }
}

/** An unsigned token (`alg: none`), as an attacker writes one. */
export function unsecured(claims: JWTPayload): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`
}

export interface Answer {
  readonly status: number
  readonly body: Record<string, unknown>
  readonly headers: Headers
  readonly text: string
}

export async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init)
  const text = await res.text()
  let body: Record<string, unknown> = {}
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers, text }
}

export const bearer = (token: string): RequestInit => ({ headers: { authorization: `Bearer ${token}` } })
