import { randomBytes } from 'node:crypto'
import {
  createKeySet,
  createMemoryRevocationStore,
  createRemoteJwks,
  createSigner,
  createVerifier,
  exportPublicJwk,
  generateKey,
  kafkaDestination,
  kafkaLeaf,
  KeyError,
  type IdctxKey,
  type IdentityContext,
  type KeySet,
  type RemoteJwks,
  type RemoteJwksOptions,
  type RevocationStore,
} from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import type { Message, RetryOptions } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { JwksServer, recordingThrows, type JwksMode, type Thrown } from './jwks-server.js'
import { AUDIENCE, KafkaHarness, RecordingObserver, rejectReason, uniqueName, waitFor } from './helpers.js'

// A real HTTP JWKS server, a real broker, a kafkajs consumer wrapped with the default dead-letter
// policy: a key source that cannot answer makes `verify` throw KeyError, kafkajs retries the
// record, and no genuine record is ever dead-lettered.

const h = new KafkaHarness('keyout')
const servers: JwksServer[] = []
afterAll(async () => {
  await h.close()
  for (const s of servers) await s.close()
})

const ISSUER = 'svc-orders'
const acme: IdentityContext = { sub: 'u-7', tid: 'acme', txn: 'txn-key-outage' }
/** What docs/key-rotation.md tells users to give a verifying consumer: retries that outlast a JWKS blip. */
const RETRY: RetryOptions = { retries: 50, initialRetryTime: 100, maxRetryTime: 1000 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Setup {
  readonly topic: string
  readonly dlq: string
  readonly k1: IdctxKey
  readonly keys: KeySet
  readonly server: JwksServer
  readonly remote: RemoteJwks
  readonly observer: RecordingObserver
  /** Record keys the handler ran for, in order. */
  readonly handled: string[]
  /** Errors the wrapped eachMessage threw to kafkajs (each one a retry). */
  readonly thrown: Thrown[]
  /** kafkajs consumer crashes (retries exhausted) and whether kafkajs restarted the consumer. */
  readonly crashes: { error: string; restart: boolean }[]
  /** Sends `n` records signed by the key set's active key, one `send` (one token) each. */
  send(prefix: string, n: number, gapMs?: number): Promise<string[]>
  /** Sends records with the given ready-made headers in one `send` through a plain producer. */
  sendRaw(messages: Message[]): Promise<void>
}

async function setup(name: string, options: { remote: RemoteJwksOptions; retry?: RetryOptions; revocation?: RevocationStore }): Promise<Setup> {
  const { topic, dlq } = await h.createTopicWithDlq(name)
  const k1 = generateKey('EdDSA', { kid: uniqueName(`${name}-k1`) })
  const keys = createKeySet({ active: k1 })
  const server = await JwksServer.of(keys).start()
  servers.push(server)
  const remote = createRemoteJwks(server.url, options.remote)
  const observer = new RecordingObserver()
  const verifier = createVerifier({
    audience: AUDIENCE,
    issuers: { [ISSUER]: remote },
    observer,
    ...(options.revocation === undefined ? {} : { revocation: options.revocation }),
  })
  // What a service does at start: every issuer's JWKS fetched once, unreachable ones reported.
  expect(await verifier.ready()).toEqual({ ok: true, issuers: { [ISSUER]: { ok: true } } })

  const handled: string[] = []
  const thrown: Thrown[] = []
  const crashes: { error: string; restart: boolean }[] = []
  const raw = h.consumer({ retry: options.retry ?? RETRY })
  raw.on(raw.events.CRASH, (e) => void crashes.push({ error: e.payload.error.name, restart: e.payload.restart }))
  const consumer = wrapConsumer(recordingThrows(raw, thrown), {
    verifier,
    tenant: 'acme',
    observer,
    deadLetter: { producer: await h.producer() },
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })

  const producer = wrapProducer(await h.producer(), { signer: createSigner({ issuer: ISSUER, audience: AUDIENCE, key: keys }) })
  const plain = await h.producer()
  const send = async (prefix: string, n: number, gapMs = 0) => {
    const sent: string[] = []
    for (let i = 0; i < n; i++) {
      const key = `${prefix}-${i}`
      await producer.send({ topic, messages: [{ key, value: `value of ${key}` }] }, { context: acme })
      sent.push(key)
      if (gapMs > 0) await sleep(gapMs)
    }
    return sent
  }
  const s: Setup = { topic, dlq, k1, keys, server, remote, observer, handled, thrown, crashes, send, sendRaw: async (messages) => void (await plain.send({ topic, messages })) }
  // One record under the known key: the group is joined and consuming before the test starts.
  await send('warm', 1)
  await waitFor('the warm-up record', () => handled.length === 1, 30_000)
  return s
}

/** A record signed by `key` for `iss` = the trusted issuer, ready to send through a plain producer. */
function signedRecord(topic: string, key: IdctxKey, recordKey: string): Message {
  const value = `value of ${recordKey}`
  const signer = createSigner({ issuer: ISSUER, audience: AUDIENCE, key })
  const { token } = signer.sign(acme, [{ destination: kafkaDestination(topic), leaf: kafkaLeaf(topic, recordKey, value) }])
  return { key: recordKey, value, headers: { idctx: token } }
}

/** Every thrown error is a KeyError that names the issuer and the URL, and holds no token. */
function expectKeyErrors(thrown: readonly Thrown[], url: string): KeyError[] {
  const errors = thrown.map((t) => t.error)
  for (const e of errors) {
    expect(e).toBeInstanceOf(KeyError)
    const k = e as KeyError
    expect(k.issuer).toBe(ISSUER)
    expect(k.url).toBe(url)
    expect(k.message).not.toMatch(/eyJ[\w-]*\.[\w-]+\./) // never a compact JWS
  }
  return errors as KeyError[]
}

const N = 20

describe('a JWKS outage while records of a key the consumer never fetched arrive', () => {
  it.each<{ mode: Exclude<JwksMode, 'ok'>; expectKeyError: (e: KeyError) => void }>([
    { mode: '500', expectKeyError: (e) => expect([e.status, e.message]).toEqual([500, expect.stringMatching(/: HTTP 500$/)]) },
    { mode: 'hang', expectKeyError: (e) => expect([e.networkCode, e.message]).toEqual(['TimeoutError', expect.stringMatching(/fetch failed \(TimeoutError\)$/)]) },
    { mode: 'down', expectKeyError: (e) => expect([e.networkCode, e.message]).toEqual(['ECONNREFUSED', expect.stringMatching(/fetch failed \(ECONNREFUSED\)$/)]) },
  ])('$mode: 0 dead-lettered, KeyError retries during the outage, all $mode records handled after it', async ({ mode, expectKeyError }) => {
    const s = await setup(`out-${mode}`, { remote: { cooldownMs: 1000, timeoutMs: 800 } })
    const fetchesBefore = s.remote.fetches
    await s.server.setMode(mode)
    // The producer rotates without staging: the consumer meets a kid it has never fetched.
    const k2 = generateKey('EdDSA', { kid: uniqueName('out-k2') })
    s.keys.rotate(k2)
    const outageStarted = Date.now()
    const sent = await s.send('r', N)
    await waitFor('KeyError retries', () => s.thrown.length >= 3, 20_000)
    await sleep(Math.max(0, outageStarted + 2500 - Date.now()))
    // A 2.5 s outage: nothing handled, nothing dead-lettered, kafkajs kept retrying.
    expect(s.handled).toEqual(['warm-0'])
    expect(s.observer.dispositions).toEqual([])
    const duringOutage = s.thrown.length
    const fetchesDuringOutage = s.remote.fetches - fetchesBefore
    expect(fetchesDuringOutage).toBeGreaterThanOrEqual(1) // retried fetches, one per cooldown at most
    expect(fetchesDuringOutage).toBeLessThanOrEqual(Math.floor((Date.now() - outageStarted) / 1000) + 1)

    await s.server.setMode('ok')
    await waitFor(`${N} records handled after the outage`, () => s.handled.length === N + 1, 30_000)
    expect(s.handled).toEqual(['warm-0', ...sent])
    expect(s.observer.rejected).toEqual([])
    expect(s.observer.dispositions).toEqual([])
    expect(await h.recordCount(s.dlq)).toBe(0)
    expect(s.observer.kids).toEqual(new Set([s.k1.kid, k2.kid]))
    expect(s.crashes).toEqual([]) // the retry settings outlasted the outage
    // Each retry says why: the fetch failed (status, network code), or the cooldown holds the next
    // fetch back (with the last failure, when there was one). At least one names the outage itself.
    const errors = expectKeyErrors(s.thrown, s.server.url)
    const failures = errors.filter((e) => !e.message.includes('held back by the cooldown'))
    expect(failures.length).toBeGreaterThanOrEqual(1)
    expectKeyError(failures[0] as KeyError)
    console.log(`[key-outage] ${mode}: ${N} records, ${duringOutage} KeyError retries during the outage, ${s.remote.fetches - fetchesBefore} fetches, 0 dead-lettered`)
  })

  it('kafkajs gives up (few retries): the consumer crashes, restarts itself, and still dead-letters nothing', async () => {
    const s = await setup('out-crash', { remote: { cooldownMs: 1000, timeoutMs: 800 }, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 200 } })
    await s.server.setMode('500')
    s.keys.rotate(generateKey('EdDSA', { kid: uniqueName('crash-k2') }))
    const outageStarted = Date.now()
    const sent = await s.send('c', N)
    await waitFor('a crash', () => s.crashes.length >= 1, 20_000)
    await sleep(Math.max(0, outageStarted + 2500 - Date.now()))
    expect(s.handled).toEqual(['warm-0'])
    await s.server.setMode('ok')
    await waitFor(`${N} records handled after the outage`, () => s.handled.length === N + 1, 30_000)
    expect(s.handled).toEqual(['warm-0', ...sent])
    expect(s.observer.dispositions).toEqual([])
    expect(await h.recordCount(s.dlq)).toBe(0)
    // kafkajs wraps the exhausted retries; it restarts (restartOnFailure defaults to yes) and the
    // uncommitted records are delivered again.
    expect(s.crashes.length).toBeGreaterThanOrEqual(1)
    expect(s.crashes.every((c) => c.error === 'KafkaJSNumberOfRetriesExceeded' && c.restart)).toBe(true)
    expectKeyErrors(s.thrown, s.server.url)
    console.log(`[key-outage] crash: ${N} records, ${s.crashes.length} crash+restart, ${s.thrown.length} KeyError retries, 0 dead-lettered`)
  })
})

