import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, type JWTPayload } from 'jose'
import { auth0, devIdpClaims, keycloak } from '@idctx/example-gateway/claims'
import { startGateway, type Gateway } from '@idctx/example-gateway'
import { AUTH0_NAMESPACE, startIdentityProvider, type IdentityProvider } from '@idctx/example-identity-provider'

let idp: IdentityProvider
beforeAll(async () => {
  idp = await startIdentityProvider()
})
afterAll(async () => {
  await idp?.close()
})

describe('claim mapping of the gateway (the @idctx/ingress mappers)', () => {
  it('maps a Keycloak access token of the dev IdP: realm roles, the tenant attribute, its scope — not the username', async () => {
    const payload = decodeJwt(await idp.issue({ shape: 'keycloak', user: 'f3a1c2d4', tenant: 'acme', roles: ['buyer', 'auditor'] }))
    expect(devIdpClaims.map(payload)).toEqual({ subject: 'f3a1c2d4', tenants: ['acme'], roles: ['buyer', 'auditor'], scopes: ['openid', 'orders:write'] })
    expect(JSON.stringify(devIdpClaims.map(payload))).not.toContain('user-')
  })

  it('maps an Auth0 access token: the organization as tenant, permissions as scope, namespaced roles', async () => {
    const payload = decodeJwt(await idp.issue({ shape: 'auth0', user: 'auth0|65f1c0de', tenant: 'globex', roles: ['purchaser'] }))
    expect(devIdpClaims.map(payload)).toEqual({ subject: 'auth0|65f1c0de', tenants: ['globex'], roles: ['purchaser'], scopes: ['orders:write'], principalType: 'user' })
  })

  it('takes roles only from its own namespace; non-string roles and permissions are ignored', () => {
    const p: JWTPayload = { sub: 'auth0|1', org_id: 'globex', roles: ['admin'], 'https://other.example/roles': ['admin'], permissions: ['orders:write', 7, null], [`${AUTH0_NAMESPACE}roles`]: ['buyer', { x: 1 }] }
    expect(auth0.map(p)).toMatchObject({ tenants: ['globex'], roles: ['buyer'], scopes: ['orders:write'] })
  })

  it('a token without a tenant maps to none; the Keycloak mapper reads the tenant attribute only', () => {
    expect(auth0.map({ sub: 'auth0|1' })).toMatchObject({ tenants: [] })
    expect(keycloak.map({ sub: 'u-1', realm_access: { roles: [] }, organization: ['globex'] })).toMatchObject({ tenants: [] })
  })
})

describe('the gateway refuses user tokens it cannot trust, with a reason', () => {
  let gateway: Gateway
  beforeAll(async () => {
    // Nothing is forwarded in these cases: orders is never called.
    gateway = await startGateway({ idpUrl: idp.url, ordersUrl: 'http://127.0.0.1:9', audience: 'shop' })
  })
  afterAll(async () => {
    await gateway?.close()
  })

  const post = async (authorization: string | undefined) => {
    const res = await fetch(`${gateway.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ item: 'widget', qty: 1, amount: 1 }),
    })
    return { status: res.status, body: (await res.json()) as { reason?: string } }
  }

  it('expired → 401 expired', async () => {
    const jwt = await idp.issue({ shape: 'keycloak', user: 'u-1', tenant: 'acme', roles: [], lifetimeSeconds: -120 })
    expect(await post(`Bearer ${jwt}`)).toEqual({ status: 401, body: { error: 'invalid_token', reason: 'expired' } })
  })

  it('signed by another IdP (even under the same kid) → 401 bad_signature', async () => {
    const rogue = await startIdentityProvider({ issuer: idp.url })
    try {
      const jwt = await rogue.issue({ shape: 'keycloak', user: 'u-1', tenant: 'acme', roles: ['admin'] })
      expect((await post(`Bearer ${jwt}`)).body.reason).toBe('bad_signature')
    } finally {
      await rogue.close()
    }
  })

  it('no bearer token → 401 missing', async () => {
    expect(await post(undefined)).toEqual({ status: 401, body: { error: 'unauthorized', reason: 'missing' } })
  })

  it('a user of the dev IdP without a tenant → 403 no_tenant', async () => {
    const jwt = await idp.issue({ shape: 'auth0', user: 'auth0|1', tenant: '', roles: [] })
    expect(await post(`Bearer ${jwt}`)).toEqual({ status: 403, body: { error: 'insufficient_scope', reason: 'no_tenant' } })
  })

  it('counts each refusal by reason and accepts none', () => {
    expect(gateway.stats.accepted).toBe(0)
    expect(gateway.stats.rejected).toEqual({ expired: 1, bad_signature: 1, missing: 1, no_tenant: 1 })
  })
})
