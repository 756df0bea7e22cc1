import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync } from 'node:crypto'
import { inspect } from 'node:util'
import {
  createRemoteJwks,
  createSigner,
  createVerifier,
  exportPrivateJwk,
  exportPublicJwk,
  generateKey,
  KeyError,
  SigningError,
  type IdctxKey,
  type RemoteJwks,
} from '@idctx/core'
import { AUD, b64, baseClaims, baseInput, clock, CONTEXT, DEST, ISS, LEAF, NOW_MS, ordersSigner } from './fixtures.js'

/** A real JWKS endpoint on 127.0.0.1: what it serves and how often it was asked. */
const endpoint = {
  status: 200,
  body: '{"keys":[]}',
  /** Held back until released, so concurrent lookups overlap one pending fetch. */
  gate: undefined as Promise<void> | undefined,
  requests: 0,
  location: undefined as string | undefined,
}
let server: Server
let url: string

beforeAll(async () => {
  server = createServer((req, res) => {
    endpoint.requests++
    const reply = () => {
      if (endpoint.location !== undefined) {
        res.writeHead(302, { location: endpoint.location })
        res.end()
        return
      }
      res.writeHead(endpoint.status, { 'content-type': 'application/json' })
      res.end(endpoint.body)
    }
    if (endpoint.gate !== undefined) void endpoint.gate.then(reply)
    else reply()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const serve = (keys: readonly IdctxKey[]) => {
  endpoint.status = 200
  endpoint.location = undefined
  endpoint.body = JSON.stringify({ keys: keys.map(exportPublicJwk) })
}

const k1 = generateKey('EdDSA', { kid: 'remote-1' })
const k2 = generateKey('ES256', { kid: 'remote-2' })
const k3 = generateKey('RS256', { kid: 'remote-3' })
const tokenOf = (key: IdctxKey) => ordersSigner(key).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token

function setup(options: { cooldownMs?: number; maxAgeMs?: number; maxBytes?: number } = {}) {
  // The source's clock runs from the tokens' signing time (the fixtures' NOW_MS), as it would.
  let now = NOW_MS
  const ignored: unknown[] = []
  const remote: RemoteJwks = createRemoteJwks(url, { clock: () => now, cooldownMs: 30_000, onKeyIgnored: (info) => ignored.push(info), ...options })
  const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: remote }, clock: () => now })
  const before = endpoint.requests
  return {
    remote,
    verifier,
    ignored,
    fetched: () => endpoint.requests - before,
    advance: (ms: number) => (now += ms),
    /** A token signed now, on the same clock as the source and the verifier. */
    tokenNow: (key: IdctxKey) => createSigner({ issuer: ISS, audience: AUD, key, clock: () => now }).sign(CONTEXT, [{ destination: DEST, leaf: LEAF }]).token,
    reason: async (token: string) => {
      const r = await verifier.verify(baseInput(token))
      return r.ok ? 'ok' : r.error.reason
    },
  }
}

beforeEach(() => {
  endpoint.gate = undefined
  serve([k1])
})

describe('remote JWKS: fetch and cache', () => {
  it('fetches on first use and serves later tokens from its cache', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.verifier.clearCache()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    expect(s.fetched()).toBe(1)
    expect(s.remote.fetches).toBe(1)
  })

  it('refreshes once on an unknown kid and finds a newly published key', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    serve([k2, k1])
    s.advance(30_000)
    expect(await s.reason(tokenOf(k2))).toBe('ok')
    expect(s.fetched()).toBe(2)
    expect(await s.reason(tokenOf(k2))).toBe('ok')
    expect(s.fetched()).toBe(2)
  })

  it('refreshes in the background once the cache is older than maxAge', async () => {
    const s = setup({ maxAgeMs: 60_000 })
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.advance(61_000)
    s.verifier.clearCache()
    expect(await s.reason(tokenOf(k1))).toBe('ok') // served from the still-valid cache
    await s.remote.refresh() // joins the background refresh that get() started
    expect(s.fetched()).toBe(2)
  })
})

