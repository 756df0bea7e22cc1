import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { b64, ISS, mint, now, publicKey, signRaw, verifier } from './hostile.js'

describe('hostile access tokens', () => {
  const v = verifier()
  const r = async (t: string) => {
    const x = await v.verify(t)
    return x.ok ? 'ok' : x.reason
  }

  it('alg none / None / NONE, HS256 with the public key as secret: alg_not_allowed', async () => {
    const p = b64(JSON.stringify({ iss: ISS, aud: 'shop-api', iat: now(), exp: now() + 60 }))
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) expect(await r(`${b64(JSON.stringify({ alg, kid: 'idp-1' }))}.${p}.`)).toBe('alg_not_allowed')
    const pem = publicKey.export({ format: 'pem', type: 'spki' })
    const h = b64(JSON.stringify({ alg: 'HS256', kid: 'idp-1', typ: 'JWT' }))
    const hs = `${h}.${p}.${createHmac('sha256', pem).update(`${h}.${p}`).digest('base64url')}`
    expect(await r(hs)).toBe('alg_not_allowed')
  })

  it('key-naming and processing headers: header_not_allowed; kid injection: unknown_kid', async () => {
    for (const extra of [{ jku: 'https://evil/jwks' }, { x5u: 'https://evil/c' }, { jwk: { kty: 'RSA' } }, { x5c: ['AAAA'] }, { crit: ['exp'] }, { b64: false }, { zip: 'DEF' }]) {
      expect(await r(mint({}, extra))).toBe('header_not_allowed')
    }
    for (const kid of ['../../etc/passwd', 'https://evil/jwks', "' OR 1=1 --", '', 0, { a: 1 }]) {
      expect(await r(mint({}, { kid }))).toBe('unknown_kid')
    }
  })

  it('duplicate JSON keys in the header: the alg that is checked is the alg that is used', async () => {
    const t = now()
    const tok = signRaw('{"alg":"RS256","kid":"idp-1","alg":"HS256"}', JSON.stringify({ iss: ISS, aud: 'shop-api', iat: t, exp: t + 60 }))
    expect(await r(tok)).toBe('alg_not_allowed')
  })

  it('oversize before parsing; JWE and junk: malformed', async () => {
    expect(await r(`${'a'.repeat(20_000)}.b.c`)).toBe('oversize')
    expect(await r('a.b.c.d.e')).toBe('malformed')
    expect(await r(`${b64('[]')}.${b64('{}')}.x`)).toBe('malformed')
    expect(await r(`${b64('{"alg":"RS256"')}.x.y`)).toBe('malformed')
    expect(await r(`${b64(JSON.stringify({ alg: 'RS256', kid: 'idp-1' }))}.${b64('[1]')}.AAAA`)).toMatch(/malformed|bad_signature/)
  })

  it('typ variants with typ at+jwt: at+jwt and application/at+jwt pass, JWT and none fail', async () => {
    const at = verifier({ typ: 'at+jwt' })
    const rr = async (t: string) => ((x) => (x.ok ? 'ok' : x.reason))(await at.verify(t))
    expect(await rr(mint({}, { typ: 'at+jwt' }))).toBe('ok')
    expect(await rr(mint({}, { typ: 'application/at+jwt' }))).toBe('ok')
    expect(await rr(mint({}, { typ: 'JWT' }))).toBe('wrong_typ')
    expect(await rr(mint({}, { typ: undefined }))).toBe('wrong_typ')
  })

  it('time: nbf and iat in the future are not_yet_valid; exp missing or a string refused', async () => {
    expect(await r(mint({ nbf: now() + 3600 }))).toBe('not_yet_valid')
    expect(await r(mint({ iat: now() + 3600, exp: now() + 7200 }))).toBe('not_yet_valid')
    expect(await r(mint({ exp: undefined }))).toBe('missing_claim')
    expect(await r(mint({ exp: String(now() + 300) }))).toBe('malformed')
    expect(await r(mint({ exp: now() - 3600 }))).toBe('expired')
  })

  it('non-finite times (1e999 parses to Infinity): malformed, never a token that never expires', async () => {
    const t = now()
    expect(await r(signRaw(JSON.stringify({ alg: 'RS256', kid: 'idp-1' }), `{"iss":"${ISS}","aud":"shop-api","iat":${t},"exp":1e999}`))).toBe('malformed')
    expect(await r(signRaw(JSON.stringify({ alg: 'RS256', kid: 'idp-1' }), `{"iss":"${ISS}","aud":"shop-api","iat":-1e999,"exp":${t + 60}}`))).toBe('malformed')
  })

  it('requiredClaims adds to iss and exp, never removes them', async () => {
    const v2 = verifier({ requiredClaims: ['sub'] })
    const x = await v2.verify(mint({ sub: 'u', exp: undefined }))
    expect(x.ok ? 'ok' : x.reason).toBe('missing_claim')
  })

  it('audience array containing ours passes; issuer with a trailing slash fails', async () => {
    expect(await r(mint({ aud: ['other', 'shop-api'] }))).toBe('ok')
    expect(await r(mint({ aud: ['other'] }))).toBe('wrong_audience')
    expect(await r(mint({ iss: `${ISS}/` }))).toBe('wrong_issuer')
  })

  it('a sender-constrained token (cnf: DPoP or mTLS bound) is not a bearer token', async () => {
    expect(await r(mint({ cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } }))).toBe('binding_mismatch')
    expect(await r(mint({ cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } }))).toBe('binding_mismatch')
  })

  it('no token a client can write makes verify throw (a throw is a 503)', async () => {
    const h = b64(JSON.stringify({ alg: 'RS256', kid: 'idp-1' }))
    const odd = [
      `${h}.${b64('null')}.AA`,
      `${h}.${b64('"x"')}.AA`,
      `${h}.${b64('{"iss":1}')}.AA`,
      `${h}.%%%.AA`,
      `${b64(JSON.stringify({ alg: 'ES256', kid: 'idp-1' }))}.${b64('{}')}.AAAA`,
      `${b64(JSON.stringify({ alg: 'EdDSA', kid: 'idp-1' }))}.${b64('{}')}.AAAA`,
      `${b64(JSON.stringify({ alg: 'RS256', kid: 'idp-1', typ: 7 }))}.${b64('{}')}.AAAA`,
      `${h}.${b64('{}')}.${'A'.repeat(500)}`,
      `${b64('{"alg":"RS256","__proto__":{"jku":"x"}}')}.${b64('{}')}.AA`,
    ]
    for (const t of odd) await expect(v.verify(t)).resolves.toMatchObject({ ok: false })
  })
})

