import { describe, it, expect } from 'vitest'
import { ConfigError, createSigner, createVerifier, generateKey, ReasonCode, VerificationError } from '@idctx/core'
import { createProcessor, JobRejectedError } from '@idctx/bullmq'
import { UnrecoverableError, type Job } from 'bullmq'
import { schedulerFor, resolveSchedulers } from '../src/scheduler.js'
import { jobTraceparent } from '../src/traceparent.js'

const key = generateKey()
const verifier = createVerifier({ audience: 'shop', issuers: { sched: [key] } })
const signer = createSigner({ issuer: 'sched', audience: 'shop', key })

describe('createProcessor', () => {
  it('returns a three-parameter BullMQ processor, so BullMQ hands it the abort signal', () => {
    const p = createProcessor(async () => 1, { verifier, tenant: 'acme' })
    expect(p.length).toBe(3)
  })

  it('checks its options once, listing every problem', () => {
    try {
      createProcessor(async () => 1, {
        verifier: {} as never,
        tenant: undefined as never,
        policy: 'skip' as never,
        retryGraceSeconds: -1,
        schedulers: { nightly: { context: { sub: '', tid: 'acme', pty: 'user' as never }, signer: {} as never } },
      })
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError)
      expect((e as ConfigError).issues.map((i) => i.path)).toEqual([
        'verifier',
        'tenant',
        'policy',
        'retryGraceSeconds',
        'schedulers.nightly.signer',
        'schedulers.nightly.context.sub',
        'schedulers.nightly.context.pty',
      ])
    }
    for (const tenant of ['acme', ['acme', 'globex'], { any: true } as const, () => 'acme']) {
      expect(() => createProcessor(async () => 1, { verifier, tenant })).not.toThrow()
    }
    expect(() => createProcessor(async () => 1, { verifier, tenant: { any: false } as never })).toThrow(ConfigError)
  })
})

describe('JobRejectedError', () => {
  it('is an UnrecoverableError, by class and by name, carrying the reason code', () => {
    const e = new JobRejectedError(new VerificationError(ReasonCode.TenantMismatch, 'token tenant is not the expected tenant', 'tid'))
    expect(e).toBeInstanceOf(UnrecoverableError)
    expect(e.name).toBe('UnrecoverableError')
    expect(e.message).toBe('idctx rejected: tenant_mismatch')
    expect(e.reason).toBe('tenant_mismatch')
    expect(e.code).toBe('ERR_IDCTX_JOB_REJECTED')
    expect(e.cause.claim).toBe('tid')
  })
})

describe('scheduler runs', () => {
  const issues: { path: string; message: string }[] = []
  const schedulers = resolveSchedulers({ nightly: { context: { sub: 'svc', tid: 'acme' }, signer } }, issues)
  const job = (fields: { repeatJobKey?: string; id?: string }) => fields as unknown as Job

  it('are signed by the scheduler only for its own run ids, and only without a token of their own', () => {
    expect(issues).toEqual([])
    expect(schedulerFor(schedulers, job({ repeatJobKey: 'nightly', id: 'repeat:nightly:1700000000000' }), {})).toBeDefined()
    expect(schedulerFor(schedulers, job({ repeatJobKey: 'nightly', id: '17' }), {})).toBeUndefined()
    expect(schedulerFor(schedulers, job({ repeatJobKey: 'nightly', id: 'repeat:nightly-2:1' }), {})).toBeUndefined()
    expect(schedulerFor(schedulers, job({ repeatJobKey: 'other', id: 'repeat:other:1' }), {})).toBeUndefined()
    expect(schedulerFor(schedulers, job({ id: 'repeat:nightly:1' }), {})).toBeUndefined()
    expect(schedulerFor(schedulers, job({ repeatJobKey: 'nightly', id: 'repeat:nightly:1' }), { __idctx: 'x' })).toBeUndefined()
    expect(schedulerFor(schedulers, job({ repeatJobKey: 'nightly', id: 'repeat:nightly:1' }), undefined)).toBeUndefined()
  })
})

describe('jobTraceparent', () => {
  it('reads a valid traceparent from BullMQ telemetry metadata, and nothing else', () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    expect(jobTraceparent({ telemetry: { metadata: JSON.stringify({ traceparent: tp }) } })).toBe(tp)
    expect(jobTraceparent({ telemetry: { metadata: JSON.stringify({ traceparent: 'nope' }) } })).toBeUndefined()
    expect(jobTraceparent({ telemetry: { metadata: '{' } })).toBeUndefined()
    expect(jobTraceparent({})).toBeUndefined()
    expect(jobTraceparent(undefined)).toBeUndefined()
  })
})
