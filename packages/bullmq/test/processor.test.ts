import { describe, it, expect } from 'vitest'
import {
  ConfigError,
  createContextStore,
  createMemoryReplayStore,
  createSigner,
  createVerifier,
  currentContext,
  defaultContextStore,
  generateKey,
  ReasonCode,
  runWithContext,
  VerificationError,
  type IdentityContext,
  type ReplayEntry,
  type ReplayStore,
} from '@idctx/core'
import { createProcessor, jobCoordinates, JobRejectedError, runTxn, schedulerRunOf, wrapQueue, type JobIdentity } from '@idctx/bullmq'
import { UnrecoverableError, type Job } from 'bullmq'
import { jobTraceparent } from '../src/traceparent.js'
import { fakeQueue, thrownBy } from './util.js'

const key = generateKey()
const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] } })
const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
const user: IdentityContext = { sub: 'u-1', tid: 'acme', txn: 'txn-user', pty: 'user', roles: ['clerk'] }
const foreign: IdentityContext = { sub: 'u-foreign', tid: 'acme', txn: 'txn-foreign' }

/** A job as BullMQ hands it to a processor, for the fields the idctx processor reads. */
function fakeJob(fields: { name?: string; data: unknown; id?: string; repeatJobKey?: string; attemptsMade?: number; attemptsStarted?: number }): Job {
  return {
    name: fields.name ?? 'report',
    queueName: 'q',
    queueQualifiedName: 'bull:q',
    id: fields.id ?? '1',
    data: fields.data,
    opts: {},
    attemptsMade: fields.attemptsMade ?? 0,
    attemptsStarted: fields.attemptsStarted ?? 1,
    timestamp: Date.now(),
    repeatJobKey: fields.repeatJobKey,
  } as unknown as Job
}

/** What the wrapped queue stores: the data of an add, or the template of an upsert. */
async function stored(op: 'add' | 'upsert', data: Record<string, unknown>, name = 'report'): Promise<Record<string, unknown>> {
  const { queue, calls } = fakeQueue('q')
  const q = wrapQueue(queue, { signer })
  if (op === 'add') await q.add(name, data, {}, { context: user })
  else await q.upsertJobScheduler('nightly', { every: 1000 }, { name, data }, { context: user })
  const call = calls.added[0] as unknown[]
  return (op === 'add' ? call[2] : (call[3] as { data: Record<string, unknown> }).data) as Record<string, unknown>
}

interface Ran {
  identity: JobIdentity['identity']
  reason: string | undefined
  scheduler: JobIdentity['scheduler']
  current: IdentityContext | undefined
  currentDefault: IdentityContext | undefined
}

function recorder(ran: Ran[], store = defaultContextStore) {
  return async (_job: Job, idctx: JobIdentity) => {
    ran.push({ identity: idctx.identity, reason: idctx.rejection?.reason, scheduler: idctx.scheduler, current: store.current(), currentDefault: currentContext() })
    return 'ran'
  }
}

async function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    (v) => `resolved:${String(v)}`,
    (e: unknown) => (e instanceof JobRejectedError ? `rejected:${e.reason}` : `threw:${String(e)}`),
  )
}

