import { request as httpRequest } from 'node:http'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from 'jose'
import { currentContext, type IdentityContext } from '@idctx/core'
import {
  auth0Claims,
  cognitoClaims,
  createAccessTokenVerifier,
  createIngress,
  defineClaimMapper,
  entraClaims,
  keycloakClaims,
  nodeHttpHandler,
  oktaClaims,
  stringClaim,
  stringValues,
  type AccessTokenVerifierOptions,
  type IngressOptions,
} from '@idctx/ingress'
import { bearer, call, listen, startIdp, unsecured, type Answer, type Running, type TestIdp } from './idp.js'

const open: Running[] = []
afterAll(() => Promise.all(open.map((r) => r.close())))

/** A node:http service behind the ingress that answers with the context its handler runs in (read after an await). */
async function service(idp: TestIdp, verifier: Partial<AccessTokenVerifierOptions>, options: Omit<IngressOptions, 'accessTokens'>): Promise<string> {
  const ingress = createIngress({
    accessTokens: createAccessTokenVerifier({ issuer: idp.issuer, jwksUri: idp.jwksUri, ...verifier } as AccessTokenVerifierOptions),
    realm: 'shop',
    ...options,
  })
  const running = await listen(
    nodeHttpHandler(ingress, async (_req, res, { identity }) => {
      await new Promise((r) => setTimeout(r, 1))
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ current: currentContext(), identity }))
    }),
  )
  open.push(running)
  return running.url
}

const contextOf = (a: Answer) => a.body.current as IdentityContext

/** Nothing of the token or its claims in what a refused client sees. */
function expectNoLeak(a: Answer, token: string, values: readonly string[]): void {
  const seen = `${JSON.stringify([...a.headers.entries()])}\n${a.text}`
  for (const part of token.split('.').filter((p) => p.length > 8)) expect(seen).not.toContain(part)
  for (const v of values) expect(seen).not.toContain(v)
}

function expectRefused(a: Answer, status: number, reason: string): void {
  expect({ status: a.status, reason: a.body.reason }).toEqual({ status, reason })
  const challenge = a.headers.get('www-authenticate') ?? ''
  const error = status === 400 ? 'invalid_request' : status === 403 ? 'insufficient_scope' : 'invalid_token'
  expect(challenge).toMatch(new RegExp(`^Bearer realm="shop", error="${error}", error_description="[a-z ]+"$`))
}

