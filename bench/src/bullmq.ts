import { randomUUID } from 'node:crypto'
import { createSigner, createVerifier, generateKey, runWithContext } from '@idctx/core'
import { createProcessor, wrapQueue } from '@idctx/bullmq'
import { Queue, Worker, type Job } from 'bullmq'
import { fmt, pct, table, type Ratios } from './harness.js'

const CTX = { sub: 'u-4f1c9a', tid: 'acme', txn: randomUUID(), pty: 'user' as const }
const userOf = (i: number) => ({ ...CTX, sub: `u-${i.toString(16).padStart(6, '0')}` })

function connection() {
  const u = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null }
}

const data = (i: number) => ({ orderId: `o-${i}`, tenant: 'acme', amount: i, lines: [{ sku: 'a', qty: 1 }] })

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now()
  await fn()
  return (performance.now() - t) / 1000
}

/** Drains `n` jobs with a worker at concurrency 50; returns jobs per second. */
async function drain(queueName: string, prefix: string, n: number, processor: (job: Job) => Promise<unknown>): Promise<number> {
  let done = 0
  let resolve!: () => void
  const finished = new Promise<void>((r) => (resolve = r))
  const t = performance.now()
  const worker = new Worker(queueName, processor, {
    connection: connection(),
    prefix,
    concurrency: 50,
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 0 },
  })
  worker.on('completed', () => {
    if (++done === n) resolve()
  })
  worker.on('failed', (_job, err) => {
    console.error('bench job failed', err.message)
    if (++done === n) resolve()
  })
  await finished
  const s = (performance.now() - t) / 1000
  await worker.close()
  return n / s
}

export async function runBullmqBench(log: (s: string) => void, ratios: Ratios = {}): Promise<string> {
  // EdDSA signs fast and verifies slowly; RS256 the other way round. A worker draining jobs that
  // were each added alone pays one verification per job, so both are measured.
  const setups = (['EdDSA', 'RS256'] as const).map((alg) => {
    const key = generateKey(alg, { kid: `bench-bullmq-${alg}` })
    const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
    const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] }, algorithms: [alg] })
    return { alg, signer, processor: createProcessor(async () => undefined, { verifier, tenant: 'acme' }) }
  })
  const N = Number(process.env.IDCTX_BENCH_JOBS ?? 4000)
  const rows: string[][] = []
  const results: Record<string, number> = {}
  const rounds = 3
  for (let r = 0; r < rounds; r++) {
    // 'users': EdDSA, each of the 50 adds in flight in the context of another user.
    for (const mode of ['plain', 'idctx', 'idctx-rs256', 'users'] as const) {
      const setup = setups[mode === 'idctx-rs256' ? 1 : 0] as (typeof setups)[number]
      for (const shape of ['single', 'bulk'] as const) {
        if (mode === 'users' && shape === 'bulk') continue
        const prefix = `idctx-bench-${randomUUID().slice(0, 8)}`
        const queue = new Queue('invoices', { connection: connection(), prefix })
        const signed = wrapQueue(queue, { signer: setup.signer })
        log(`bullmq: round ${r + 1}/${rounds} ${mode} ${shape} (${N} jobs)`)
        const addSeconds = await timed(async () => {
          if (shape === 'single') {
            // 50 producers in flight at once, as a busy service would add jobs.
            let next = 0
            await Promise.all(
              Array.from({ length: 50 }, async (_, producer) => {
                while (next < N) {
                  const i = next++
                  if (mode === 'plain') await queue.add('invoice', data(i))
                  else await runWithContext(mode === 'users' ? userOf(producer) : CTX, () => signed.add('invoice', data(i)))
                }
              }),
            )
          } else {
            for (let i = 0; i < N; i += 100) {
              const jobs = Array.from({ length: 100 }, (_, k) => ({ name: 'invoice', data: data(i + k) }))
              if (mode === 'plain') await queue.addBulk(jobs)
              else await runWithContext(CTX, () => signed.addBulk(jobs))
            }
          }
        })
        const workerRate = await drain('invoices', prefix, N, mode === 'plain' ? async () => undefined : setup.processor)
        const k = (what: string) => `${mode}|${shape}|${what}`
        ;(results[k('add')] ??= 0), (results[k('add')] = Math.max(results[k('add')] as number, N / addSeconds))
        ;(results[k('worker')] ??= 0), (results[k('worker')] = Math.max(results[k('worker')] as number, workerRate))
        await queue.obliterate({ force: true })
        await queue.close()
      }
    }
  }
  for (const shape of ['single', 'bulk'] as const) {
    for (const what of ['add', 'worker'] as const) {
      const plain = results[`plain|${shape}|${what}`] as number
      const idctx = results[`idctx|${shape}|${what}`] as number
      const rs = results[`idctx-rs256|${shape}|${what}`] as number
      const name = what === 'add' ? (shape === 'single' ? 'Queue.add ×50 in flight' : 'Queue.addBulk (100 per call)') : `Worker (concurrency 50), jobs from ${shape === 'single' ? 'single adds' : 'addBulk'}`
      rows.push([`${name}${shape === 'single' ? ', one user' : ''}`, fmt(plain), fmt(idctx), pct(idctx, plain), fmt(rs), pct(rs, plain)])
      ratios[`bullmq.${what}.${shape}${shape === 'single' ? '.one-user' : ''}.vs-plain`] = idctx / plain
      if (shape === 'single') {
        const users = results[`users|${shape}|${what}`] as number
        rows.push([`${name}, from 50 users`, fmt(plain), fmt(users), pct(users, plain), '–', '–'])
        ratios[`bullmq.${what}.${shape}.users.vs-plain`] = users / plain
      }
    }
  }
  return `${table(['case', 'plain jobs/s', 'idctx EdDSA jobs/s', 'EdDSA/plain', 'idctx RS256 jobs/s', 'RS256/plain'], rows)}\n\nBest of ${rounds} interleaved rounds of ${N} jobs each; no-op processor; batch profile on (the default: adds issued in one event-loop turn share one token). *From 50 users*: each of the 50 adds in flight in the context of another user.`
}
