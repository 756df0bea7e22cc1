import { createHmac, sign, verify, type KeyObject } from 'node:crypto'
import {
  createSigner,
  createVerifier,
  generateKey,
  kafkaLeaf,
  exportPublicJwk,
  type Algorithm,
  type IdctxKey,
} from '@idctx/core'
import { SignJWT, jwtVerify, importJWK, type CryptoKey } from 'jose'
import { fmt, measure, pct, table } from './harness.js'

const ALGS: Algorithm[] = ['EdDSA', 'ES256', 'RS256', 'HS256']
const CTX = { sub: 'u-4f1c9a', tid: 'acme', txn: '01JD4X7Q9K3V2B8N6M5C4Z1Y0W', roles: ['buyer'] }
const NOW = () => Date.now()

function rawSign(alg: Algorithm, key: KeyObject, input: Buffer): Buffer {
  switch (alg) {
    case 'EdDSA':
      return sign(null, input, key)
    case 'ES256':
      return sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })
    case 'RS256':
      return sign('sha256', input, key)
    case 'HS256':
      return createHmac('sha256', key).update(input).digest()
  }
}

function rawVerify(alg: Algorithm, key: KeyObject, input: Buffer, sig: Buffer): boolean {
  switch (alg) {
    case 'EdDSA':
      return verify(null, input, key, sig)
    case 'ES256':
      return verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig)
    case 'RS256':
      return verify('sha256', input, key, sig)
    case 'HS256':
      return createHmac('sha256', key).update(input).digest().equals(sig)
  }
}

/** The raw baseline: a full JWT with node:crypto and nothing else (no policy, no schema). */
function rawJwtSign(alg: Algorithm, key: IdctxKey, claims: object): string {
  const h = Buffer.from(JSON.stringify({ alg, kid: key.kid, typ: 'idctx+jwt' })).toString('base64url')
  const p = Buffer.from(JSON.stringify(claims)).toString('base64url')
  const input = `${h}.${p}`
  return `${input}.${rawSign(alg, key.signingKey as KeyObject, Buffer.from(input)).toString('base64url')}`
}

function rawJwtVerify(alg: Algorithm, key: IdctxKey, token: string): unknown {
  const [h, p, s] = token.split('.') as [string, string, string]
  JSON.parse(Buffer.from(h, 'base64url').toString())
  if (!rawVerify(alg, key.verificationKey, Buffer.from(`${h}.${p}`), Buffer.from(s, 'base64url'))) throw new Error('bad')
  return JSON.parse(Buffer.from(p, 'base64url').toString())
}

export interface CryptoResult {
  markdown: string
  ratios: { alg: Algorithm; sign: number; verify: number }[]
}