describe('remote JWKS: cooldown', () => {
  it('does not refetch for an unknown kid within the cooldown, and does after it', async () => {
    const s = setup({ cooldownMs: 30_000 })
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    expect(await s.reason(tokenOf(k3))).toBe('unknown_kid') // cooldown since the first fetch
    expect(s.fetched()).toBe(1)
    s.advance(30_000)
    expect(await s.reason(tokenOf(k3))).toBe('unknown_kid') // one refresh, still not published
    expect(s.fetched()).toBe(2)
    for (let i = 0; i < 10; i++) expect(await s.reason(tokenOf(k3))).toBe('unknown_kid')
    s.advance(29_999)
    expect(await s.reason(tokenOf(k3))).toBe('unknown_kid')
    expect(s.fetched()).toBe(2)
    // A token signed before the last good fetch, under a kid that fetch lacked: within the cooldown
    // it stays unknown without a fetch; once the cooldown has passed, a miss refreshes once and a
    // key published meanwhile verifies it (a key outage over: redriven records pass).
    serve([k1, k3])
    expect(await s.reason(tokenOf(k3))).toBe('unknown_kid')
    expect(s.fetched()).toBe(2)
    s.advance(1)
    expect(await s.reason(tokenOf(k3))).toBe('ok')
    expect(s.fetched()).toBe(3)
    expect(await s.reason(s.tokenNow(k3))).toBe('ok')
    expect(s.fetched()).toBe(3)
  })

  it('an injected unknown kid costs at most one fetch per cooldown', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.advance(30_000)
    const { forge, makeKeyring } = await import('./fixtures.js')
    const ring = makeKeyring()
    for (const kid of ['../../etc/passwd', "' OR 1=1 --", 'a', 'b', 'c']) {
      expect(await s.reason(forge(ring, { headerPatch: { kid } }))).toBe('unknown_kid')
    }
    expect(s.fetched()).toBe(2)
  })
})

describe('remote JWKS: no stampede', () => {
  it('50 concurrent verifications of a new kid cause exactly one fetch', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    serve([k1, k2])
    s.advance(30_000)
    let release: () => void = () => {}
    endpoint.gate = new Promise<void>((r) => (release = r))
    const tokens = Array.from({ length: 50 }, () => tokenOf(k2))
    const pending = Promise.all(tokens.map((t) => s.reason(t)))
    // let every verification reach the key lookup while the one fetch is held open
    await new Promise((r) => setImmediate(r))
    release()
    const reasons = await pending
    expect(reasons).toEqual(Array(50).fill('ok'))
    expect(s.fetched()).toBe(2)
    expect(s.remote.fetches).toBe(2)
  })

  it('50 concurrent verifications of a kid that stays unknown cause exactly one fetch', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.advance(30_000)
    let release: () => void = () => {}
    endpoint.gate = new Promise<void>((r) => (release = r))
    const pending = Promise.all(Array.from({ length: 50 }, () => s.reason(tokenOf(k3))))
    await new Promise((r) => setImmediate(r))
    release()
    expect(await pending).toEqual(Array(50).fill('unknown_kid'))
    expect(s.fetched()).toBe(2)
  })
})

