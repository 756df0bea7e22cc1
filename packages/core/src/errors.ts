import type { ReasonCode } from './reason-codes.js'

/**
 * Base class of every error idctx throws on purpose. `code` is stable and present on both the
 * class and the instance. Messages never contain a token, a key or a payload value.
 *
 * @example
 * ```ts
 * try { await verifier.verifyOrThrow(input) } catch (e) {
 *   if (e instanceof IdctxError) console.warn(e.code)
 * }
 * ```
 */
export class IdctxError extends Error {
  static code = 'ERR_IDCTX'
  code = 'ERR_IDCTX'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/**
 * A message failed verification. `reason` is one of the stable {@link ReasonCode}s; `claim` names
 * the claim or header member involved, when there is one.
 *
 * @example
 * ```ts
 * const r = await verifier.verify(input)
 * if (!r.ok) deadLetter(r.error.reason)
 * ```
 */
export class VerificationError extends IdctxError {
  static override code = 'ERR_IDCTX_VERIFICATION'
  override code = 'ERR_IDCTX_VERIFICATION'
  readonly reason: ReasonCode
  readonly claim: string | undefined
  constructor(reason: ReasonCode, message: string, claim?: string) {
    super(message)
    this.reason = reason
    this.claim = claim
  }
}

/**
 * Options given to a factory were invalid. `issues` lists each offending path and why, never the
 * value itself.
 *
 * @example
 * ```ts
 * try { createSigner({}) } catch (e) { if (e instanceof ConfigError) console.error(e.issues) }
 * ```
 */
export class ConfigError extends IdctxError {
  static override code = 'ERR_IDCTX_CONFIG'
  override code = 'ERR_IDCTX_CONFIG'
  readonly issues: readonly { path: string; message: string }[]
  constructor(what: string, issues: readonly { path: string; message: string }[]) {
    super(`invalid ${what}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`)
    this.issues = issues
  }
}

/**
 * A message could not be signed: no identity context was available, the payload shape is not
 * signable (for example BullMQ job data that is not a plain object), or no active key exists.
 *
 * @example
 * ```ts
 * await wrappedProducer.send({ topic, messages }) // throws SigningError outside a context
 * ```
 */
export class SigningError extends IdctxError {
  static override code = 'ERR_IDCTX_SIGNING'
  override code = 'ERR_IDCTX_SIGNING'
}

/**
 * A key could not be generated, imported or found, or a remote JWKS could not be fetched. For a
 * fetch, `url`, `status` (HTTP) or `networkCode`, and `issuer` say what failed, and `cause` holds
 * the underlying error; none of them holds key material.
 *
 * @example
 * ```ts
 * await importKey({ kty: 'RSA' }, { kid: 'k1' }) // throws KeyError
 * ```
 */
export class KeyError extends IdctxError {
  static override code = 'ERR_IDCTX_KEY'
  override code = 'ERR_IDCTX_KEY'
  /** The JWKS URL involved, without credentials, query or fragment. */
  readonly url: string | undefined
  /** The HTTP status of a failed JWKS fetch. */
  readonly status: number | undefined
  /** The network error code of a failed fetch (`ECONNREFUSED`, `UND_ERR_CONNECT_TIMEOUT`, `TimeoutError`, …). */
  readonly networkCode: string | undefined
  /** The trusted issuer whose keys were being looked up. */
  readonly issuer: string | undefined
  constructor(
    message: string,
    options?: { cause?: unknown; url?: string | undefined; status?: number | undefined; networkCode?: string | undefined; issuer?: string | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.url = options?.url
    this.status = options?.status
    this.networkCode = options?.networkCode
    this.issuer = options?.issuer
  }
}

/**
 * A shared store (replay detection, deny-list) could not answer, or its local copy is older than
 * its staleness bound. Not the message's fault: `verify` throws it and the adapters retry the
 * message instead of rejecting it.
 *
 * @example
 * ```ts
 * try { await verifier.verify(input) } catch (e) { if (e instanceof StoreError) metrics.storeDown.add(1) }
 * ```
 */
export class StoreError extends IdctxError {
  static override code = 'ERR_IDCTX_STORE'
  override code = 'ERR_IDCTX_STORE'
}
