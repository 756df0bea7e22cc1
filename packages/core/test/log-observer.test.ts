import { createHash, createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  ConfigError,
  createConsoleLogger,
  createLogObserver,
  createSigner,
  createVerifier,
  type DispositionEvent,
  type IdctxLogger,
} from '@idctx/core'
import { AUD, baseInput, baseOptions, clock, CONTEXT, DEST, ISS, LEAF, makeKeyring, NOW_MS, RECORD } from './fixtures.js'

const ring = makeKeyring()

interface Line {
  readonly level: 'info' | 'warn' | 'error'
  readonly fields: Record<string, unknown>
  readonly message: string
}

/** A logger with pino's signature that keeps every line. */
function recordingLogger(): IdctxLogger & { lines: Line[] } {
  const lines: Line[] = []
  return {
    lines,
    info: (fields, message) => lines.push({ level: 'info', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
  }
}

function token(audience = AUD): string {
  const signer = createSigner({ issuer: ISS, audience, key: ring.EdDSA, clock })
  return signer.sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token
}

const disposition = (over: Partial<DispositionEvent> = {}): DispositionEvent => ({
  reason: 'expired',
  destination: 'kafka:orders',
  policy: 'dead-letter',
  target: 'orders.idctx-dlq',
  coordinates: 'orders/0/7',
  tokenSha256: 'ab'.repeat(32),
  traceparent: undefined,
  ...over,
})

describe('createLogObserver', () => {
  it('logs an audience typo with the token audience, the expected one, issuer, kid, topic and a hashed user', async () => {
    const logger = recordingLogger()
    const observer = createLogObserver({ logger, expectedAudience: AUD })
    const verifier = createVerifier(baseOptions(ring, { observer }))
    const t = token('shpo')
    const r = await verifier.verify(baseInput(t))
    expect(r.ok).toBe(false)
    expect(logger.lines).toHaveLength(1)
    const [line] = logger.lines
    expect(line?.level).toBe('warn')
    expect(line?.message).toBe('idctx: message rejected')
    expect(line?.fields).toMatchObject({
      event: 'idctx.rejected',
      reason: 'wrong_audience',
      destination: DEST,
      topic: 'orders',
      issuer: ISS,
      kid: ring.EdDSA.kid,
      audience: 'shpo',
      expectedAudience: AUD,
      tenant: CONTEXT.tid,
      user: createHash('sha256').update(CONTEXT.sub).digest('hex').slice(0, 32),
      tokenSha256: createHash('sha256').update(t).digest('hex'),
    })
    const text = JSON.stringify(logger.lines)
    for (const part of [t, ...t.split('.')]) expect(text).not.toContain(part)
    expect(text).not.toContain(CONTEXT.sub)
    expect(text).not.toContain(RECORD.value.toString())
    expect(text).not.toContain(LEAF.toString('base64url'))
  })

  it('hashes the user id with HMAC-SHA-256 when given a salt', async () => {
    const logger = recordingLogger()
    const observer = createLogObserver({ logger, userIdSalt: 'pepper' })
    const verifier = createVerifier(baseOptions(ring, { observer }))
    await verifier.verify(baseInput(token(), { expectedTenant: 'globex' }))
    expect(logger.lines[0]?.fields.reason).toBe('tenant_mismatch')
    expect(logger.lines[0]?.fields.user).toBe(createHmac('sha256', 'pepper').update(CONTEXT.sub).digest('hex').slice(0, 32))
  })

  it('logs nothing for a verified message', async () => {
    const logger = recordingLogger()
    const verifier = createVerifier(baseOptions(ring, { observer: createLogObserver({ logger }) }))
    expect((await verifier.verify(baseInput(token()))).ok).toBe(true)
    expect(logger.lines).toEqual([])
  })

  it('logs dispositions by policy, fail as an error, with the queue of a BullMQ destination', () => {
    const logger = recordingLogger()
    const observer = createLogObserver({ logger })
    observer.onDisposition?.(disposition())
    observer.onDisposition?.(disposition({ policy: 'fail', destination: 'bullmq:mail%2Fq/send', target: undefined, coordinates: 'mail/q/42' }))
    expect(logger.lines.map((l) => [l.level, l.message])).toEqual([
      ['warn', 'idctx: rejected message dead-lettered'],
      ['error', 'idctx: rejected message failed'],
    ])
    expect(logger.lines[0]?.fields).toMatchObject({ event: 'idctx.disposition', reason: 'expired', policy: 'dead-letter', topic: 'orders', target: 'orders.idctx-dlq', coordinates: 'orders/0/7' })
    expect(logger.lines[1]?.fields).toMatchObject({ queue: 'mail/q', jobName: 'send', policy: 'fail' })
  })

  it('rate-limits per reason and reports what it held back', () => {
    let now = NOW_MS
    const logger = recordingLogger()
    const observer = createLogObserver({ logger, maxLinesPerInterval: 3, intervalMs: 1000, clock: () => now })
    for (let i = 0; i < 10; i++) observer.onDisposition?.(disposition())
    // Another reason in the same interval is not drowned by the first one.
    observer.onDisposition?.(disposition({ reason: 'bad_signature' }))
    expect(logger.lines.map((l) => l.fields.reason)).toEqual(['expired', 'expired', 'expired', 'bad_signature'])
    now += 1000
    observer.onDisposition?.(disposition())
    expect(logger.lines).toHaveLength(5)
    expect(logger.lines[4]?.fields).toMatchObject({ reason: 'expired', suppressed: 7 })
    for (let i = 0; i < 5; i++) observer.onDisposition?.(disposition())
    expect(logger.lines).toHaveLength(7)
    observer.flush()
    expect(logger.lines[7]).toEqual({
      level: 'warn',
      message: 'idctx: log lines held back by the rate limit',
      fields: { event: 'idctx.suppressed', kind: 'disposition', reason: 'expired', suppressed: 3 },
    })
    observer.flush()
    expect(logger.lines).toHaveLength(8)
  })

  it('writes one JSON line per event through the console fallback', () => {
    const written: [string, string][] = []
    const sink = { info: (s: string) => written.push(['info', s]), warn: (s: string) => written.push(['warn', s]), error: (s: string) => written.push(['error', s]) }
    const observer = createLogObserver({ logger: createConsoleLogger(sink) })
    observer.onDisposition?.(disposition({ policy: 'skip' }))
    expect(written).toHaveLength(1)
    const [level, text] = written[0] as [string, string]
    expect(level).toBe('warn')
    expect(text.startsWith('idctx: rejected message skipped {')).toBe(true)
    expect(JSON.parse(text.slice(text.indexOf('{')))).toMatchObject({ policy: 'skip', reason: 'expired', topic: 'orders' })
  })

  it('refuses a logger without pino methods and unknown options', () => {
    expect(() => createLogObserver({ logger: { info: () => {} } as unknown as IdctxLogger })).toThrow(ConfigError)
    expect(() => createLogObserver({ maxLines: 3 } as never)).toThrow(/maxLines/)
  })
})
