import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import type { AttackOutcome, AttackTargets } from './targets.js'

interface HttpAnswer {
  readonly status: number
  readonly body: Record<string, unknown>
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  const text = await res.text()
  let parsed: Record<string, unknown> = {}
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {
    // a non-JSON answer has no reason to read
  }
  return { status: res.status, body: parsed }
}

/** A user token from the development IdP (it mints any shape and lifetime: local use only). */
export async function userToken(idpUrl: string, request: { tenant: string; lifetimeSeconds?: number }): Promise<string> {
  const r = await post(new URL('/token', idpUrl).href, { shape: 'keycloak', user: 'u-mallory', roles: ['buyer'], ...request })
  const token = r.body.access_token
  if (r.status !== 200 || typeof token !== 'string') throw new Error(`the IdP answered HTTP ${r.status}`)
  return token
}

/** A token of an IdP the gateway does not trust: its own key, its own issuer, the right shape. */
async function foreignIdpToken(): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const kid = `rogue-${(await exportJWK(publicKey)).x?.slice(0, 8) ?? '1'}`
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ realm_access: { roles: ['admin'] }, tenant: 'acme', scope: 'openid orders:write' })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
    .setIssuer('https://idp.attacker.example')
    .setAudience('shop-api')
    .setSubject('u-mallory')
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey)
}

const ORDER = { item: 'gift card', qty: 1, amount: 500 }

function outcome(id: string, title: string, hop: 'gateway' | 'orders', expected: string, r: HttpAnswer): AttackOutcome {
  const reason = r.body.reason
  return { id, title, hop, expected, got: r.status === 401 && typeof reason === 'string' ? reason : `HTTP ${r.status}`, evidence: `HTTP ${r.status}` }
}

/** The attacks on the HTTP edge: answered at once. */
export async function httpAttacks(t: AttackTargets): Promise<AttackOutcome[]> {
  const gateway = new URL('/orders', t.gatewayUrl).href
  const expired = await userToken(t.idpUrl, { tenant: 'acme', lifetimeSeconds: -120 })
  const foreign = await foreignIdpToken()
  return [
    outcome('expired-user-jwt', 'user JWT expired two minutes ago', 'gateway', 'expired', await post(gateway, ORDER, { authorization: `Bearer ${expired}` })),
    outcome('unknown-idp', 'user JWT from an IdP the gateway does not trust', 'gateway', 'unknown_kid', await post(gateway, ORDER, { authorization: `Bearer ${foreign}` })),
    outcome('bypass-gateway', 'order posted to orders directly, without the gateway', 'orders', 'missing', await post(new URL('/orders', t.ordersUrl).href, ORDER)),
  ]
}

/**
 * The attacker's own order, placed as a real acme user through the gateway: a legitimate order
 * whose Kafka record and BullMQ job the later attacks lift, replay and tamper with.
 */
export async function placeBaitOrder(t: AttackTargets): Promise<{ orderId: string; amount: number }> {
  const token = await userToken(t.idpUrl, { tenant: 'acme' })
  const order = { item: 'bait', qty: 1, amount: 10 }
  const r = await post(new URL('/orders', t.gatewayUrl).href, order, { authorization: `Bearer ${token}` })
  if (r.status !== 202 || typeof r.body.orderId !== 'string') throw new Error(`the bait order got HTTP ${r.status}`)
  return { orderId: r.body.orderId, amount: order.amount }
}
