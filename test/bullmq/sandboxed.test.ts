import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { exportPublicJwk, generateKey, createSigner } from '@idctx/core'
import { wrapQueue } from '@idctx/bullmq'
import { finished, harness, userContext, AUDIENCE, type Harness } from './harness.js'

// BullMQ sandboxed processors: the Worker gets a file; BullMQ runs its default export in a child
// process (or a worker thread) with a serialized job. createProcessor's result is that export.
const PROCESSOR = fileURLToPath(new URL('./fixtures/sandboxed-processor.mjs', import.meta.url))

describe('bullmq: a sandboxed processor built with createProcessor', () => {
  let h: Harness
  afterEach(async () => {
    await h.cleanup()
  })

  for (const useWorkerThreads of [false, true]) {
    it(`${useWorkerThreads ? 'worker thread' : 'child process'}: a signed job runs in its identity; tampered and unsigned jobs fail with their reason, without retries`, async () => {
      h = harness()
      const key = generateKey('EdDSA', { kid: `orders-sandbox-${useWorkerThreads}` })
      const signer = createSigner({ issuer: 'orders', audience: AUDIENCE, key })
      const env = { ...process.env, IDCTX_TEST_ORDERS_JWKS: JSON.stringify({ keys: [exportPublicJwk(key)] }) }
      const raw = h.queue('sandboxed')
      const queue = wrapQueue(raw, { signer })
      const ctx = userContext()
      const good = await queue.add('invoice', { invoiceId: 'inv-1', total: 3 }, { attempts: 3 }, { context: ctx })
      const tampered = await queue.add('invoice', { invoiceId: 'inv-2', total: 4 }, { attempts: 3 }, { context: ctx })
      const stored = JSON.parse((await h.redis().hget(h.jobKey('sandboxed', tampered.id as string), 'data')) as string) as Record<string, unknown>
      await h.redis().hset(h.jobKey('sandboxed', tampered.id as string), 'data', JSON.stringify({ ...stored, total: 4000 }))
      const unsigned = await raw.add('invoice', { invoiceId: 'inv-3', total: 5 }, { attempts: 3 })

      // As a user's deployment runs it: the built packages, without the test runner's
      // `@idctx/source` condition (which points at TypeScript sources) in the sandbox's flags.
      h.worker('sandboxed', PROCESSOR, useWorkerThreads ? { useWorkerThreads: true, workerThreadsOptions: { execArgv: [], env } } : { workerForkOptions: { env, execArgv: [] } })
      {
        const ok = await finished(raw, good.id)
        expect(ok.state).toBe('completed')
        expect(ok.job.returnvalue).toEqual({
          current: { sub: ctx.sub, tid: 'acme', txn: ctx.txn },
          identity: { sub: ctx.sub, tid: 'acme' },
          keys: ['invoiceId', 'total'],
        })
        for (const [job, reason] of [
          [tampered, 'binding_mismatch'],
          [unsigned, 'missing'],
        ] as const) {
          const r = await finished(raw, job.id)
          expect(r.state).toBe('failed')
          expect(r.job.failedReason).toBe(`idctx rejected: ${reason}`)
          expect(r.job.attemptsMade).toBe(1)
        }
      }
    })
  }
})
