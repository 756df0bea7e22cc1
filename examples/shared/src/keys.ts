import { createKeySet, generateKey, type KeySet } from '@idctx/core'
import { json, type Route } from './http.js'

/** Where every signing example service serves its public idctx keys. */
export const IDCTX_JWKS_PATH = '/.well-known/idctx-jwks.json'

/**
 * The idctx JWKS URL of a service.
 *
 * @example
 * ```ts
 * createRemoteJwks(idctxJwksUrl('http://orders:4002')) // http://orders:4002/.well-known/idctx-jwks.json
 * ```
 */
export function idctxJwksUrl(serviceUrl: string): string {
  return new URL(IDCTX_JWKS_PATH, serviceUrl).href
}

/**
 * A service's idctx signing keys. Generated at start: a real deployment loads them from a secret
 * store (`importJwk(exportPrivateJwk(…))`) and rotates them (docs/key-rotation.md).
 *
 * @example
 * ```ts
 * const keys = serviceKeys('orders')
 * const signer = createSigner({ issuer: 'orders', audience: 'shop', key: keys })
 * ```
 */
export function serviceKeys(service: string): KeySet {
  return createKeySet({ active: generateKey('EdDSA', { kid: `${service}-${Date.now().toString(36)}` }) })
}

/** The route every signing service exposes so verifiers can fetch its public keys. */
export function jwksRoute(keys: KeySet): Record<string, Route> {
  return { [`GET ${IDCTX_JWKS_PATH}`]: (_req, _body, res) => json(res, 200, keys.jwks()) }
}