describe('a JWKS that shrinks', () => {
  it('a removed key, then {"keys":[]}: 0 rejects inside the retention window; unknown_kid once it has passed', async () => {
    const keepRemovedKeysMs = 8000
    const s = await setup('shrink', { remote: { cooldownMs: 500, maxAgeMs: 300, timeoutMs: 1000, keepRemovedKeysMs } })
    const k2 = generateKey('EdDSA', { kid: uniqueName('shrink-k2') })
    // Tokens of k1 (a replica not yet rolled out, or records in flight) keep coming.
    const sendK1 = async (prefix: string, n: number, gapMs = 0) => {
      const keys: string[] = []
      for (let i = 0; i < n; i++) {
        const key = `${prefix}-${i}`
        await s.sendRaw([signedRecord(s.topic, s.k1, key)])
        keys.push(key)
        if (gapMs > 0) await sleep(gapMs)
      }
      return keys
    }
    const sent: string[] = ['warm-0']

    // 1. k1 disappears from the JWKS. Verifying k1 records drives the background refresh (maxAgeMs).
    s.server.body = () => ({ keys: [exportPublicJwk(k2)] })
    const shrunkAt = Date.now()
    let n = 0
    while (s.remote.lastGoodFetchAt < shrunkAt) {
      sent.push(...(await sendK1(`before-refresh-${n++}`, 1, 100)))
      if (Date.now() - shrunkAt > 10_000) throw new Error('the consumer never refreshed')
    }
    const removedAt = Date.now()
    sent.push(...(await sendK1('shrunk', N, 20)))
    await waitFor('records of the removed key', () => s.handled.length === sent.length, 20_000)

    // 2. The JWKS comes back empty: a failed refresh, the last good keys stay.
    s.server.body = () => ({ keys: [] })
    const emptyAt = Date.now()
    const fetchesBeforeEmpty = s.remote.fetches
    while (s.server.requestsSince(emptyAt).length === 0) {
      sent.push(...(await sendK1(`before-empty-${n++}`, 1, 100)))
      if (Date.now() - emptyAt > 10_000) throw new Error('the consumer never refreshed')
    }
    await waitFor('the empty JWKS fetch to end', () => s.remote.fetches > fetchesBeforeEmpty)
    await sleep(50)
    expect(s.remote.lastGoodFetchAt).toBeLessThan(emptyAt) // the empty JWKS did not replace the keys
    sent.push(...(await sendK1('empty', N, 20)))
    await waitFor('records after the empty JWKS', () => s.handled.length === sent.length, 20_000)
    expect(s.handled).toEqual(sent)
    expect(s.observer.dispositions).toEqual([])
    expect(await h.recordCount(s.dlq)).toBe(0)
    expect(Date.now()).toBeLessThan(removedAt + keepRemovedKeysMs) // all of it inside the window
    const inside = sent.length - 1

    // 3. Past the retention window a removed key is gone: retired, not trusted forever.
    s.server.body = () => ({ keys: [exportPublicJwk(k2)] })
    await sleep(Math.max(0, removedAt + keepRemovedKeysMs + 200 - Date.now()))
    await sendK1('late', 3)
    await waitFor('3 dead letters', () => s.observer.dispositions.length === 3, 20_000)
    expect(s.observer.dispositions.map((d) => d.reason)).toEqual(['unknown_kid', 'unknown_kid', 'unknown_kid'])
    expect((await h.readAll(s.dlq)).map(rejectReason)).toEqual(['unknown_kid', 'unknown_kid', 'unknown_kid'])
    expect(s.handled).toEqual(sent)
    console.log(`[key-outage] shrink: ${inside} records of a removed key inside a ${keepRemovedKeysMs} ms window, 0 rejects; 3 after it, 3 unknown_kid`)
  })
})

