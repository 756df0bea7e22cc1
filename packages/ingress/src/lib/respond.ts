import { KeyError } from '@idctx/core'
import type { Readable } from 'node:stream'
import { refusal, type Refusal } from '../refusal.js'

/** Reads a request body up to `limit` bytes; undefined past it (the rest is drained, not kept). */
export function readBody(stream: Readable, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    stream.on('data', (c: Buffer | string) => {
      const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c
      size += b.byteLength
      if (size <= limit) chunks.push(b)
    })
    stream.once('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks)))
    stream.once('error', reject)
  })
}

/** The oversize refusal of a body past a gate's limit. */
export const OVERSIZE: Refusal = refusal('oversize', { scheme: 'Idctx' })

/** The answer when keys could not be fetched: 503 and a retry hint (the request is not at fault), else undefined. */
export function unavailable(error: unknown): { status: 503; headers: Record<string, string>; body: { error: string } } | undefined {
  if (!(error instanceof KeyError)) return undefined
  return { status: 503, headers: { 'retry-after': '1', 'cache-control': 'no-store' }, body: { error: 'identity keys unavailable' } }
}