describe('remote JWKS: failures keep the last good keys', () => {
  it.each([
    ['HTTP 500', () => { endpoint.status = 500; endpoint.body = 'oops' }],
    ['a body that is not JSON', () => { endpoint.body = '{"keys": [' }],
    ['a body without a keys array', () => { endpoint.body = '{"jwks":[]}' }],
    ['a redirect (refused)', () => { endpoint.location = 'http://127.0.0.1:1/elsewhere' }],
  ])('%s: known kids still verify; an unknown kid throws (retry) instead of rejecting', async (_name, breakIt) => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    breakIt()
    s.advance(30_000)
    await expect(s.verifier.verify(baseInput(tokenOf(k2)))).rejects.toBeInstanceOf(KeyError)
    expect(s.fetched()).toBe(2)
    s.verifier.clearCache()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    // Within the cooldown the failed source is not asked again, and the last good fetch predates
    // the token: still a retry, never unknown_kid.
    await expect(s.verifier.verify(baseInput(tokenOf(k2)))).rejects.toBeInstanceOf(KeyError)
    expect(s.fetched()).toBe(2)
    // Once the source answers again, the genuine token verifies.
    serve([k1, k2])
    s.advance(30_000)
    expect(await s.reason(tokenOf(k2))).toBe('ok')
    expect(s.fetched()).toBe(3)
  })

  it('a body over maxBytes is refused and the keys are kept', async () => {
    const s = setup({ maxBytes: 512 })
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    serve([k1, k2, k3])
    expect(endpoint.body.length).toBeGreaterThan(512)
    s.advance(30_000)
    await expect(s.remote.refresh()).rejects.toBeInstanceOf(KeyError)
    s.verifier.clearCache()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
  })

  it('an endpoint that is down at first use throws, then recovers after the cooldown', async () => {
    endpoint.status = 503
    const s = setup()
    await expect(s.verifier.verify(baseInput(tokenOf(k1)))).rejects.toBeInstanceOf(KeyError)
    serve([k1])
    s.advance(30_000)
    expect(await s.reason(tokenOf(k1))).toBe('ok')
  })
})

describe('remote JWKS: what it accepts', () => {
  it('skips keys it cannot use, reports each without material, and keeps the others', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })
    const e3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey.export({ format: 'jwk' })
    const secret = exportPrivateJwk(generateKey('HS256', { kid: 'hs' }))
    endpoint.body = JSON.stringify({
      keys: [
        { ...exportPublicJwk(k2), use: 'enc' },
        secret,
        { ...exportPublicJwk(k3), alg: 'RS384' },
        { ...weak, kid: 'weak', alg: 'RS256' },
        { ...e3, kid: 'rsa-e3', alg: 'RS256' },
        { kty: 'OKP', crv: 'Ed25519', x: `AQ${'A'.repeat(41)}`, kid: 'ed-identity' },
        { ...exportPublicJwk(k3), kid: undefined },
        null,
        'garbage',
        exportPublicJwk(k1),
        exportPublicJwk(generateKey('EdDSA', { kid: 'remote-1' })),
      ],
    })
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    for (const kid of ['remote-2', 'hs', 'weak', 'rsa-e3', 'ed-identity', 'remote-3']) expect(s.remote.get(kid)).toBeUndefined()
    expect(s.ignored).toEqual([
      { kid: 'remote-2', reason: 'encryption_key', detail: 'key "remote-2": an encryption key (use "enc") is not a signature key' },
      { kid: 'hs', reason: 'symmetric_key', detail: 'key "hs": a symmetric (oct) JWK is never a published verification key' },
      { kid: 'remote-3', reason: 'unusable', detail: 'key "remote-3": JWK alg is not supported' },
      { kid: 'weak', reason: 'unusable', detail: 'key "weak": RS256 keys must be RSA of at least 2048 bits' },
      { kid: 'rsa-e3', reason: 'unusable', detail: 'key "rsa-e3": RSA public exponent must be 65537' },
      { kid: 'ed-identity', reason: 'unusable', detail: 'key "ed-identity": the Ed25519 public key is a small-order point' },
      { kid: undefined, reason: 'missing_kid', detail: 'a JWK without kid: a remote JWKS entry needs a kid' },
      { kid: undefined, reason: 'not_an_object', detail: 'a JWKS entry is not an object' },
      { kid: undefined, reason: 'not_an_object', detail: 'a JWKS entry is not an object' },
      { kid: 'remote-1', reason: 'duplicate_kid', detail: 'key "remote-1": the JWKS already has a key with this kid; the first is kept' },
    ])
    expect(JSON.stringify(s.ignored)).not.toContain(secret.k as string)
    expect(s.remote.get('remote-1')?.verificationKey.equals(k1.verificationKey)).toBe(true)
  })

  it('a small-order Ed25519 key published under a kid is skipped: R = identity, S = 0 is unknown_kid, not ok', async () => {
    const identity = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])
    endpoint.body = JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: identity.toString('base64url'), kid: 'ed-identity', alg: 'EdDSA' }, exportPublicJwk(k1)] })
    const input = `${b64({ alg: 'EdDSA', kid: 'ed-identity', typ: 'idctx+jwt' })}.${b64(baseClaims())}`
    const forged = `${input}.${Buffer.concat([identity, Buffer.alloc(32)]).toString('base64url')}`
    const s = setup()
    expect(await s.reason(forged)).toBe('unknown_kid')
    expect(s.fetched()).toBe(1)
    expect(s.ignored).toEqual([{ kid: 'ed-identity', reason: 'unusable', detail: 'key "ed-identity": the Ed25519 public key is a small-order point' }])
  })

  it('serves verification keys only: a private JWK published by mistake does not make it a signer', async () => {
    const jwk = exportPrivateJwk(k1)
    endpoint.body = JSON.stringify({ keys: [jwk] })
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    const key = s.remote.get('remote-1') as IdctxKey
    expect(key.alg).toBe('EdDSA')
    expect(key.signingKey).toBeUndefined()
    expect(key.verificationKey.type).toBe('public')
    expect(() => createSigner({ issuer: ISS, audience: AUD, key })).toThrow(SigningError)
    expect(s.ignored).toEqual([{ kid: 'remote-1', reason: 'private_members', detail: 'key "remote-1": private members ignored, the public key is kept' }])
    expect(JSON.stringify(s.ignored)).not.toContain(jwk.d as string)
  })

  it('a listener that throws does not fail the refresh', async () => {
    endpoint.body = JSON.stringify({ keys: [exportPrivateJwk(k1)] })
    const remote = createRemoteJwks(url, { onKeyIgnored: () => { throw new Error('logger down') } })
    await remote.refresh()
    expect(remote.get('remote-1')?.signingKey).toBeUndefined()
    expect(remote.get('remote-1')?.alg).toBe('EdDSA')
  })

  it('refuses a URL that is not http(s)', () => {
    expect(() => createRemoteJwks('file:///etc/passwd')).toThrow(TypeError)
    expect(() => createRemoteJwks('ftp://127.0.0.1/jwks')).toThrow(TypeError)
  })
})