describe('rotation without stage() right after the consumer refreshed', () => {
  it('records of the new kid arriving during the cooldown are retried, then handled: 0 rejects, one fetch', async () => {
    const cooldownMs = 2000
    const s = await setup('nostage', { remote: { cooldownMs, timeoutMs: 1000 } })
    await sleep(cooldownMs)
    await s.remote.refresh() // the consumer just refreshed: the next fetch is one cooldown away
    const refreshedAt = Date.now()
    const fetchesBefore = s.server.requests.length
    const k2 = generateKey('EdDSA', { kid: uniqueName('nostage-k2') })
    s.keys.rotate(k2) // published and signing at once: no stage()
    // Records keep coming, one token each, until shortly before the cooldown ends.
    const sent: string[] = []
    let lastSignedAt = 0
    while (Date.now() < refreshedAt + cooldownMs - 400) {
      lastSignedAt = Date.now()
      sent.push(...(await s.send(`n${sent.length}`, 1, 20)))
    }
    expect(lastSignedAt - refreshedAt).toBeLessThan(cooldownMs) // every record was signed during the cooldown
    expect(sent.length).toBeGreaterThanOrEqual(10)
    await waitFor(`${sent.length} records handled`, () => s.handled.length === sent.length + 1, 30_000)
    expect(s.handled).toEqual(['warm-0', ...sent])
    expect(s.observer.dispositions).toEqual([])
    expect(await h.recordCount(s.dlq)).toBe(0)
    const errors = expectKeyErrors(s.thrown, s.server.url)
    expect(errors.length).toBeGreaterThan(0)
    for (const e of errors) expect(e.message).toContain('held back by the cooldown')
    // The new kid was learnt by the one fetch the cooldown allowed.
    const after = s.server.requests.slice(fetchesBefore)
    expect(after).toHaveLength(1)
    expect((after[0] as { at: number }).at - refreshedAt).toBeGreaterThanOrEqual(cooldownMs - 50)
    console.log(`[key-outage] no stage: ${sent.length} records in the cooldown, ${errors.length} KeyError retries, 1 fetch, 0 rejects`)
  })
})

