import { readFileSync } from 'node:fs'
import {
  createJwksHandler,
  createKeySet,
  exportKeySet,
  generateKey,
  importKeySet,
  type KeyError,
  type KeySet,
  type KeySetDocument,
  type ReadyReport,
} from '@idctx/core'
import type { Route } from './http.js'

/** Where every signing example service serves its public idctx keys. */
export const IDCTX_JWKS_PATH = '/.well-known/idctx-jwks.json'

/**
 * `Cache-Control: max-age` of the services' JWKS responses, in seconds. A staged key must be
 * published at least the verifiers' `maxAgeMs` plus this long before it signs (docs/key-rotation.md).
 */
export const JWKS_MAX_AGE_SECONDS = 60

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
 * The private key set document of a new key set: one fresh EdDSA key, active. This is the
 * "generate" step of docs/key-rotation.md: generate it once, store it as a secret, and give the
 * same document to every replica of the service (`IDCTX_KEYSET` or `IDCTX_KEYSET_FILE`).
 *
 * @example
 * ```ts
 * const doc = JSON.stringify(newKeySetDocument('orders'))
 * await startOrders({ ...options, keySet: doc }) // replica 1
 * await startOrders({ ...options, keySet: doc }) // replica 2: same keys, same JWKS
 * ```
 */
export function newKeySetDocument(service: string): KeySetDocument {
  return exportKeySet(createKeySet({ active: generateKey('EdDSA', { kid: `${service}-${Date.now().toString(36)}` }) }))
}

/**
 * The key set document a service process was given through its environment: the document itself
 * in `IDCTX_KEYSET`, or the path of a file holding it in `IDCTX_KEYSET_FILE` (a mounted secret).
 * Undefined when neither is set. The document is a secret: it is never logged.
 *
 * @throws {Error} when `IDCTX_KEYSET_FILE` names a file that cannot be read (the message names the
 *   path, not the content).
 * @example
 * ```ts
 * const orders = await startOrders({ ...options, keySet: keySetFromEnv(process.env) })
 * ```
 */
export function keySetFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const inline = env.IDCTX_KEYSET
  if (inline !== undefined && inline !== '') return inline
  const file = env.IDCTX_KEYSET_FILE
  if (file === undefined || file === '') return undefined
  try {
    return readFileSync(file, 'utf8')
  } catch (e) {
    throw new Error(`IDCTX_KEYSET_FILE ${JSON.stringify(file)} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

/**
 * A service's idctx signing keys. Every replica of a service must sign with the same key set:
 * given its private key set document (`importKeySet`), all replicas sign with the same active key
 * and publish the same JWKS, so a verifier that fetches any one replica's JWKS knows every
 * replica's key. Without a document a fresh key set is generated for this process alone — fine for
 * one replica, wrong for several (a verifier would reject the other replicas' tokens as
 * `unknown_kid`).
 *
 * @throws {KeyError} when the document is not a valid `keyset-v1` document (the message lists the
 *   paths, never values).
 * @example
 * ```ts
 * const keys = serviceKeys('orders', keySetFromEnv(process.env))
 * const signer = createSigner({ issuer: 'orders', audience: 'shop', key: keys })
 * ```
 */
export function serviceKeys(service: string, document?: string | KeySetDocument): KeySet {
  if (document !== undefined) return importKeySet(document)
  return createKeySet({ active: generateKey('EdDSA', { kid: `${service}-${Date.now().toString(36)}` }) })
}

/**
 * The route every signing service exposes so verifiers can fetch its public keys: `createJwksHandler`
 * (active, staged and retiring public keys; `Cache-Control`, `ETag`, `304`).
 */
export function jwksRoute(keys: KeySet, maxAgeSeconds = JWKS_MAX_AGE_SECONDS): Record<string, Route> {
  const handler = createJwksHandler(keys, { maxAgeSeconds })
  return { [`GET ${IDCTX_JWKS_PATH}`]: (req, _body, res) => handler(req, res) }
}

/** What a key source error says about where it failed: URL, HTTP status or network code. Never key material. */
function whereItFailed(error: KeyError): string {
  const why = error.status !== undefined ? `HTTP ${error.status}` : (error.networkCode ?? 'unreadable JWKS')
  return `${error.url ?? 'key source'}: ${why}`
}

/**
 * The start-up check of a verifying service: `verifier.ready()` fetches every trusted issuer's
 * JWKS once; each issuer that cannot be reached is logged with its URL and HTTP status or network
 * code (no key material, no token). A service still starts: until the issuer can be reached, its
 * messages are retried (Kafka redelivers, the HTTP caller gets 503), never rejected.
 *
 * @returns the issuers that could not be reached (empty when all could).
 * @example
 * ```ts
 * await logUnreachableIssuers('billing', () => billing.ready())
 * ```
 */
export async function logUnreachableIssuers(
  service: string,
  ready: () => Promise<ReadyReport>,
  log: (line: string) => void = (line) => console.warn(line),
): Promise<string[]> {
  const report = await ready()
  const unreachable: string[] = []
  for (const [issuer, r] of Object.entries(report.issuers)) {
    if (r.ok) continue
    unreachable.push(issuer)
    log(`${service}: idctx keys of issuer ${issuer} cannot be loaded yet (${whereItFailed(r.error)}); its messages are retried until they can`)
  }
  return unreachable
}

/**
 * Runs {@link logUnreachableIssuers} at start, then again every `intervalMs` (default 1000) until
 * every issuer was reached once (in a compose file, a producer may start after its consumers),
 * logging when they are. A failed fetch starts the key source's cooldown, during which that
 * issuer's new tokens are retried (HTTP 503, Kafka redelivery); `ready()` is not held back by the
 * cooldown, so checking every second ends that within a second of the issuer coming up. Once all
 * issuers were reached it stops: `ready()` never fetches an issuer twice.
 *
 * @returns a function that stops the checks (call it on shutdown).
 */
export function watchIssuers(
  service: string,
  ready: () => Promise<ReadyReport>,
  options: { intervalMs?: number; log?: (line: string) => void } = {},
): () => void {
  const log = options.log ?? ((line: string) => console.warn(line))
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  let missing: string[] = []
  const check = async (first: boolean) => {
    const unreachable = await logUnreachableIssuers(service, ready, first ? log : () => {})
    const back = missing.filter((i) => !unreachable.includes(i))
    if (back.length > 0) log(`${service}: idctx keys of issuer ${back.join(', ')} loaded`)
    missing = unreachable
    if (!stopped && unreachable.length > 0) timer = setTimeout(() => void check(false), options.intervalMs ?? 1000).unref()
  }
  void check(true)
  return () => {
    stopped = true
    if (timer !== undefined) clearTimeout(timer)
  }
}
