/**
 * The reserved key of BullMQ job data that carries the idctx token. The processor never sees it.
 *
 * @example
 * ```ts
 * const signed = Object.hasOwn(rawJob.data, IDCTX_KEY) // e.g. in a worker 'failed' listener
 * ```
 */
export const IDCTX_KEY = '__idctx'

/**
 * Separates the token from the proof, and the proof from the context record; it is in neither the
 * JWS nor the proof alphabet (the context record, last, may contain it).
 */
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
 * The content of `__idctx`: either a message token (`kind: 'message'`, the compact JWS, the
 * Merkle proof when one token signs several jobs, and under the batch profile the job's context
 * record), or a job scheduler grant (`kind: 'grant'`, stored in a scheduler's template and copied
 * by BullMQ into every run; never a proof nor a record).
 *
 * @example
 * ```ts
 * const c = decodeCarrier(raw.__idctx)
 * if (c !== undefined && c !== 'malformed') console.log(c.kind, c.contextRecord === undefined ? 'single profile' : 'batch profile')
 * ```
 */
export type Carrier =
  | { readonly kind: 'message'; readonly token: string; readonly proof: string | undefined; readonly contextRecord: string | undefined }
  | { readonly kind: 'grant'; readonly token: string; readonly proof: undefined; readonly contextRecord: undefined }

/**
 * Encodes the `__idctx` value of a message token: `<jws>` for a job signed alone, `<jws>~<proof>`
 * for a job signed with others of the same call (one `addBulk` or flow call), and
 * `<jws>~<proof>~<context record>` for a job whose token is a batch-profile token shared with
 * other calls of its event-loop turn (design, "Batch profile"): the record is its identity as RFC
 * 8785 JSON, last, as it is (it may contain `~`). A plain string keeps the job small and readable.
 * Throws a TypeError for a context record without a proof (a batch-profile job always has one).
 *
 * @example
 * ```ts
 * encodeCarrier('eyJ…', undefined)  // 'eyJ…'
 * encodeCarrier('eyJ…', '0.2.q3v…') // 'eyJ…~0.2.q3v…'
 * encodeCarrier('eyJ…', '1.2.Zk9…', '{"act":{"sub":"orders"},"n":"…","sub":"u-42","tid":"acme","txn":"…"}')
 * // 'eyJ…~1.2.Zk9…~{"act":{"sub":"orders"},"n":"…","sub":"u-42","tid":"acme","txn":"…"}'
 * ```
 */
export function encodeCarrier(token: string, proof: string | undefined, contextRecord?: string): string {
  if (contextRecord === undefined) return proof === undefined ? token : `${token}${SEPARATOR}${proof}`
  if (proof === undefined) throw new TypeError('a context record travels with its proof')
  return `${token}${SEPARATOR}${proof}${SEPARATOR}${contextRecord}`
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
 * `<jws>~<proof>~<context record>`, `g:<jws>`), with no empty part. Nothing is trusted here; the
 * verifier checks the token (its `typ` says whether it is a grant, a single-profile or a
 * batch-profile token, and a context record beside a token of the other profile is `malformed`)
 * and recomputes the binding.
 *
 * @example
 * ```ts
 * decodeCarrier('g:eyJ…') // { kind: 'grant', token: 'eyJ…', proof: undefined, contextRecord: undefined }
 * decodeCarrier('eyJ…~0.2.q3v…~{"act":…}') // { kind: 'message', token: 'eyJ…', proof: '0.2.q3v…', contextRecord: '{"act":…}' }
 * decodeCarrier(42)       // 'malformed'
 * ```
 */
export function decodeCarrier(value: unknown): Carrier | undefined | 'malformed' {
  if (value === undefined) return undefined
  if (typeof value !== 'string') return 'malformed'
  if (value.startsWith(GRANT_PREFIX)) {
    const token = value.slice(GRANT_PREFIX.length)
    if (token.length === 0 || token.includes(SEPARATOR)) return 'malformed'
    return { kind: 'grant', token, proof: undefined, contextRecord: undefined }
  }
  const at = value.indexOf(SEPARATOR)
  if (at === -1) return { kind: 'message', token: value, proof: undefined, contextRecord: undefined }
  const end = value.indexOf(SEPARATOR, at + 1)
  const proof = value.slice(at + 1, end === -1 ? value.length : end)
  if (at === 0 || proof.length === 0) return 'malformed'
  const token = value.slice(0, at)
  if (end === -1) return { kind: 'message', token, proof, contextRecord: undefined }
  const contextRecord = value.slice(end + 1)
  if (contextRecord.length === 0) return 'malformed'
  return { kind: 'message', token, proof, contextRecord }
}