describe('remote JWKS: https unless loopback', () => {
  it.each([['http://orders.internal/jwks.json'], ['http://10.0.0.7:4002/jwks.json'], ['http://[fe80::1]/jwks.json'], ['http://localhost.example.com/jwks.json'], ['http://127.0.0.1.nip.io/jwks.json']])(
    '%s: plain http to a non-loopback host is a TypeError that says how to fix it',
    (target) => {
      expect(() => createRemoteJwks(target)).toThrow(TypeError)
      expect(() => createRemoteJwks(target)).toThrow(/use an https:\/\/ URL, or pass allowInsecureHttp: true/)
    },
  )

  it('the message names the host, never the path, query or credentials', () => {
    expect(() => createRemoteJwks('http://user:s3cret@orders.internal/jwks.json?token=abc')).toThrow(
      'JWKS URL must be https: plain http to "orders.internal" lets anyone on the path swap the keys; use an https:// URL, or pass allowInsecureHttp: true for a trusted network',
    )
  })

  it.each([['http://127.0.0.1:4002/jwks.json'], ['http://127.3.2.1/jwks.json'], ['http://localhost:4002/jwks.json'], ['http://LOCALHOST/jwks.json'], ['http://[::1]:4002/jwks.json']])(
    '%s: plain http to loopback is allowed',
    (target) => {
      expect(createRemoteJwks(target).fetches).toBe(0)
    },
  )

  it('allowInsecureHttp: true allows plain http to any host; https never needs it', () => {
    expect(createRemoteJwks('http://orders.internal/jwks.json', { allowInsecureHttp: true }).fetches).toBe(0)
    expect(createRemoteJwks('https://orders.internal/jwks.json').fetches).toBe(0)
    expect(createRemoteJwks(new URL('https://orders.internal/jwks.json'), { allowInsecureHttp: false }).fetches).toBe(0)
  })
})

