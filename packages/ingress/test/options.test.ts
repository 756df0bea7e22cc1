import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ConfigError, createKeySet, createSigner, createVerifier, generateKey, httpLeaf, runWithContext, type Verifier } from '@idctx/core'
import { createAccessTokenVerifier, createHopFetch, createHopVerifier, createIngress, keycloakClaims, refusal, type AccessTokenVerifier } from '@idctx/ingress'

const accessTokens = { issuers: ['https://i'], verify: async () => ({ ok: false as const, reason: 'missing' as const }) } satisfies AccessTokenVerifier
const keys = createKeySet({ active: generateKey('EdDSA', { kid: 'g-1' }) })
const verifier: Verifier = createVerifier({ audience: 'shop', issuers: { gateway: keys } })

function issues(fn: () => unknown): string[] {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return (e as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)
  }
  throw new Error('no ConfigError')
}

describe('options are checked when a gate is built, every issue listed, no value shown', () => {
  it('createIngress', () => {
    expect(issues(() => createIngress({ accessTokens, mapper: keycloakClaims(), txnHedaer: 'x-request-id' } as never))).toEqual([expect.stringMatching(/^txnHedaer: .*did you mean 'txnHeader'/)])
    const short = issues(() => createIngress({ accessTokens, mapper: keycloakClaims(), subject: { hmacKey: new Uint8Array(8) } }))
    expect(short).toEqual([expect.stringMatching(/^subject: /)])
    expect(issues(() => createIngress({} as never)).map((i) => i.split(':')[0])).toEqual(['accessTokens', 'mapper'])
  })

  it('createHopVerifier: a tenant is required; authorities must be names', () => {
    expect(issues(() => createHopVerifier({ verifier } as never))).toEqual([expect.stringMatching(/^tenant: /)])
    expect(issues(() => createHopVerifier({ verifier, tenant: 'acme', authorities: [] }))).toEqual([expect.stringMatching(/^authorities: /)])
  })

  it('createAccessTokenVerifier: exactly one key source', () => {
    expect(() => createAccessTokenVerifier({ issuer: 'https://i', audience: 'a' })).toThrow(/exactly one of jwksUri and keys/)
  })

  it('createAccessTokenVerifier: a jwksUri with user:password@ fails without the password (fetch repeats the URL in its error)', async () => {
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const token = `${part({ alg: 'RS256', kid: 'idp-1' })}.${part({ iss: 'https://i', aud: 'a' })}.AAAA`
    let error: unknown
    try {
      await createAccessTokenVerifier({ issuer: 'https://i', audience: 'a', jwksUri: 'https://idp:s3cret-pw@idp.invalid/jwks' }).verify(token)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(Error)
    // util.inspect shows what a logger prints: message, properties and the whole cause chain.
    expect(`${String(error)} ${JSON.stringify(error)} ${inspect(error, { depth: 10 })}`).not.toContain('s3cret-pw')
  })
})

describe('hop fetch: what it binds, what it refuses to send', () => {
  const signer = createSigner({ issuer: 'gateway', audience: 'shop', key: keys })
  const ctx = { sub: 'u-1', tid: 'acme', txn: 'txn-0001' }

  it('binds a URLSearchParams body as the form text fetch sends, and sets its content type', async () => {
    let seen: { headers: Headers; body: unknown } | undefined
    const hop = createHopFetch({ signer, fetch: async (_u, init) => ((seen = { headers: new Headers(init?.headers), body: init?.body }), new Response(null)) })
    await runWithContext(ctx, () => hop('http://orders.internal/orders?x=1', { method: 'post', body: new URLSearchParams({ a: '1 2' }) }))
    expect(seen?.headers.get('content-type')).toBe('application/x-www-form-urlencoded;charset=UTF-8')
    const r = await verifier.verify({
      tokens: [seen?.headers.get('idctx') as string],
      destination: 'http:POST orders.internal/orders',
      leaf: httpLeaf('POST', 'orders.internal', '/orders?x=1', Buffer.from('a=1+2')),
      expectedTenant: 'acme',
    })
    expect(r.ok).toBe(true)
  })

  it('refuses a stream body, a Request, an idctx header already set, credentials in the URL', async () => {
    const hop = createHopFetch({ signer, fetch: async () => new Response(null) })
    await runWithContext(ctx, async () => {
      await expect(hop('http://o/x', { method: 'POST', body: new ReadableStream() as never })).rejects.toThrow(TypeError)
      await expect(hop(new Request('http://o/x') as never)).rejects.toThrow(TypeError)
      await expect(hop('http://o/x', { headers: { idctx: 'x' } })).rejects.toThrow(/already has an idctx header/)
      await expect(hop('http://user:pw@o/x')).rejects.toThrow(/credentials/)
    })
  })
})

describe('refusal', () => {
  it('quotes the realm and keeps only printable ASCII', () => {
    expect(refusal('expired', { realm: 'a"b\\c\n' }).headers['www-authenticate']).toBe('Bearer realm="a\\"b\\\\c", error="invalid_token", error_description="token expired"')
  })
})