describe('createProcessor', () => {
  it('declares the third (signal) parameter only with abortSignal: true, so BullMQ makes no AbortController per job otherwise', () => {
    expect(createProcessor(async () => 1, { verifier, tenant: 'acme' }).length).toBe(2)
    expect(createProcessor(async () => 1, { verifier, tenant: 'acme', abortSignal: true }).length).toBe(3)
  })

  it('checks its options once, listing every problem', () => {
    const e = thrownBy(() =>
      createProcessor(async () => 1, {
        verifier: {} as never,
        tenant: undefined as never,
        policy: 'skip' as never,
        retryGraceSeconds: -1,
      }),
    )
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues.map((i) => i.path)).toEqual(['verifier', 'tenant', 'policy', 'retryGraceSeconds'])
    for (const tenant of ['acme', ['acme', 'globex'], { any: true } as const, () => 'acme']) {
      expect(() => createProcessor(async () => 1, { verifier, tenant })).not.toThrow()
    }
    expect(() => createProcessor(async () => 1, { verifier, tenant: { any: false } as never })).toThrow(ConfigError)
  })

  it('refuses unknown keys with a did-you-mean, the removed schedulers option with a pointer to grants, and a store without exit', () => {
    const e = thrownBy(() =>
      createProcessor(async () => 1, {
        verifier,
        tenant: 'acme',
        polcy: 'audit',
        schedulers: { nightly: {} },
        contextStore: { run: () => 1, current: () => undefined },
      } as never),
    )
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).issues).toEqual([
      { path: 'polcy', message: "unknown option 'polcy'; did you mean 'policy'?" },
      {
        path: 'schedulers',
        message:
          `unknown option 'schedulers'; removed: a worker no longer signs scheduler runs; upsert the scheduler with a wrapped queue (wrapQueue(...).upsertJobScheduler), which stores a grant its runs are verified by (see docs/bullmq.md, "Job schedulers")`,
      },
      { path: 'contextStore', message: 'must be a ContextStore (run, current and exit)' },
    ])
  })
})

describe('the context a processor runs in', () => {
  it('a verified job runs in its own context only; a rejected one (audit) in none, whatever surrounds the call', async () => {
    const signed = await stored('add', { n: 1 })
    const tampered = { ...signed, n: 2 }
    for (const store of [defaultContextStore, createContextStore()]) {
      const ran: Ran[] = []
      const p = createProcessor(recorder(ran, store), { verifier, tenant: 'acme', policy: 'audit', contextStore: store })
      // Inside a foreign context, in the processor's store and in the default one.
      const inForeign = <T>(fn: () => T) => runWithContext(foreign, () => store.run(foreign, fn))
      expect(await inForeign(() => outcome(p(fakeJob({ data: signed, id: 'a' }))))).toBe('resolved:ran')
      expect(await inForeign(() => outcome(p(fakeJob({ data: tampered, id: 'b' }))))).toBe('resolved:ran')
      expect(await inForeign(() => outcome(p(fakeJob({ data: { n: 1 }, id: 'c' }))))).toBe('resolved:ran')
      expect(ran.map((r) => [r.identity?.txn, r.reason, r.current?.txn, r.currentDefault?.txn])).toEqual([
        ['txn-user', undefined, 'txn-user', store === defaultContextStore ? 'txn-user' : undefined],
        [undefined, 'binding_mismatch', undefined, undefined],
        [undefined, 'missing', undefined, undefined],
      ])
    }
  })

  it('policy fail: a rejected job never reaches the processor, which the foreign context does not change', async () => {
    const ran: Ran[] = []
    const p = createProcessor(recorder(ran), { verifier, tenant: 'acme' })
    expect(await runWithContext(foreign, () => outcome(p(fakeJob({ data: { n: 1 } }))))).toBe('rejected:missing')
    expect(ran).toEqual([])
  })

  it('the option callbacks run without the surrounding context too', async () => {
    const seen: (string | undefined)[] = []
    const p = createProcessor(async () => 'ok', {
      verifier,
      tenant: () => {
        seen.push(currentContext()?.txn)
        return 'acme'
      },
    })
    const data = await stored('add', { n: 1 })
    expect(await runWithContext(foreign, () => outcome(p(fakeJob({ data }))))).toBe('resolved:ok')
    expect(seen).toEqual([undefined])
  })
})