describe('remote JWKS: a key outage never rejects a genuine token', () => {
  it('HTTP 500 while a new kid arrives: throws with url and status, never unknown_kid, verifies after recovery', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.advance(30_000)
    endpoint.status = 500
    endpoint.body = '<html>oops</html>'
    const fresh = s.tokenNow(k2) // signed after the last good fetch, with a key it has not seen
    const e = await s.verifier.verify(baseInput(fresh)).then(
      () => undefined,
      (x: unknown) => x,
    )
    expect(e).toBeInstanceOf(KeyError)
    expect(e).toMatchObject({ issuer: ISS, url: url, status: 500, code: 'ERR_IDCTX_KEY' })
    // Retries inside the cooldown throw again without asking the server, naming the last failure.
    for (let i = 0; i < 5; i++) await expect(s.verifier.verify(baseInput(fresh))).rejects.toMatchObject({ name: 'KeyError', status: 500 })
    expect(s.fetched()).toBe(2)
    serve([k1, k2])
    s.advance(30_000)
    expect(await s.reason(fresh)).toBe('ok')
    expect(s.fetched()).toBe(3)
  })

  it('a server that hangs: a KeyError naming the timeout, then the token verifies', async () => {
    const s = setup({ timeoutMs: 100 } as never)
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.advance(30_000)
    let release: () => void = () => {}
    endpoint.gate = new Promise<void>((r) => (release = r))
    serve([k1, k2])
    const fresh = s.tokenNow(k2)
    await expect(s.verifier.verify(baseInput(fresh))).rejects.toMatchObject({ name: 'KeyError', networkCode: 'TimeoutError' })
    release()
    endpoint.gate = undefined
    s.advance(30_000)
    expect(await s.reason(fresh)).toBe('ok')
  })

  it('a refused connection: a KeyError with the network code', async () => {
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((r) => closed.close(() => r()))
    const remote = createRemoteJwks(`http://127.0.0.1:${port}/jwks.json`)
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: remote }, clock })
    await expect(verifier.verify(baseInput(tokenOf(k1)))).rejects.toMatchObject({ name: 'KeyError', networkCode: 'ECONNREFUSED', issuer: ISS })
    const report = await verifier.ready()
    expect(report.ok).toBe(false)
    const r = report.issuers[ISS]
    expect(r?.ok === false ? r.error.networkCode : 'ready').toBe('ECONNREFUSED')
  })

  it('rotation without stage right after a refresh: the new kid throws (retry) inside the cooldown, then verifies', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.advance(2_000)
    serve([k2, k1]) // the producer rotated and signs with k2 at once
    const fresh = s.tokenNow(k2)
    await expect(s.verifier.verify(baseInput(fresh))).rejects.toBeInstanceOf(KeyError)
    s.advance(28_000)
    expect(await s.reason(fresh)).toBe('ok')
  })

  it('a JWKS that shrinks keeps the removed key for keepRemovedKeysMs; an empty one is a failed refresh', async () => {
    const s = setup({ maxAgeMs: 60_000, keepRemovedKeysMs: 120_000 } as never)
    serve([k1, k2])
    const old = tokenOf(k2)
    expect(await s.reason(old)).toBe('ok')
    serve([k1])
    s.advance(61_000)
    await s.remote.refresh()
    expect(s.fetched()).toBe(2)
    s.verifier.clearCache()
    expect(await s.reason(old)).toBe('ok') // retired, not revoked
    endpoint.body = '{"keys":[]}'
    s.advance(30_000)
    await expect(s.remote.refresh()).rejects.toBeInstanceOf(KeyError)
    s.verifier.clearCache()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    expect(await s.reason(old)).toBe('ok')
    serve([k1])
    s.advance(121_000)
    s.verifier.clearCache()
    // Past the retention a token signed with the removed key after a fetch that lacked it is unknown.
    expect(await s.reason(s.tokenNow(k2))).toBe('unknown_kid')
  })

  it('forged tokens with random kids: unknown_kid within one cooldown, at most one fetch per cooldown', async () => {
    const s = setup()
    expect(await s.reason(tokenOf(k1))).toBe('ok')
    s.advance(5_000)
    const { forge, makeKeyring } = await import('./fixtures.js')
    const ring = makeKeyring()
    const forged = (kid: string) => {
      const t = s.tokenNow(ring.rogue)
      return forge(ring, { key: ring.rogue, headerPatch: { kid }, claims: JSON.parse(Buffer.from(t.split('.')[1] as string, 'base64url').toString()) })
    }
    const first = forged('random-1')
    await expect(s.verifier.verify(baseInput(first))).rejects.toBeInstanceOf(KeyError) // cooldown holds
    s.advance(25_000)
    expect(await s.reason(first)).toBe('unknown_kid') // one fetch after the cooldown decides
    expect(s.fetched()).toBe(2)
    for (let i = 0; i < 20; i++) expect(await s.reason(forge(ring, { key: ring.rogue, headerPatch: { kid: `random-${i + 2}` } }))).toBe('unknown_kid')
    expect(s.fetched()).toBe(2)
  })

  it('a revoked kid is revoked at once, even while the JWKS still serves it', async () => {
    const { createMemoryRevocationStore } = await import('@idctx/core')
    const revocation = createMemoryRevocationStore()
    const remote = createRemoteJwks(url, { clock: () => NOW_MS })
    const verifier = createVerifier({ audience: AUD, issuers: { [ISS]: remote }, clock, revocation })
    expect((await verifier.verify(baseInput(tokenOf(k1)))).ok).toBe(true)
    revocation.revoke('kid', k1.kid)
    const r = await verifier.verify(baseInput(tokenOf(k1)))
    expect(r.ok ? 'ok' : r.error.reason).toBe('revoked')
  })

  it('ready() fetches each remote JWKS once at start and reports every issuer', async () => {
    const s = setup()
    const report = await s.verifier.ready()
    expect(report).toEqual({ ok: true, issuers: { [ISS]: { ok: true } } })
    expect(s.fetched()).toBe(1)
    await s.verifier.ready()
    expect(s.fetched()).toBe(1)
  })
})

