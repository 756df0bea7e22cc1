/**
 * The reserved key of BullMQ job data that carries the idctx token. The processor never sees it.
 *
 * @example
 * ```ts
 * const signed = Object.hasOwn(rawJob.data, IDCTX_KEY) // e.g. in a worker 'failed' listener
 * ```
 */
export const IDCTX_KEY = '__idctx'

/** Separates the token from the proof; it is in neither the JWS nor the proof alphabet. */
const SEPARATOR = '~'

/**
 * Marks a job scheduler grant in `__idctx`: `g:<jws>`. `:` is in neither the JWS nor the proof
 * alphabet, so a grant carrier can never be read as a message token carrier, or the reverse.
 *
 * @example
 * ```ts
 * const isGrant = typeof raw.__idctx === 'string' && raw.__idctx.startsWith(GRANT_PREFIX)
 * ```
 */
export const GRANT_PREFIX = 'g:'

/**
 * The content of `__idctx`: either a message token (`kind: 'message'`, the compact JWS, and the
 * Merkle proof when one token signs several jobs), or a job scheduler grant (`kind: 'grant'`,
 * stored in a scheduler's template and copied by BullMQ into every run; never a proof).
 *
 * @example
 * ```ts
 * const c = decodeCarrier(raw.__idctx)
 * if (c !== undefined && c !== 'malformed') console.log(c.kind, c.proof === undefined ? 'single' : 'batch')
 * ```
 */
export type Carrier =
  | { readonly kind: 'message'; readonly token: string; readonly proof: string | undefined }
  | { readonly kind: 'grant'; readonly token: string; readonly proof: undefined }

/**
 * Encodes the `__idctx` value of a message token: `<jws>` for a job signed alone, `<jws>~<proof>`
 * for a job signed with others (one `addBulk` or flow call). A plain string keeps the job small
 * and readable.
 *
 * @example
 * ```ts
 * encodeCarrier('eyJ…', undefined)  // 'eyJ…'
 * encodeCarrier('eyJ…', '0.2.q3v…') // 'eyJ…~0.2.q3v…'
 * ```
 */
export function encodeCarrier(token: string, proof: string | undefined): string {
  return proof === undefined ? token : `${token}${SEPARATOR}${proof}`
}

/**
 * Encodes the `__idctx` value of a job scheduler template: `g:<grant jws>` (see
 * {@link GRANT_PREFIX}). The wrapped `upsertJobScheduler` stores it; every run carries it.
 *
 * @example
 * ```ts
 * encodeGrantCarrier('eyJ…') // 'g:eyJ…'
 * ```
 */
export function encodeGrantCarrier(grant: string): string {
  return `${GRANT_PREFIX}${grant}`
}

/**
 * Decodes an `__idctx` value read from a job: `undefined` when the key is absent, `'malformed'`
 * when it holds anything but a string of one of the documented forms (`<jws>`, `<jws>~<proof>`,
 * `g:<jws>`). Nothing is trusted here; the verifier checks the token (its `typ` says whether it
 * is a grant) and recomputes the binding.
 *
 * @example
 * ```ts
 * decodeCarrier('g:eyJ…') // { kind: 'grant', token: 'eyJ…', proof: undefined }
 * decodeCarrier(42)       // 'malformed'
 * ```
 */
export function decodeCarrier(value: unknown): Carrier | undefined | 'malformed' {
  if (value === undefined) return undefined
  if (typeof value !== 'string') return 'malformed'
  if (value.startsWith(GRANT_PREFIX)) {
    const token = value.slice(GRANT_PREFIX.length)
    if (token.length === 0 || token.includes(SEPARATOR)) return 'malformed'
    return { kind: 'grant', token, proof: undefined }
  }
  const at = value.indexOf(SEPARATOR)
  if (at === -1) return { kind: 'message', token: value, proof: undefined }
  const proof = value.slice(at + 1)
  if (at === 0 || proof.length === 0 || proof.includes(SEPARATOR)) return 'malformed'
  return { kind: 'message', token: value.slice(0, at), proof }
}
