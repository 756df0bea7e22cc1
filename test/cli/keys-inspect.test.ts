import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSigner, generateKey, importKeySet, kafkaLeaf, type KeySetDocument } from '@idctx/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { everything, idctx, json } from './run-cli.js'

// The key set commands and `inspect`, run as the `idctx` child process on real files.

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'idctx-cli-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const privateParts = (doc: KeySetDocument): string[] => doc.keys.map((k) => String(k.d))
const readDoc = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as KeySetDocument

describe('idctx keys', () => {
  it('generate, stage, rotate, prune: a keyset-v1 file with mode 0600, never printing a private key', async () => {
    const file = join(dir, 'orders.keyset.json')
    const outputs: string[] = []

    const gen = await idctx(['keys', 'generate', file, '--kid', 'orders-1', '--json'])
    outputs.push(everything(gen))
    expect(gen.code).toBe(0)
    expect(json(gen)).toMatchObject({ action: 'generated', active: { kid: 'orders-1', alg: 'EdDSA' }, staged: null, retiring: [] })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(importKeySet(await readFile(file, 'utf8')).active.kid).toBe('orders-1')

    const again = await idctx(['keys', 'generate', file])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('already exists')
    expect(importKeySet(await readFile(file, 'utf8')).active.kid).toBe('orders-1')

    const staged = await idctx(['keys', 'stage', file, '--kid', 'orders-2', '--json'])
    outputs.push(everything(staged))
    expect(staged.code).toBe(0)
    expect(json(staged)).toMatchObject({ action: 'staged', kid: 'orders-2', active: { kid: 'orders-1' }, staged: { kid: 'orders-2' } })
    expect((await stat(file)).mode & 0o777).toBe(0o600)

    // Staged a moment ago: verifiers may not have the key yet, so rotation waits (exit 1).
    const early = await idctx(['keys', 'rotate', file, '--json'])
    expect(early.code).toBe(1)
    expect(json(early)).toMatchObject({ action: 'waiting', kid: 'orders-2', active: { kid: 'orders-1' } })
    expect((await readDoc(file)).active).toBe('orders-1')

    const rotated = await idctx(['keys', 'rotate', file, '--stage-for', '0', '--json'])
    outputs.push(everything(rotated))
    expect(rotated.code).toBe(0)
    expect(json(rotated)).toMatchObject({ action: 'rotated', kid: 'orders-2', retired: 'orders-1' })
    const doc = await readDoc(file)
    expect(doc).toMatchObject({ active: 'orders-2', staged: null, retiring: [{ kid: 'orders-1' }] })

    const jwks = await idctx(['jwks', file])
    outputs.push(everything(jwks))
    expect(jwks.code).toBe(0)
    const published = json<{ keys: Record<string, unknown>[] }>(jwks)
    expect(published.keys.map((k) => k.kid).sort()).toEqual(['orders-1', 'orders-2'])
    for (const k of published.keys) expect(Object.keys(k)).not.toContain('d')

    // Retired just now: kept for the default 960 s; with --retire-for 0 it goes.
    const kept = await idctx(['keys', 'prune', file, '--json'])
    expect(json(kept)).toMatchObject({ pruned: [], retiring: [{ kid: 'orders-1' }] })
    const pruned = await idctx(['keys', 'prune', file, '--retire-for', '0', '--json'])
    outputs.push(everything(pruned))
    expect(pruned.code).toBe(0)
    expect(json(pruned)).toMatchObject({ action: 'pruned', pruned: ['orders-1'], retiring: [] })
    expect((await readDoc(file)).keys.map((k) => k.kid)).toEqual(['orders-2'])
    expect((await stat(file)).mode & 0o777).toBe(0o600)

    const secrets = [...privateParts(doc)]
    for (const out of outputs) for (const d of secrets) expect(out).not.toContain(d)
  })

  it('reports a file that is not a key set as a usage error, naming no values', async () => {
    const file = join(dir, 'not-a-keyset.json')
    await writeFile(file, JSON.stringify({ idctx: 'keyset-v1', active: 'x', staged: null, stagedAt: null, retiring: [], keys: [{ kty: 'OKP', d: 'c2VjcmV0' }] }))
    const r = await idctx(['keys', 'stage', file])
    expect(r.code).toBe(2)
    expect(r.stderr).not.toContain('c2VjcmV0')
    expect((await idctx(['jwks', join(dir, 'missing.json')])).code).toBe(2)
    expect((await idctx(['keys', 'generate'])).code).toBe(2)
  })
})