describe('scheduler runs carry a grant', () => {
  const runId = 'repeat:nightly:1700000000000'

  it('a genuine run verifies its grant and runs as the grant principal with a txn of its own', async () => {
    const template = await stored('upsert', { kind: 'daily' })
    expect(typeof template.__idctx === 'string' && template.__idctx.startsWith('g:')).toBe(true)
    const ran: Ran[] = []
    const p = createProcessor(recorder(ran), { verifier, tenant: 'acme' })
    expect(await outcome(p(fakeJob({ data: template, id: runId, repeatJobKey: 'nightly' })))).toBe('resolved:ran')
    // A retry of the same run: same txn. Another run: another txn.
    expect(await outcome(p(fakeJob({ data: template, id: runId, repeatJobKey: 'nightly', attemptsMade: 1, attemptsStarted: 2 })))).toBe('resolved:ran')
    expect(await outcome(p(fakeJob({ data: template, id: 'repeat:nightly:1700000060000', repeatJobKey: 'nightly' })))).toBe('resolved:ran')
    const [a, retry, b] = ran as [Ran, Ran, Ran]
    expect(a.identity).toMatchObject({ sub: 'u-1', tid: 'acme', pty: 'user', roles: ['clerk'], act: { sub: 'orders' } })
    expect(a.identity?.txn).toBe(runTxn(a.scheduler!.grantJti, runId))
    expect(a.identity?.txn).toMatch(/^[0-9a-f]{32}$/)
    expect(a.scheduler).toEqual({ id: 'nightly', grantJti: a.identity?.claims.jti, grantTxn: 'txn-user' })
    expect(a.current?.txn).toBe(a.identity?.txn)
    expect(retry.identity?.txn).toBe(a.identity?.txn)
    expect(b.identity?.txn).not.toBe(a.identity?.txn)
    expect(a.identity?.txn).not.toBe('txn-user')
  })

  it('an unsigned job never gets an identity, whatever its id or repeatJobKey: missing', async () => {
    const p = createProcessor(async () => 'ran', { verifier, tenant: 'acme' })
    expect(await outcome(p(fakeJob({ data: { kind: 'daily' }, id: runId, repeatJobKey: 'nightly' })))).toBe('rejected:missing')
  })

  it('a grant on a job that is not a run of its scheduler, or on edited data: binding_mismatch', async () => {
    const template = await stored('upsert', { kind: 'daily' })
    const p = createProcessor(async () => 'ran', { verifier, tenant: 'acme' })
    const cases = [
      fakeJob({ data: template, id: '17' }),
      fakeJob({ data: template, id: runId }),
      fakeJob({ data: template, id: '17', repeatJobKey: 'nightly' }),
      fakeJob({ data: template, id: 'repeat:other:1700000000000', repeatJobKey: 'other' }),
      fakeJob({ data: template, id: 'repeat:nightly:1700000000000x', repeatJobKey: 'nightly' }),
      fakeJob({ data: { ...template, kind: 'all-tenants' }, id: runId, repeatJobKey: 'nightly' }),
      fakeJob({ data: template, id: runId, repeatJobKey: 'nightly', name: 'other' }),
    ]
    expect(await Promise.all(cases.map((j) => outcome(p(j))))).toEqual(cases.map(() => 'rejected:binding_mismatch'))
  })

  it('a message token as a grant, or a grant as a message token: wrong_typ', async () => {
    const template = await stored('upsert', { kind: 'daily' })
    const message = await stored('add', { kind: 'daily' })
    const p = createProcessor(async () => 'ran', { verifier, tenant: 'acme' })
    const grantAsToken = { ...template, __idctx: (template.__idctx as string).slice(2) }
    const tokenAsGrant = { ...message, __idctx: `g:${message.__idctx as string}` }
    expect(await outcome(p(fakeJob({ data: grantAsToken, id: '17' })))).toBe('rejected:wrong_typ')
    expect(await outcome(p(fakeJob({ data: grantAsToken, id: runId, repeatJobKey: 'nightly' })))).toBe('rejected:wrong_typ')
    expect(await outcome(p(fakeJob({ data: tokenAsGrant, id: runId, repeatJobKey: 'nightly' })))).toBe('rejected:wrong_typ')
  })

  it('knows a run by its repeatJobKey and the repeat:<id>:<millis> job id only', () => {
    expect(schedulerRunOf({ repeatJobKey: 'nightly', id: 'repeat:nightly:1700000000000' })).toBe('nightly')
    expect(schedulerRunOf({ repeatJobKey: 'a:b', id: 'repeat:a:b:1' })).toBe('a:b')
    expect(schedulerRunOf({ repeatJobKey: 'nightly', id: '17' })).toBeUndefined()
    expect(schedulerRunOf({ repeatJobKey: 'nightly', id: 'repeat:nightly-2:1' })).toBeUndefined()
    expect(schedulerRunOf({ repeatJobKey: 'nightly', id: 'repeat:nightly:' })).toBeUndefined()
    expect(schedulerRunOf({ repeatJobKey: 'nightly', id: 'repeat:nightly:1x' })).toBeUndefined()
    expect(schedulerRunOf({ repeatJobKey: '', id: 'repeat::1' })).toBeUndefined()
    expect(schedulerRunOf({ repeatJobKey: undefined, id: 'repeat:nightly:1' })).toBeUndefined()
    expect(schedulerRunOf({ repeatJobKey: 'nightly', id: undefined })).toBeUndefined()
  })

  it('derives the run txn from the grant jti and the job id only', () => {
    expect(runTxn('j1', 'repeat:n:1')).toBe(runTxn('j1', 'repeat:n:1'))
    expect(new Set([runTxn('j1', 'repeat:n:1'), runTxn('j1', 'repeat:n:2'), runTxn('j2', 'repeat:n:1')]).size).toBe(3)
    expect(runTxn('j1', 'repeat:n:1')).toMatch(/^[0-9a-f]{32}$/)
  })
})

