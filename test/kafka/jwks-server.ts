import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Jwks, KeySet } from '@idctx/core'
import type { ConsumerLike } from '@idctx/kafkajs'
import type { Consumer, ConsumerRunConfig } from 'kafkajs'

/**
 * How the test JWKS server answers: the JWKS (`ok`), `500`, no answer at all (`hang`: the request
 * is held until the client gives up), or nothing listens (`down`: connections are refused).
 */
export type JwksMode = 'ok' | '500' | 'hang' | 'down'

/** One request the server received, with what it answered. */
export interface JwksRequest {
  readonly at: number
  readonly answered: 'ok' | '500' | 'hang'
}

/**
 * A real HTTP JWKS endpoint on 127.0.0.1 whose behaviour a test switches: it serves `body()` (a
 * key set's public JWKS, or any JSON, e.g. `{"keys":[]}`), answers 500, hangs, or stops listening
 * (`down`: connection refused) and comes back on the same port. Every request is counted.
 */
export class JwksServer {
  readonly requests: JwksRequest[] = []
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private readonly held = new Set<ServerResponse>()
  private modeNow: JwksMode = 'ok'
  private port = 0

  constructor(public body: () => Jwks | unknown) {}

  /** Serves a key set's public JWKS. */
  static of(keys: KeySet): JwksServer {
    return new JwksServer(() => keys.jwks())
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/.well-known/idctx-jwks.json`
  }

  get mode(): JwksMode {
    return this.modeNow
  }

  /** Requests received since `since` (epoch ms). */
  requestsSince(since: number): JwksRequest[] {
    return this.requests.filter((r) => r.at >= since)
  }

  async start(): Promise<this> {
    await this.listen()
    return this
  }

  /** Switches the behaviour; `down` closes the listening socket, leaving it brings it back on the same port. */
  async setMode(mode: JwksMode): Promise<void> {
    const was = this.modeNow
    this.modeNow = mode
    if (mode !== 'hang') this.release()
    if (mode === 'down' && was !== 'down') await this.stopListening()
    if (mode !== 'down' && was === 'down') await this.listen()
  }

  async close(): Promise<void> {
    this.release()
    await this.stopListening()
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume()
    if (this.modeNow === 'hang') {
      this.requests.push({ at: Date.now(), answered: 'hang' })
      this.held.add(res)
      res.on('close', () => this.held.delete(res))
      return
    }
    if (this.modeNow === '500') {
      this.requests.push({ at: Date.now(), answered: '500' })
      res.writeHead(500, { 'content-type': 'text/html' })
      res.end('<html><body>upstream error</body></html>')
      return
    }
    this.requests.push({ at: Date.now(), answered: 'ok' })
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'no-store' })
    res.end(JSON.stringify(this.body()))
  }

  private async listen(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res))
    server.keepAliveTimeout = 500
    server.on('connection', (s) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.port = (server.address() as AddressInfo).port
    this.server = server
  }

  private async stopListening(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const s of this.sockets) s.destroy()
    await closed
  }

  /** Ends held (hanging) requests by dropping their connections. */
  private release(): void {
    for (const res of this.held) res.socket?.destroy()
    this.held.clear()
  }
}

/** An error thrown out of the wrapped `eachMessage`, as kafkajs saw it (and retried). */
export interface Thrown {
  readonly at: number
  readonly error: unknown
}

/**
 * A view of a consumer that records every error the (wrapped) `eachMessage` throws to kafkajs:
 * each one is a retry kafkajs then makes. Wrap the raw kafkajs consumer, then `wrapConsumer` it.
 */
export function recordingThrows<C extends Consumer>(consumer: C, thrown: Thrown[]): C {
  // Records what the handler kafkajs calls throws: eachMessage, or the eachBatch the wrapper runs
  // kafkajs's eachMessage loop in (eachMessageVerify 'batch').
  const recorded = <P,>(handler: ((payload: P) => Promise<void>) | undefined) =>
    handler === undefined
      ? undefined
      : async (payload: P) => {
          try {
            await handler(payload)
          } catch (error) {
            thrown.push({ at: Date.now(), error })
            throw error
          }
        }
  const run = (config: ConsumerRunConfig = {}) => {
    const { eachMessage, eachBatch, ...rest } = config
    const each = recorded(eachMessage)
    const batch = recorded(eachBatch)
    return consumer.run({ ...rest, ...(each === undefined ? {} : { eachMessage: each }), ...(batch === undefined ? {} : { eachBatch: batch }) })
  }
  return new Proxy(consumer, {
    get: (t, prop) => (prop === 'run' ? run : (Reflect.get(t, prop, t) as unknown)),
  }) satisfies ConsumerLike
}
