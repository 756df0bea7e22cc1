import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, type JWK } from 'jose'
import {
  createAccessTokenVerifier,
  createIngress,
  keycloakClaims,
  type AccessTokenVerifierOptions,
  type ClaimMapper,
  type HttpRequestLike,
  type IngressOptions,
} from '@idctx/ingress'

// A local IdP that signs arbitrary header and payload *text* (duplicate keys, 1e999, …): what a
// hostile client cannot forge, but what a provider (or a misconfigured one) may well send.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
export { publicKey }
export const jwk: JWK = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'idp-1', alg: 'RS256', use: 'sig' }
export const ISS = 'https://idp.example/realms/shop'
export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url')
export const now = (): number => Math.floor(Date.now() / 1000)

export function signRaw(headerText: string, payloadText: string, key: KeyObject = privateKey): string {
  const input = `${b64(headerText)}.${b64(payloadText)}`
  return `${input}.${nodeSign('sha256', Buffer.from(input), key).toString('base64url')}`
}

export function mint(claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const t = now()
  return signRaw(JSON.stringify({ alg: 'RS256', kid: 'idp-1', typ: 'JWT', ...header }), JSON.stringify({ iss: ISS, aud: 'shop-api', iat: t, exp: t + 300, ...claims }))
}

export function verifier(o: Partial<AccessTokenVerifierOptions> = {}) {
  return createAccessTokenVerifier({ issuer: ISS, keys: createLocalJWKSet({ keys: [jwk] }), audience: 'shop-api', ...o } as AccessTokenVerifierOptions)
}

export const req = (headers: Record<string, string | string[]>, extra: Partial<HttpRequestLike> = {}): HttpRequestLike => ({ method: 'GET', url: '/', headers, ...extra })

export function ingress(mapper: ClaimMapper<any> = keycloakClaims(), o: Partial<IngressOptions> = {}, v: Partial<AccessTokenVerifierOptions> = {}) {
  return createIngress({ accessTokens: verifier(v), mapper, ...o })
}

export const base = { sub: '3f1c9a2e-5b7d-4e7a-9f0e-1c2d3e4f5a6b', typ: 'Bearer', organization: ['acme'] }

/** 'ok' or the refusal reason of a request with this bearer token. */
export async function reasonOf(gate: ReturnType<typeof ingress>, token: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await gate.check(req({ authorization: `Bearer ${token}`, ...headers }), undefined)
  return r.ok ? 'ok' : r.refusal.reason
}
