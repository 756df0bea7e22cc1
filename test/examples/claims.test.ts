import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, type JWTPayload } from 'jose'
import { auth0Claims, keycloakClaims, mapClaims } from '@idctx/example-gateway/claims'
import { startGateway, type Gateway } from '@idctx/example-gateway'
import { AUTH0_NAMESPACE, startIdentityProvider, type IdentityProvider } from '@idctx/example-identity-provider'

let idp: IdentityProvider
beforeAll(async () => {
  idp = await startIdentityProvider()
})
afterAll(async () => {
  await idp?.close()
})

const mappers = [keycloakClaims, auth0Claims(AUTH0_NAMESPACE)]

describe('claim mapping of the gateway', () => {
  it('maps a Keycloak access token: realm roles, the tenant attribute, its scope', async () => {
    const payload = decodeJwt(await idp.issue({ shape: 'keycloak', user: 'f3a1c2d4', tenant: 'acme', roles: ['buyer', 'auditor'] }))
    expect(keycloakClaims(payload)).toEqual({ sub: 'f3a1c2d4', tenant: 'acme', roles: ['buyer', 'auditor'], scope: 'openid orders:write' })
    expect(auth0Claims(AUTH0_NAMESPACE)(payload)).toBeUndefined()
    expect(mapClaims(payload, mappers)?.tenant).toBe('acme')
  })

  it('maps a Keycloak 26 organization claim when there is no tenant attribute, only when it is a single one', () => {
    const base: JWTPayload = { sub: 'u-1', realm_access: { roles: ['buyer'] } }
    expect(keycloakClaims({ ...base, organization: ['globex'] })?.tenant).toBe('globex')
    expect(keycloakClaims({ ...base, organization: ['globex', 'acme'] })).toBeUndefined()
    expect(keycloakClaims({ ...base, organization: [] })).toBeUndefined()
    expect(keycloakClaims(base)).toBeUndefined()
    // the attribute wins over the organization
    expect(keycloakClaims({ ...base, tenant: 'acme', organization: ['globex'] })?.tenant).toBe('acme')
  })

  it('maps an Auth0 access token: the organization as tenant, permissions as scope, namespaced roles', async () => {
    const payload = decodeJwt(await idp.issue({ shape: 'auth0', user: 'auth0|65f1c0de', tenant: 'globex', roles: ['purchaser'] }))
    expect(auth0Claims(AUTH0_NAMESPACE)(payload)).toEqual({ sub: 'auth0|65f1c0de', tenant: 'globex', roles: ['purchaser'], scope: 'orders:write' })
    expect(keycloakClaims(payload)).toBeUndefined()
    expect(mapClaims(payload, mappers)?.tenant).toBe('globex')
  })

  it('takes roles only from its own namespace and falls back to scope without permissions', () => {
    const p: JWTPayload = { sub: 'auth0|1', org_id: 'org_acme', roles: ['admin'], 'https://other.example/roles': ['admin'], scope: 'read:orders' }
    expect(auth0Claims(AUTH0_NAMESPACE)(p)).toEqual({ sub: 'auth0|1', tenant: 'org_acme', roles: [], scope: 'read:orders' })
  })

  it('ignores non-string roles and permissions', () => {
    const p: JWTPayload = { sub: 'auth0|1', org_id: 'globex', permissions: ['orders:write', 7, null], [`${AUTH0_NAMESPACE}roles`]: ['buyer', { x: 1 }] }
    expect(auth0Claims(AUTH0_NAMESPACE)(p)).toEqual({ sub: 'auth0|1', tenant: 'globex', roles: ['buyer'], scope: 'orders:write' })
  })

  it('maps no token without a subject or a tenant', () => {
    expect(mapClaims({ org_id: 'globex' }, mappers)).toBeUndefined()
    expect(mapClaims({ sub: 'u-1' }, mappers)).toBeUndefined()
    expect(mapClaims({ sub: 'u-1', realm_access: { roles: [] } }, mappers)).toBeUndefined()
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
    expect(await post(`Bearer ${jwt}`)).toEqual({ status: 401, body: { error: 'invalid bearer token', reason: 'expired' } })
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

  it('no bearer token → 401 no_bearer', async () => {
    expect(await post(undefined)).toEqual({ status: 401, body: { error: 'bearer token required', reason: 'no_bearer' } })
  })

  it('counts each refusal by reason and accepts none', () => {
    expect(gateway.stats.accepted).toBe(0)
    expect(gateway.stats.rejected).toEqual({ expired: 1, bad_signature: 1, no_bearer: 1 })
  })
})