/** Everything a log line of `error` could show: `util.inspect` prints the message, the stack, every own property and the whole cause chain. */
function shown(error: unknown): string {
  expect(error).toBeInstanceOf(Error)
  return `${String(error)}\n${JSON.stringify(error)}\n${inspect(error, { depth: 10 })}`
}

/** The error `fn` throws or rejects with, creating the source included. */
async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a failure')
}

describe('remote JWKS: no secret in an error, its cause or its properties', () => {
  it('a URL with user:password@ (fetch would echo it in its TypeError) fails without the password', async () => {
    const target = url.replace('http://', 'http://orders:s3cret-pw@')
    const e = await failure(() => createRemoteJwks(target).refresh())
    expect(shown(e)).not.toContain('s3cret-pw')
  })

  it('a URL that does not parse fails without the URL (Node keeps it as the error input)', async () => {
    const e = await failure(() => createRemoteJwks('http://orders:s3cret-pw@127.0.0.1:99999/jwks'))
    expect(e).toBeInstanceOf(TypeError)
    expect(shown(e)).not.toContain('s3cret-pw')
  })

  it('a header value fetch refuses (a line break in a bearer token) fails without the value', async () => {
    const e = await failure(() => createRemoteJwks(url, { headers: { authorization: 'Bearer s3cret-token\r\nx' } }).refresh())
    expect(shown(e)).not.toContain('s3cret-token')
  })

  it('a body that is not JSON (an error page echoing the request) is a KeyError without the body', async () => {
    endpoint.status = 200
    endpoint.location = undefined
    endpoint.body = 'Bearer s3cret-token'
    const e = await failure(() => createRemoteJwks(url).refresh())
    expect(e).toBeInstanceOf(KeyError)
    expect((e as KeyError).message).toMatch(/response is not JSON/)
    expect(shown(e)).not.toContain('s3cret-token')
  })
})