describe('first delivery', () => {
  it('is the first attempt only: a retry (attemptsMade > 0) or a stalled re-run (attemptsStarted > 1) is not', async () => {
    const entries: ReplayEntry[] = []
    const inner = createMemoryReplayStore()
    const replay: ReplayStore = {
      check(entry) {
        entries.push(entry)
        return inner.check(entry)
      },
    }
    const p = createProcessor(async () => 'ran', { verifier: createVerifier({ audience: 'shop', issuers: { orders: [key] }, replay }), tenant: 'acme' })
    const data = await stored('add', { n: 1 })
    // [attemptsMade, attemptsStarted]: first run; retry; stalled re-run; retried by hand with
    // resetAttemptsStarted; a job written before BullMQ counted starts.
    const attempts: [number, number][] = [[0, 1], [1, 2], [0, 2], [1, 1], [0, 0]]
    const results = []
    for (const [made, started] of attempts) results.push(await outcome(p(fakeJob({ data, id: 'j-1', attemptsMade: made, attemptsStarted: started }))))
    expect(results).toEqual(['resolved:ran', 'resolved:ran', 'resolved:ran', 'resolved:ran', 'rejected:replayed'])
    expect(entries.map((e) => e.firstDelivery)).toEqual([true, false, false, false, true])
  })
})

describe('coordinates and events', () => {
  it('percent-encode the job id: no newline or control character reaches a store, an event or a log', async () => {
    const id = 'inv\n1\u001b[31mred/x'
    expect(jobCoordinates({ queueQualifiedName: 'bull:q', id })).toBe('bull:q/inv%0A1%1B%5B31mred%2Fx')
    const events: Record<string, unknown>[] = []
    const p = createProcessor(async () => 'ran', {
      verifier,
      tenant: 'acme',
      observer: { onDisposition: (e) => events.push({ ...e }) },
    })
    expect(await outcome(p(fakeJob({ data: { n: 1 }, id })))).toBe('rejected:missing')
    expect(events).toEqual([
      {
        reason: 'missing',
        destination: 'bullmq:q/report',
        policy: 'fail',
        target: 'failed',
        coordinates: 'bull:q/inv%0A1%1B%5B31mred%2Fx',
        tokenSha256: undefined,
        traceparent: undefined,
      },
    ])
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