describe('idctx inspect', () => {
  const file = () => join(dir, 'inspect.keyset.json')
  const leaf = kafkaLeaf('orders', 'k', Buffer.from('{"total":1}'))
  const context = { sub: 'user-inspect-1', tid: 'acme', txn: 'txn-inspect' }
  const trust = () => ['--issuer', 'orders', '--jwks', file(), '--audience', 'shop', '--json']
  let keySetText: string

  beforeAll(async () => {
    expect((await idctx(['keys', 'generate', file(), '--kid', 'orders-i'])).code).toBe(0)
    keySetText = await readFile(file(), 'utf8')
  })

  const sign = (over: { clock?: () => number; audience?: string; forged?: boolean } = {}) => {
    const keys = importKeySet(keySetText)
    const key = over.forged === true ? generateKey('EdDSA', { kid: 'orders-i' }) : keys.active
    return createSigner({ issuer: 'orders', audience: over.audience ?? 'shop', key, ...(over.clock === undefined ? {} : { clock: over.clock }) })
      .sign(context, [{ destination: 'kafka:orders', leaf }]).token
  }

  it('decodes and verifies a valid token, also from stdin', async () => {
    const token = sign()
    const r = await idctx(['inspect', token, ...trust()])
    expect(r.code).toBe(0)
    const out = json<{ header: Record<string, unknown>; claims: Record<string, unknown>; verification: Record<string, unknown> }>(r)
    expect(out.header).toEqual({ alg: 'EdDSA', kid: 'orders-i', typ: 'idctx+jwt' })
    expect(out.claims).toMatchObject({ iss: 'orders', aud: 'shop', tid: 'acme', dst: 'kafka:orders' })
    expect(out.verification).toMatchObject({ ok: true })
    const piped = await idctx(['inspect', '-', ...trust()], { stdin: `${token}\n` })
    expect(piped.code).toBe(0)
    expect(json(piped).tokenSha256).toBe(json(r).tokenSha256)
    expect(everything(r)).not.toContain(JSON.parse(keySetText).keys[0].d as string)
  })

  it('prints the exact reason of a forged, an expired and a wrongly addressed token, exit 1', async () => {
    const forged = await idctx(['inspect', sign({ forged: true }), ...trust()])
    expect(forged.code).toBe(1)
    expect(json(forged).verification).toMatchObject({ ok: false, reason: 'bad_signature' })

    const hourAgo = Date.now() - 3600_000
    const expired = await idctx(['inspect', sign({ clock: () => hourAgo }), ...trust()])
    expect(expired.code).toBe(1)
    expect(json(expired).verification).toMatchObject({ ok: false, reason: 'expired', claim: 'exp' })

    const staging = await idctx(['inspect', sign({ audience: 'shop-staging' }), ...trust()])
    expect(staging.code).toBe(1)
    expect(json(staging).verification).toMatchObject({ ok: false, reason: 'wrong_audience' })

    const garbage = await idctx(['inspect', 'not.a-token', ...trust()])
    expect(garbage.code).toBe(1)
    expect(json(garbage).verification).toMatchObject({ ok: false, reason: 'malformed' })

    for (const r of [forged, expired, staging]) expect(everything(r)).not.toContain(JSON.parse(keySetText).keys[0].d as string)
  })

  it('prints the user id only as its hash (docs/cli.md), in JSON and in text', async () => {
    const token = sign()
    const hash = createHash('sha256').update(context.sub).digest('hex').slice(0, 32)
    const r = await idctx(['inspect', token, ...trust()])
    expect(r.code).toBe(0)
    expect(json<{ claims: Record<string, unknown> }>(r).claims.sub).toBe(`sha256:${hash}`)
    const text = await idctx(['inspect', token])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`sha256:${hash}`)
    for (const run of [r, text]) expect(everything(run)).not.toContain(context.sub)
  })

  it('never repeats the password or query of a --jwks URL in its errors', async () => {
    const token = sign()
    for (const jwks of [
      'http://orders:s3cret-pw@orders.internal/jwks.json?token=s3cret-q',
      'https://orders:s3cret-pw@127.0.0.1:1/jwks.json',
      'http://127.0.0.1:1/jwks.json?token=s3cret-q',
      'https://orders:s3cret-pw@[bad/jwks.json',
    ]) {
      const r = await idctx(['inspect', token, '--issuer', 'orders', '--jwks', jwks, '--audience', 'shop'])
      expect(r.code === 2 || r.code === 3).toBe(true)
      expect(r.stderr).toMatch(/^idctx: /)
      expect(everything(r)).not.toContain('s3cret')
    }
  })

  it('decodes without verifying when given no trust, and refuses half a trust configuration', async () => {
    const token = sign()
    const r = await idctx(['inspect', token])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('not verified')
    const half = await idctx(['inspect', token, '--issuer', 'orders'])
    expect(half.code).toBe(2)
    expect(half.stderr).toContain('--jwks')
    expect(half.stderr).not.toContain(token)
  })
})
