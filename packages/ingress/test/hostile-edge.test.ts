import { describe, expect, it } from 'vitest'
import {
  auth0Claims,
  cognitoClaims,
  defineClaimMapper,
  entraClaims,
  keycloakClaims,
  oktaClaims,
  stringClaim,
  stringList,
  stringValues,
  type AccessTokenVerifierOptions,
  type ClaimMapper,
} from '@idctx/ingress'
import { b64, base, ingress, ISS, mint, now, reasonOf, req, signRaw } from './hostile.js'

describe('hostile requests at the edge', () => {
  it('Authorization header variants', async () => {
    const g = ingress()
    const t = mint(base)
    const status = async (headers: Record<string, string | string[]>) => ((x) => (x.ok ? 'ok' : `${x.refusal.status} ${x.refusal.reason}`))(await g.check(req(headers), undefined))
    expect(await status({ authorization: `bearer ${t}` })).toBe('ok')
    expect(await status({ authorization: `BEARER   ${t}` })).toBe('ok')
    expect(await status({ authorization: `Bearer\t${t}` })).toBe('400 invalid_request')
    expect(await status({ authorization: `Bearer ${t}, Bearer ${t}` })).toBe('400 invalid_request')
    expect(await status({ authorization: [`Bearer ${t}`, `Bearer ${t}`] })).toBe('400 invalid_request')
    expect(await status({ authorization: 'Bearer' })).toBe('400 invalid_request')
    expect(await status({ authorization: `Basic ${b64('a:b')}` })).toBe('401 missing')
    expect(await status({ authorization: `DPoP ${t}` })).toBe('401 missing')
    expect(await g.check(req({}, { url: `/?access_token=${t}` }), undefined)).toMatchObject({ ok: false, refusal: { status: 401, reason: 'missing' } })
  })

  it('tenants: two orgs, empty, object map, prototype names', async () => {
    const g = ingress()
    expect(await reasonOf(g, mint({ ...base, organization: ['acme', 'globex'] }))).toBe('ambiguous_tenant')
    expect(await reasonOf(g, mint({ ...base, organization: { acme: {}, globex: {} } }))).toBe('ambiguous_tenant')
    expect(await reasonOf(g, mint({ ...base, organization: '' }))).toBe('no_tenant')
    expect(await reasonOf(g, mint({ ...base, organization: [''] }))).toBe('no_tenant')
    expect(await reasonOf(g, mint({ ...base, organization: [7, null, {}] }))).toBe('no_tenant')
    expect(await reasonOf(g, mint({ ...base, organization: 'acme' }))).toBe('ok')
    expect(await reasonOf(g, signRaw(JSON.stringify({ alg: 'RS256', kid: 'idp-1' }), `{"iss":"${ISS}","aud":"shop-api","iat":${now()},"exp":${now() + 60},"sub":"u-1","organization":["acme"],"organization":["globex"]}`))).toBe('ok')
    const a0 = ingress(auth0Claims({ namespace: 'https://s/', organizations: { org_1: 'acme' } }))
    for (const org of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) expect(await reasonOf(a0, mint({ sub: 'auth0|1', org_id: org }))).toBe('no_tenant')
    const cg = ingress(cognitoClaims({ tenantClaim: 'constructor' }), {}, { clientId: 'c1', audience: undefined } as never)
    expect(await reasonOf(cg, mint({ sub: 'u-1', token_use: 'access', client_id: 'c1' }))).toBe('no_tenant')
    const en = ingress(entraClaims({ directories: { 'aaaaaaaa-0000-0000-0000-000000000001': 'contoso' } }), {}, { issuer: ['https://login.microsoftonline.com/__proto__/v2.0'] })
    expect(await reasonOf(en, mint({ iss: 'https://login.microsoftonline.com/__proto__/v2.0', tid: '__proto__', oid: 'o-1', scp: 'x' }))).toBe('no_tenant')
  })

  it('tenant and subject ids with control, format or unpaired surrogate characters are refused', async () => {
    const g = ingress()
    for (const t of ['acme\u0000', 'ac\tme', 'acme\u001b[31m', 'acme\u0085', 'acme\u2028', 'ac\u202eme', 'acme\u200b', 'acme\ud800', 'acme ', 'x'.repeat(257)]) {
      expect(await reasonOf(g, mint({ ...base, organization: [t] })), JSON.stringify(t)).toBe('no_tenant')
    }
    for (const t of ['acme/eu', 'acme%2F', 'ácme', 'a c m e']) expect(await reasonOf(g, mint({ ...base, organization: [t] })), t).toBe('ok')
    for (const s of ['u\u0000', 'u\nx', 'u\u2028', 'u\ud800', 'u\u200b']) expect(await reasonOf(g, mint({ ...base, sub: s })), JSON.stringify(s)).toBe('no_subject')
  })

  it('PII: no mapper lets an email, a login, a upn or a name into the context', async () => {
    const pii = { email: 'alice@acme.example', preferred_username: 'alice@acme.example', upn: 'alice@acme.example', unique_name: 'alice@acme.example', name: 'Alice', username: 'alice@acme.example', login: 'alice@acme.example' }
    const dir = 'aaaaaaaa-0000-0000-0000-000000000001'
    const cases: [ClaimMapper<any>, Record<string, unknown>, Partial<AccessTokenVerifierOptions>][] = [
      [keycloakClaims(), { ...base, ...pii, sub: 'alice@acme.example' }, {}],
      [auth0Claims({ namespace: 'https://s/' }), { ...pii, sub: 'email|alice@acme.example', org_id: 'acme' }, {}],
      [oktaClaims({ tenantClaim: 'tenant' }), { ...pii, sub: 'alice@acme.example', tenant: 'acme' }, {}],
      [oktaClaims({ tenantClaim: 'tenant' }), { ...pii, sub: 'alice@acme.example', uid: 'alice@acme.example', tenant: 'acme' }, {}],
      [entraClaims({ directories: { [dir]: 'contoso' } }), { ...pii, iss: `https://sts.windows.net/${dir}/`, tid: dir, oid: 'alice@acme.example', sub: 'alice@acme.example', scp: 'x' }, { issuer: [`https://sts.windows.net/${dir}/`] }],
      [cognitoClaims({ tenantClaim: 'custom:t' }), { ...pii, sub: 'alice@acme.example', token_use: 'access', client_id: 'c1', 'custom:t': 'acme' }, { clientId: 'c1' }],
    ]
    for (const [mapper, claims, v] of cases) {
      expect(await reasonOf(ingress(mapper, {}, v), mint(claims)), mapper.provider).toBe('no_subject')
    }
    // a custom mapper that returns a non-string subject is refused, not coerced
    const bad = defineClaimMapper('bad', () => ({ subject: 12345 as unknown as string, tenants: ['acme'] }))
    expect(await reasonOf(ingress(bad), mint(base))).toBe('no_subject')
  })

  it('Entra: an ID token (neither scp nor roles) is not an access token; v1 and v2 issuers', async () => {
    const dir = 'aaaaaaaa-0000-0000-0000-000000000001'
    const issuers = [`https://login.microsoftonline.com/${dir}/v2.0`, `https://sts.windows.net/${dir}/`]
    const g = ingress(entraClaims({ directories: { [dir.toUpperCase()]: 'contoso' } }), {}, { issuer: issuers })
    const c = { tid: dir, oid: 'o-1' }
    expect(await reasonOf(g, mint({ ...c, iss: issuers[0], scp: 'orders.read' }))).toBe('ok')
    expect(await reasonOf(g, mint({ ...c, iss: issuers[1], roles: ['Orders.Write'], idtyp: 'app' }))).toBe('ok')
    expect(await reasonOf(g, mint({ ...c, iss: issuers[0], nonce: 'n', ver: '2.0' }))).toBe('wrong_typ')
    expect(await reasonOf(g, mint({ ...c, iss: issuers[0], tid: 'bbbbbbbb-0000-0000-0000-000000000002', scp: 'x' }))).toBe('wrong_issuer')
  })

  it('txn header: control characters, huge, duplicated, non-UUID', async () => {
    const g = ingress(keycloakClaims(), { txnHeader: 'X-Request-Id' })
    const t = mint(base)
    const txnOf = async (headers: Record<string, string | string[]>) => ((x) => (x.ok ? x.context.txn : x.refusal.reason))(await g.check(req({ authorization: `Bearer ${t}`, ...headers }), undefined))
    expect(await txnOf({ 'x-request-id': 'req-4f2a9c01' })).toBe('req-4f2a9c01')
    for (const bad of ['abc\r\nx-evil: 1', 'a'.repeat(129), 'short', 'req 4f2a9c01', 'req-4f2a9c01\u0000', 'ré-4f2a9c01', '']) expect(await txnOf({ 'x-request-id': bad })).toBe('invalid_request')
    expect(await txnOf({ 'x-request-id': ['req-4f2a9c01', 'req-4f2a9c02'] })).toBe('invalid_request')
    expect(await txnOf({})).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('scopes and roles with control characters do not reach the context', async () => {
    const g = ingress()
    const x = await g.check(req({ authorization: `Bearer ${mint({ ...base, scope: 'openid orders:write\nx-evil "q" a\\b', realm_access: { roles: ['buyer', 'adm\u0000in', '\u202eevil'] } })}` }), undefined)
    expect(x.ok && { scope: x.context.scope, roles: x.context.roles }).toEqual({ scope: 'openid', roles: ['buyer'] })
  })
})

describe('claim readers', () => {
  it('claim readers ignore non-strings', () => {
    expect(stringClaim(['a'])).toBeUndefined()
    expect(stringList({ length: 2, 0: 'a', 1: 'b' })).toEqual([])
    expect(stringValues([['acme']])).toEqual([])
  })
})
