import { context, trace, TraceFlags } from '@opentelemetry/api'
import { describe, expect, it } from 'vitest'
import { contextFromTraceparent, formatTraceparent, parseTraceparent } from '@idctx/otel'

const TID = '4bf92f3577b34da6a3ce929d0e0e4736'
const SID = '00f067aa0ba902b7'

describe('parseTraceparent', () => {
  it('reads a valid version-00 string as a remote span context', () => {
    expect(parseTraceparent(`00-${TID}-${SID}-01`)).toEqual({ traceId: TID, spanId: SID, traceFlags: TraceFlags.SAMPLED, isRemote: true })
    expect(parseTraceparent(`00-${TID}-${SID}-00`)?.traceFlags).toBe(TraceFlags.NONE)
  })

  it('accepts a future version with trailing fields', () => {
    expect(parseTraceparent(`01-${TID}-${SID}-01-extra`)?.traceId).toBe(TID)
  })

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['version ff', `ff-${TID}-${SID}-01`],
    ['zero trace id', `00-${'0'.repeat(32)}-${SID}-01`],
    ['zero span id', `00-${TID}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TID.toUpperCase()}-${SID}-01`],
    ['short trace id', `00-${TID.slice(1)}-${SID}-01`],
    ['version 00 with trailing data', `00-${TID}-${SID}-01-extra`],
    ['no separators', `00${TID}${SID}01`],
  ])('rejects %s', (_name, value) => {
    expect(parseTraceparent(value)).toBeUndefined()
  })
})

describe('formatTraceparent / contextFromTraceparent', () => {
  it('round-trips', () => {
    const tp = `00-${TID}-${SID}-01`
    const sc = parseTraceparent(tp)
    expect(sc).toEqual({ traceId: TID, spanId: SID, traceFlags: 1, isRemote: true })
    expect(formatTraceparent(sc!)).toBe(tp)
  })

  it('puts the remote context into a context, or leaves the parent as is', () => {
    const c = contextFromTraceparent(`00-${TID}-${SID}-01`, context.active())
    expect(trace.getSpanContext(c)?.spanId).toBe(SID)
    expect(contextFromTraceparent('nope', context.active())).toBe(context.active())
  })
})

describe('scope', () => {
  it('the tracer and meter version is the package version', async () => {
    const { readFile } = await import('node:fs/promises')
    const { SCOPE_NAME, SCOPE_VERSION } = await import('@idctx/otel')
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string }
    expect([SCOPE_NAME, SCOPE_VERSION]).toEqual([pkg.name, pkg.version])
  })
})
