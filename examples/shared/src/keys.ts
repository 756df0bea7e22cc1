import { createKeySet, generateKey, type KeySet } from '@idctx/core'
import { json, type Route } from './http.js'

/**
 * A service's idctx signing keys. Generated at start: a real deployment loads them from a secret
 * store (`importJwk(exportPrivateJwk(…))`) and rotates them (docs/key-rotation.md).
 */
export function serviceKeys(service: string): KeySet {
  return createKeySet({ active: generateKey('EdDSA', { kid: `${service}-${Date.now().toString(36)}` }) })
}

/** The route every signing service exposes so verifiers can fetch its public keys. */
export function jwksRoute(keys: KeySet): Record<string, Route> {
  return { 'GET /.well-known/idctx-jwks.json': (_req, _body, res) => json(res, 200, keys.jwks()) }
}