export async function runCryptoBench(log: (s: string) => void): Promise<CryptoResult> {
  const rows: string[][] = []
  const ratios: CryptoResult['ratios'] = []
  for (const alg of ALGS) {
    log(`crypto: ${alg}`)
    const key = generateKey(alg, { kid: `bench-${alg}` })
    const signer = createSigner({ issuer: 'orders', audience: 'shop', key, allowHS256: true })
    const verifier = createVerifier({
      audience: 'shop',
      issuers: { orders: [key] },
      algorithms: [alg],
      allowHS256: true,
      cacheSize: 0,
    })
    const cachedVerifier = createVerifier({ audience: 'shop', issuers: { orders: [key] }, algorithms: [alg], allowHS256: true })
    const leaf = kafkaLeaf('orders', 'order-1', Buffer.from('{"id":"order-1","total":42}'))
    const binding = [{ destination: 'kafka:orders', leaf }]
    const { token } = signer.sign(CTX, binding)
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>
    const joseKey: CryptoKey | Uint8Array =
      alg === 'HS256'
        ? new Uint8Array(key.verificationKey.export())
        : ((await importJWK(exportPublicJwk(key), alg)) as CryptoKey)
    const joseSignKey: CryptoKey | Uint8Array =
      alg === 'HS256' ? joseKey : ((await importJWK({ ...(key.signingKey as KeyObject).export({ format: 'jwk' }) }, alg)) as CryptoKey)
    const input = { tokens: [token], destination: 'kafka:orders', leaf, expectedTenant: 'acme' }

    const s = await measure({
      raw: () => rawJwtSign(alg, key, { ...claims, jti: String(Math.random()) }),
      jose: () =>
        new SignJWT({ ...claims })
          .setProtectedHeader({ alg, kid: key.kid, typ: 'idctx+jwt' })
          .sign(joseSignKey),
      idctx: () => signer.sign(CTX, binding),
    })
    const v = await measure({
      raw: () => rawJwtVerify(alg, key, token),
      jose: () => jwtVerify(token, joseKey, { algorithms: [alg], audience: 'shop', issuer: 'orders', typ: 'idctx+jwt' }),
      idctx: async () => {
        const r = await verifier.verify(input)
        if (!r.ok) throw new Error(r.error.reason)
      },
      cached: async () => {
        const r = await cachedVerifier.verify(input)
        if (!r.ok) throw new Error(r.error.reason)
      },
    })
    const sr = (s.idctx?.opsPerSec ?? 0) / (s.raw?.opsPerSec ?? 1)
    const vr = (v.idctx?.opsPerSec ?? 0) / (v.raw?.opsPerSec ?? 1)
    ratios.push({ alg, sign: sr, verify: vr })
    rows.push([
      alg,
      fmt(s.raw!.opsPerSec),
      fmt(s.jose!.opsPerSec),
      fmt(s.idctx!.opsPerSec),
      pct(s.idctx!.opsPerSec, s.raw!.opsPerSec),
      fmt(v.raw!.opsPerSec),
      fmt(v.jose!.opsPerSec),
      fmt(v.idctx!.opsPerSec),
      pct(v.idctx!.opsPerSec, v.raw!.opsPerSec),
      fmt(v.cached!.opsPerSec),
    ])
  }
  const markdown = table(
    [
      'alg',
      'sign raw/s',
      'sign jose/s',
      'sign idctx/s',
      'idctx/raw',
      'verify raw/s',
      'verify jose/s',
      'verify idctx/s (no cache)',
      'idctx/raw',
      'verify idctx/s (cached token)',
    ],
    rows,
  )
  return { markdown, ratios }
}

export async function runBatchBench(log: (s: string) => void): Promise<string> {
  log('crypto: batch of 1000 messages, one token')
  const key = generateKey('EdDSA', { kid: 'bench-batch' })
  const signer = createSigner({ issuer: 'orders', audience: 'shop', key })
  const values = Array.from({ length: 1000 }, (_, i) => ({
    key: `order-${i}`,
    value: Buffer.from(JSON.stringify({ id: `order-${i}`, total: i, items: ['a', 'b', 'c'], note: 'x'.repeat(200) })),
  }))
  const leaves = values.map((m) => ({ destination: 'kafka:orders', leaf: kafkaLeaf('orders', m.key, m.value) }))
  const signed = signer.sign(CTX, leaves)
  const rawTokens = values.map(() => rawJwtSign('EdDSA', key, { sub: 'u', tid: 'acme', jti: String(Math.random()) }))
  const r = await measure(
    {
      'raw: 1000 signatures': () => {
        for (let i = 0; i < 1000; i++) rawJwtSign('EdDSA', key, { sub: 'u', tid: 'acme', i })
      },
      'idctx: leaves + tree + 1 signature': () => {
        signer.sign(
          CTX,
          values.map((m) => ({ destination: 'kafka:orders', leaf: kafkaLeaf('orders', m.key, m.value) })),
        )
      },
      'raw: 1000 verifications': () => {
        for (const t of rawTokens) rawJwtVerify('EdDSA', key, t)
      },
      'idctx: verify 1000 (1 signature + proofs)': async () => {
        const verifier = createVerifier({ audience: 'shop', issuers: { orders: [key] } })
        for (let i = 0; i < 1000; i++) {
          const m = values[i]!
          const res = await verifier.verify({
            tokens: [signed.token],
            proof: signed.proofs[i],
            destination: 'kafka:orders',
            leaf: () => kafkaLeaf('orders', m.key, m.value),
            expectedTenant: 'acme',
          })
          if (!res.ok) throw new Error(res.error.reason)
        }
      },
    },
    { rounds: 3, roundMs: 1000, batch: 1000 },
  )
  return table(
    ['case (1000 records of ~270 bytes)', 'records/s'],
    Object.values(r).map((m) => [m.name, fmt(m.opsPerSec)]),
  )
}