describe('providers: tokens shaped like each provider, JWKS over real HTTP', () => {
  let idp: TestIdp
  beforeAll(async () => {
    idp = await startIdp()
    open.push(idp)
  })

  it('Keycloak: sub, the organization as tenant, realm and client roles, scope — no name or email', async () => {
    const url = await service(idp, { audience: 'shop-api', algorithms: ['RS256'] }, { mapper: keycloakClaims({ clients: ['shop-api'] }) })
    const token = await idp.mint({
      sub: '3f1c9a2e-5b7d-4e7a-9f0e-1c2d3e4f5a6b',
      aud: ['shop-api', 'account'],
      typ: 'Bearer',
      azp: 'shop-web',
      realm_access: { roles: ['buyer', 'offline_access', 'uma_authorization', 'default-roles-shop'] },
      resource_access: { 'shop-api': { roles: ['orders-admin'] }, account: { roles: ['manage-account'] } },
      organization: ['acme'],
      scope: 'openid email profile',
      email: 'alice@acme.example',
      name: 'Alice Example',
      preferred_username: 'alice',
    })
    const a = await call(url, bearer(token))
    expect(a.status).toBe(200)
    expect(contextOf(a)).toEqual({
      sub: '3f1c9a2e-5b7d-4e7a-9f0e-1c2d3e4f5a6b',
      tid: 'acme',
      txn: expect.stringMatching(/^[0-9a-f-]{36}$/),
      pty: 'user',
      roles: ['buyer', 'orders-admin'],
      scope: 'openid email profile',
    })
    expect(a.body.identity).toEqual(a.body.current)
    expect(a.text).not.toMatch(/alice|Alice/)
    // Keycloak 26 with organization ids: an object keyed by alias
    const withIds = await idp.mint({ sub: 'u-2', aud: 'shop-api', organization: { acme: { id: '42' } } })
    expect(contextOf(await call(url, bearer(withIds))).tid).toBe('acme')
    // a refresh or ID token of Keycloak (typ claim) is not an access token
    expectRefused(await call(url, bearer(await idp.mint({ sub: 'u-2', aud: 'shop-api', typ: 'ID', organization: ['acme'] }))), 401, 'wrong_typ')
  })

  it('Auth0: the organization (org_id) mapped to the tenant, namespaced roles, permissions as scopes; client credentials as a service', async () => {
    const url = await service(
      idp,
      { audience: 'https://api.shop.example' },
      { mapper: auth0Claims({ namespace: 'https://shop.example/', organizations: { org_7Hd2kq: 'acme' } }) },
    )
    const token = await idp.mint({
      sub: 'auth0|65f0c0ffee',
      aud: ['https://api.shop.example', 'https://shop.eu.auth0.com/userinfo'],
      azp: 'spa-client',
      org_id: 'org_7Hd2kq',
      permissions: ['orders:write', 'orders:read'],
      scope: 'openid profile orders:read',
      'https://shop.example/roles': ['buyer'],
      'https://shop.example/email': 'alice@acme.example',
    })
    expect(contextOf(await call(url, bearer(token)))).toMatchObject({ sub: 'auth0|65f0c0ffee', tid: 'acme', pty: 'user', roles: ['buyer'], scope: 'openid profile orders:read orders:write' })
    const m2m = await idp.mint({ sub: 'cl1ent@clients', aud: 'https://api.shop.example', azp: 'cl1ent', gty: 'client-credentials', org_id: 'org_7Hd2kq', scope: 'orders:write' })
    expect(contextOf(await call(url, bearer(m2m)))).toMatchObject({ sub: 'cl1ent', tid: 'acme', pty: 'service' })
    // an organization the application does not know maps to no tenant
    expectRefused(await call(url, bearer(await idp.mint({ sub: 'auth0|x', aud: 'https://api.shop.example', org_id: 'org_other' }))), 403, 'no_tenant')
  })

  it('Okta: uid as the user (sub is the login email), the tenant claim, groups as roles, scp; typ at+jwt enforced', async () => {
    const url = await service(idp, { audience: 'api://shop', typ: 'at+jwt' }, { mapper: oktaClaims({ tenantClaim: 'tenant' }) })
    const claims = { ver: 1, jti: 'AT.x1', sub: 'alice@acme.example', uid: '00u1ab2cd3EF4gh5', cid: '0oa1client', aud: 'api://shop', scp: ['openid', 'orders:write'], groups: ['Buyers', 'Everyone'], tenant: 'acme' }
    const token = await idp.mint(claims, { header: { typ: 'application/at+jwt' } })
    const a = await call(url, bearer(token))
    expect(contextOf(a)).toMatchObject({ sub: '00u1ab2cd3EF4gh5', tid: 'acme', roles: ['Buyers', 'Everyone'], scope: 'openid orders:write', pty: 'user' })
    expect(a.text).not.toContain('alice@')
    // RFC 9068 §4: with typ required, a plain JWT is not an access token
    const plain = await idp.mint(claims)
    const r = await call(url, bearer(plain))
    expectRefused(r, 401, 'wrong_typ')
    expectNoLeak(r, plain, ['alice', 'acme', '00u1ab2cd3EF4gh5'])
  })

  it('Entra ID: oid as the user, the directory mapped to the tenant by configuration, roles and scp; another directory is refused', async () => {
    const contoso = '72f988bf-86f1-41af-91ab-2d7cd011db47'
    const fabrikam = '0b9c3a11-2222-4c4c-8d8d-5e5e5e5e5e5e'
    const entra = await startIdp({ issuer: () => `https://login.microsoftonline.com/${contoso}/v2.0` })
    open.push(entra)
    const issuers = [contoso, fabrikam].map((t) => `https://login.microsoftonline.com/${t}/v2.0`)
    const url = await service(entra, { issuer: issuers, audience: 'api://7d2c-shop' }, { mapper: entraClaims({ directories: { [contoso]: 'contoso' } }) })
    const base = { aud: 'api://7d2c-shop', tid: contoso, oid: '6b1e9c52-0f0a-4d7e-8a6f-3d2c1b0a9f8e', sub: 'pairwise-AbCdEf', roles: ['Orders.Write'], scp: 'orders.read orders.write', preferred_username: 'alice@contoso.com', name: 'Alice', ver: '2.0' }
    const a = await call(url, bearer(await entra.mint(base)))
    expect(contextOf(a)).toMatchObject({ sub: '6b1e9c52-0f0a-4d7e-8a6f-3d2c1b0a9f8e', tid: 'contoso', roles: ['Orders.Write'], scope: 'orders.read orders.write' })
    expect(a.text).not.toMatch(/alice|pairwise/)
    // a directory the application was not configured for
    const other = await entra.mint({ ...base, tid: fabrikam }, { issuer: issuers[1]! })
    expectRefused(await call(url, bearer(other)), 403, 'no_tenant')
    // one directory's issuer with another directory's tid
    expectRefused(await call(url, bearer(await entra.mint({ ...base, tid: fabrikam }))), 401, 'wrong_issuer')
  })

  it('Cognito: token_use access only, client_id instead of aud, cognito:groups, the custom tenant attribute', async () => {
    const cognito = await startIdp({ issuer: () => 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123' })
    open.push(cognito)
    const url = await service(cognito, { clientId: '5abc123client' }, { mapper: cognitoClaims({ tenantClaim: 'custom:tenant_id' }) })
    const base = { sub: 'a1b2c3d4-0000-4000-8000-123456789abc', token_use: 'access', client_id: '5abc123client', 'cognito:groups': ['buyers'], scope: 'orders/write', username: 'alice@acme.example', 'custom:tenant_id': 'acme' }
    expect(contextOf(await call(url, bearer(await cognito.mint(base))))).toMatchObject({ sub: 'a1b2c3d4-0000-4000-8000-123456789abc', tid: 'acme', roles: ['buyers'], scope: 'orders/write' })
    expectRefused(await call(url, bearer(await cognito.mint({ ...base, token_use: 'id', aud: '5abc123client' }))), 401, 'wrong_typ')
    expectRefused(await call(url, bearer(await cognito.mint({ ...base, client_id: 'other-client' }))), 401, 'wrong_audience')
  })

  it('a typed mapper of your own; an email as subject is refused unless pseudonymized with a key', async () => {
    const byEmail = defineClaimMapper<{ email?: unknown; org?: unknown }>('corp', (c) => ({ subject: stringClaim(c.email), tenants: stringValues(c.org) }))
    const plain = await service(idp, { audience: 'corp' }, { mapper: byEmail })
    const token = await idp.mint({ aud: 'corp', email: 'bob@globex.example', org: 'globex' })
    const r = await call(plain, bearer(token))
    expectRefused(r, 403, 'no_subject')
    expectNoLeak(r, token, ['bob', 'globex'])
    const hmacKey = randomBytes(32)
    const hashed = await service(idp, { audience: 'corp' }, { mapper: byEmail, subject: { hmacKey } })
    const ctx = contextOf(await call(hashed, bearer(token)))
    expect(ctx.sub).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(ctx.tid).toBe('globex')
    // stable per user: the same user gets the same pseudonym
    expect(contextOf(await call(hashed, bearer(await idp.mint({ aud: 'corp', email: 'bob@globex.example', org: 'globex' })))).sub).toBe(ctx.sub)
  })
})

describe('refusals: exact status, reason and a challenge that leaks nothing', () => {
  let idp: TestIdp
  let url: string
  let tenantUrl: string
  const claims = { sub: 'u-7d2f', aud: 'shop-api', organization: ['acme'], realm_access: { roles: ['buyer'] }, email: 'carol@acme.example' }
  beforeAll(async () => {
    idp = await startIdp()
    open.push(idp)
    url = await service(idp, { audience: 'shop-api' }, { mapper: keycloakClaims(), txnHeader: 'x-request-id' })
    tenantUrl = await service(idp, { audience: 'shop-api' }, { mapper: keycloakClaims(), tenantOf: (req) => /^\/tenants\/([^/]+)/.exec(req.url ?? '')?.[1] })
  })

  it('expired', async () => {
    const token = await idp.mint(claims, { iat: Math.floor(Date.now() / 1000) - 900, lifetimeSeconds: 300 })
    const r = await call(url, bearer(token))
    expectRefused(r, 401, 'expired')
    expectNoLeak(r, token, ['u-7d2f', 'acme', 'carol', 'buyer'])
  })

  it('wrong audience', async () => {
    const token = await idp.mint({ ...claims, aud: 'billing-api' })
    const r = await call(url, bearer(token))
    expectRefused(r, 401, 'wrong_audience')
    expectNoLeak(r, token, ['billing-api', 'u-7d2f'])
  })

  it('wrong issuer (signed with the trusted key, another iss)', async () => {
    const token = await idp.mint(claims, { issuer: 'https://idp.attacker.example' })
    const r = await call(url, bearer(token))
    expectRefused(r, 401, 'wrong_issuer')
    expectNoLeak(r, token, ['attacker'])
  })

  it('alg none is refused before any key is looked up', async () => {
    const token = unsecured({ ...claims, iss: idp.issuer, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 })
    const before = idp.fetches()
    expectRefused(await call(url, bearer(token)), 401, 'alg_not_allowed')
    expect(idp.fetches()).toBe(before)
  })

  it('a key that is not the provider’s (same kid) is a bad signature; a jku header is refused', async () => {
    const { privateKey } = await generateKeyPair('RS256')
    expectRefused(await call(url, bearer(await idp.mint(claims, { key: privateKey }))), 401, 'bad_signature')
    expectRefused(await call(url, bearer(await idp.mint(claims, { header: { jku: 'https://attacker.example/jwks' } }))), 401, 'header_not_allowed')
  })

  it('a token of one tenant used for another', async () => {
    const token = await idp.mint(claims)
    expect((await call(`${tenantUrl}/tenants/acme/orders`, bearer(token))).status).toBe(200)
    const r = await call(`${tenantUrl}/tenants/globex/orders`, bearer(token))
    expectRefused(r, 403, 'tenant_mismatch')
    expectNoLeak(r, token, ['acme'])
  })

  it('a user in two organizations maps to two tenants: refused', async () => {
    const token = await idp.mint({ ...claims, organization: ['acme', 'globex'] })
    const r = await call(url, bearer(token))
    expectRefused(r, 403, 'ambiguous_tenant')
    expectNoLeak(r, token, ['acme', 'globex'])
  })

  it('no organization: no tenant', async () => {
    expectRefused(await call(url, bearer(await idp.mint({ ...claims, organization: [] }))), 403, 'no_tenant')
  })

  it('no credentials: 401 with a bare challenge (RFC 6750 §3.1); another scheme counts as none', async () => {
    for (const init of [{}, { headers: { authorization: 'Basic dTpw' } }]) {
      const r = await call(url, init)
      expect({ status: r.status, reason: r.body.reason, challenge: r.headers.get('www-authenticate') }).toEqual({ status: 401, reason: 'missing', challenge: 'Bearer realm="shop"' })
    }
  })

  it('two Authorization headers: 400 invalid_request', async () => {
    const token = await idp.mint(claims)
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(url)
      httpRequest({ host: u.hostname, port: u.port, path: '/', headers: ['authorization', `Bearer ${token}`, 'authorization', `Bearer ${token}`] }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
        .on('error', reject)
        .end()
    })
    expect(status).toBe(400)
  })

  it('txn: a valid request id is kept, an invalid one refused, none gives a new one', async () => {
    const token = await idp.mint(claims)
    const kept = await call(url, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'req-4f2a9c01' } })
    expect(contextOf(kept).txn).toBe('req-4f2a9c01')
    expectRefused(await call(url, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'bad id\twith space' } }), 400, 'invalid_request')
    const a = contextOf(await call(url, bearer(token))).txn
    const b = contextOf(await call(url, bearer(token))).txn
    expect(a).not.toBe(b)
  })

  it('the JWKS fetched once for many requests; an unreachable JWKS is 503 (retry), not a refusal', async () => {
    const fresh = await startIdp()
    open.push(fresh)
    const u = await service(fresh, { audience: 'shop-api' }, { mapper: keycloakClaims() })
    for (let i = 0; i < 3; i++) expect((await call(u, bearer(await fresh.mint(claims)))).status).toBe(200)
    expect(fresh.fetches()).toBe(1)
    const token = await fresh.mint(claims)
    await fresh.close()
    open.splice(open.indexOf(fresh), 1)
    const down = await service(fresh, { audience: 'shop-api', jwks: { timeoutMs: 1000 } }, { mapper: keycloakClaims() })
    const r = await call(down, bearer(token))
    expect({ status: r.status, retry: r.headers.get('retry-after'), challenge: r.headers.get('www-authenticate') }).toEqual({ status: 503, retry: '1', challenge: null })
  })
})

describe('options', () => {
  it('are checked when the verifier is built', () => {
    expect(() => createAccessTokenVerifier({ issuer: 'https://i', jwksUri: 'https://i/jwks' })).toThrow(/audience/)
    expect(() => createAccessTokenVerifier({ issuer: 'https://i', jwksUri: 'https://i/jwks', audience: 'a', algorithms: ['HS256' as 'RS256'] })).toThrow(/algorithms/)
    expect(() => createAccessTokenVerifier({ issuer: 'https://i', jwksUri: 'https://i/jwks', audience: 'a', clockToleranceSeconds: 300 })).toThrow(/clockToleranceSeconds/)
    expect(() => createAccessTokenVerifier({ issuer: 'https://i', jwksUri: 'https://i/jwks', audiance: 'a' } as never)).toThrow(/did you mean 'audience'/)
  })
})
