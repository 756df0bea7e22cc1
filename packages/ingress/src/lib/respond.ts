import { KeyError } from '@idctx/core'
import type { Readable } from 'node:stream'
import { refusal, type Refusal } from '../refusal.js'

/**
 * Reads a request body up to `limit` bytes; undefined as soon as it goes past it — without waiting
 * for the rest, which a hostile client may never finish: answer with {@link OVERSIZE_HEADERS}
 * (`connection: close`), and node discards what still comes and closes the connection.
 */
export function readBody(stream: Readable, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (c: Buffer | string): void => {
      const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c
      size += b.byteLength
      if (size <= limit) return void chunks.push(b)
      chunks.length = 0
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.resume()
      resolve(undefined)
    }
    const onEnd = (): void => resolve(Buffer.concat(chunks))
    stream.on('data', onData)
    stream.once('end', onEnd)
    stream.once('error', reject)
  })
}

/** The oversize refusal of a body past a gate's limit. */
export const OVERSIZE: Refusal = refusal('oversize', { scheme: 'Idctx' })

/** The headers of an oversize answer: the refusal's, and the connection closed (the rest of the body is not read). */
export const OVERSIZE_HEADERS: Readonly<Record<string, string>> = Object.freeze({ ...OVERSIZE.headers, connection: 'close', 'content-type': 'application/json' })

/** The answer when keys could not be fetched: 503 and a retry hint (the request is not at fault), else undefined. */
export function unavailable(error: unknown): { status: 503; headers: Record<string, string>; body: { error: string } } | undefined {
  if (!(error instanceof KeyError)) return undefined
  return { status: 503, headers: { 'retry-after': '1', 'cache-control': 'no-store' }, body: { error: 'identity keys unavailable' } }
}