describe('forged tokens with random kids', () => {
  it('are unknown_kid within one cooldown, with at most one JWKS fetch per cooldown; genuine records between them pass', async () => {
    const cooldownMs = 1500
    const s = await setup('forged', { remote: { cooldownMs, timeoutMs: 1000 } })
    await sleep(cooldownMs) // the consumer's last fetch is one cooldown old: the first unknown kid may fetch
    // Keys made beforehand: signing a burst then takes milliseconds, even on a loaded machine.
    const forgedKeys = (n: number) => Array.from({ length: n }, () => generateKey('EdDSA', { kid: randomBytes(12).toString('base64url') }))
    const forged = (prefix: string, keys: IdctxKey[]) => keys.map((key, i) => signedRecord(s.topic, key, `${prefix}-${i}`))
    const genuine = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => signedRecord(s.topic, s.k1, `${prefix}-${i}`))
    const interleave = (a: Message[], b: Message[]) => a.flatMap((m, i) => (i % 10 === 0 && b[i / 10] !== undefined ? [b[i / 10] as Message, m] : [m]))
    const aKeys = forgedKeys(100)
    const bKeys = forgedKeys(100)
    const phaseStart = Date.now()

    // Burst A: 100 forged records signed in an earlier second, 10 genuine ones among them.
    const a = forged('fa', aKeys)
    const aGenuine = genuine('ga', 10)
    await sleep(1000 - (Date.now() % 1000) + 20) // every iat of burst A is now in the past
    const aSent = Date.now()
    await s.sendRaw(interleave(a, aGenuine))
    await waitFor('burst A dead-lettered', () => s.observer.dispositions.length === 100, 20_000)
    const aDone = Date.now()
    // The first fetch made after their iat decides them, with no retry (the time it takes is the
    // dead-letter writes). A later miss may refresh once per cooldown (a key published since
    // would be learnt), so a burst outlasting the cooldown may cost one more fetch per cooldown.
    const aRequests = s.server.requestsSince(phaseStart)
    expect(aRequests.length).toBeGreaterThanOrEqual(1)
    expect(aRequests.length).toBeLessThanOrEqual(Math.floor((aDone - phaseStart) / cooldownMs) + 1)
    expect(s.thrown).toEqual([])

    // Burst B: 100 forged records signed just now, during the cooldown of burst A's fetch. A fetch
    // that started before a token was issued cannot decide it (iat has a one-second resolution):
    // they are retried until a fetch that started after their iat second, one cooldown later.
    const b = forged('fb', bKeys)
    const bGenuine = genuine('gb', 10)
    const bSent = Date.now()
    await s.sendRaw(interleave(b, bGenuine))
    await waitFor('burst B dead-lettered', () => s.observer.dispositions.length === 200, 20_000)
    const bDone = Date.now()
    const requests = s.server.requestsSince(phaseStart)
    // At most one fetch per cooldown, however many forged kids...
    for (let i = 1; i < requests.length; i++) {
      expect((requests[i] as { at: number }).at - (requests[i - 1] as { at: number }).at).toBeGreaterThanOrEqual(cooldownMs - 50)
    }
    expect(requests.length).toBeGreaterThanOrEqual(2)
    expect(requests.length).toBeLessThanOrEqual(Math.floor((bDone - phaseStart) / cooldownMs) + 1)
    // ...and burst B was retried only until the fetch that could decide it: no retry after it.
    const lastFetch = (requests[requests.length - 1] as { at: number }).at
    expect(s.thrown.length).toBeGreaterThan(0)
    expect(s.thrown.filter((t) => t.at > lastFetch + 500)).toEqual([])
    for (const e of expectKeyErrors(s.thrown, s.server.url)) expect(e.message).toContain('held back by the cooldown')

    expect(s.observer.dispositions.every((d) => d.reason === 'unknown_kid')).toBe(true)
    const dead = await h.readAll(s.dlq)
    expect(dead).toHaveLength(200)
    expect(new Set(dead.map(rejectReason))).toEqual(new Set(['unknown_kid']))
    expect(dead.map((r) => r.key).sort()).toEqual([...a, ...b].map((m) => String(m.key)).sort())
    await waitFor('genuine records', () => s.handled.length === 21)
    expect(s.handled).toEqual(['warm-0', ...aGenuine.map((m) => String(m.key)), ...bGenuine.map((m) => String(m.key))])
    console.log(
      `[key-outage] forged: 200 random kids → 200 unknown_kid, ${requests.length} JWKS fetches in ${bDone - phaseStart} ms (cooldown ${cooldownMs} ms), ` +
        `burst A decided in ${aDone - aSent} ms (${aRequests.length} fetch(es)), burst B in ${bDone - bSent} ms (${s.thrown.length} retries); 20 genuine handled`,
    )
  })
})

