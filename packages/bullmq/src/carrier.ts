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
 * The content of `__idctx`: the compact JWS, and the Merkle proof when one token signs several jobs.
 *
 * @example
 * ```ts
 * const c = decodeCarrier(raw.__idctx)
 * if (c !== undefined && c !== 'malformed') console.log(c.proof === undefined ? 'single' : 'batch')
 * ```
 */
export interface Carrier {
  readonly token: string
  readonly proof: string | undefined
}

/**
 * Encodes the `__idctx` value: `<jws>` for a job signed alone, `<jws>~<proof>` for a job signed
 * with others (one `addBulk` or flow call). A plain string keeps the job small and readable.
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
 * Decodes an `__idctx` value read from a job: `undefined` when the key is absent, `'malformed'`
 * when it holds anything but a string of the documented form. Nothing is trusted here; the
 * verifier checks the token and recomputes the binding.
 *
 * @example
 * ```ts
 * const carrier = decodeCarrier(job.data.__idctx)
 * ```
 */
export function decodeCarrier(value: unknown): Carrier | undefined | 'malformed' {
  if (value === undefined) return undefined
  if (typeof value !== 'string') return 'malformed'
  const at = value.indexOf(SEPARATOR)
  if (at === -1) return { token: value, proof: undefined }
  const proof = value.slice(at + 1)
  if (at === 0 || proof.length === 0 || proof.includes(SEPARATOR)) return 'malformed'
  return { token: value.slice(0, at), proof }
}