describe('a revoked kid', () => {
  it('is revoked at once, for tokens signed before and after the revocation, without a JWKS fetch; the next key passes', async () => {
    const revocation = createMemoryRevocationStore()
    const s = await setup('revoked', { remote: { cooldownMs: 1000, timeoutMs: 1000 }, revocation })
    const sentOk = await s.send('ok', 5)
    await waitFor('5 records', () => s.handled.length === 6)
    const requestsBefore = s.server.requests.length

    const pre = Array.from({ length: 5 }, (_, i) => signedRecord(s.topic, s.k1, `pre-${i}`)) // signed before the revocation
    revocation.revoke('kid', s.k1.kid)
    const revokedAt = Date.now()
    await s.sendRaw(pre)
    await s.send('post', 5)
    await waitFor('10 dead letters', () => s.observer.dispositions.length === 10, 20_000)
    const revokedIn = Date.now() - revokedAt
    expect(s.observer.dispositions.map((d) => d.reason)).toEqual(Array(10).fill('revoked'))
    expect(s.server.requests.length).toBe(requestsBefore) // no key source involved
    expect(s.handled).toEqual(['warm-0', ...sentOk])

    // Then rotate: the compromised key never signs again; records of the new key pass.
    s.keys.rotate(generateKey('EdDSA', { kid: uniqueName('revoked-k2') }))
    const next = await s.send('next', 5)
    await waitFor('5 records of the new key', () => s.handled.length === 11, 20_000)
    expect(s.handled).toEqual(['warm-0', ...sentOk, ...next])
    const dead = await h.readAll(s.dlq)
    expect(dead.map((r) => [r.key, rejectReason(r)])).toEqual([
      ...Array.from({ length: 5 }, (_, i) => [`pre-${i}`, 'revoked']),
      ...Array.from({ length: 5 }, (_, i) => [`post-${i}`, 'revoked']),
    ])
    console.log(`[key-outage] revoked: 10 records of a revoked kid → 10 revoked in ${revokedIn} ms, 0 JWKS fetches; 5 of the next key handled`)
  })
})
