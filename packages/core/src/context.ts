import { AsyncLocalStorage } from 'node:async_hooks'
import type { ActorClaim, IdctxClaims, PrincipalType } from './claims.js'

/**
 * The identity a message is produced on behalf of. `act` is the chain of producers that carried
 * this context so far (empty on the first hop); the signer pushes itself on top.
 *
 * @example
 * ```ts
 * const context: IdentityContext = { sub: 'u-7d2f', tid: 'acme', txn: randomUUID(), pty: 'user', roles: ['clerk'] }
 * await runWithContext(context, () => producer.send({ topic: 'orders', messages })) // signed for u-7d2f@acme
 * ```
 */
export interface IdentityContext {
  /** The principal (user or service id) the work is done for. */
  readonly sub: string
  /** The tenant the work belongs to. */
  readonly tid: string
  /** The transaction id shared by every hop of one request. */
  readonly txn: string
  /** The kind of principal, when known. */
  readonly pty?: PrincipalType | undefined
  /** Roles of the principal, checked against `Requirements.roles`. */
  readonly roles?: readonly string[] | undefined
  /** Space-separated scopes, checked against `Requirements.scopes`. */
  readonly scope?: string | undefined
  /** The producers that carried this context so far (none on the first hop). */
  readonly act?: ActorClaim | undefined
}

/**
 * A context that came out of a verified token, with the claims it was read from.
 *
 * @example
 * ```ts
 * await consumer.run({
 *   eachMessage: async ({ identity }) => {
 *     const ctx: VerifiedContext | undefined = identity
 *     log.info({ tenant: ctx?.tid, txn: ctx?.txn, token: ctx?.tokenSha256, from: ctx?.claims.iss })
 *   },
 * })
 * ```
 */
export interface VerifiedContext extends IdentityContext {
  /** The verified claims (never the token itself). */
  readonly claims: IdctxClaims
  /** The destination the message was verified for. */
  readonly destination: string
  /** SHA-256 of the token, hex: safe to log and correlate. */
  readonly tokenSha256: string
}

/**
 * An AsyncLocalStorage-backed holder of the current identity context.
 *
 * @example
 * ```ts
 * const store: ContextStore = createContextStore()
 * const producer = wrapProducer(kafka.producer(), { signer, contextStore: store })
 * await store.run({ sub: 'u-7d2f', tid: 'acme', txn: 'b1c9' }, () => producer.send({ topic: 'orders', messages }))
 * ```
 */
export interface ContextStore {
  /** Runs `fn` with `context` as the current context (for everything it awaits or spawns). */
  run<T>(context: IdentityContext, fn: () => T): T
  /** The current context, or undefined outside any `run`. */
  current(): IdentityContext | undefined
  /**
   * Runs `fn` with no current context, whatever surrounds the call: for code that must not act
   * under an identity it was not given (an unverified message, a batch handler).
   */
  exit<T>(fn: () => T): T
}

/**
 * Creates a context store. Most applications use {@link defaultContextStore}; pass your own to
 * isolate tenants of a test or a multi-app process.
 *
 * @example
 * ```ts
 * const store = createContextStore()
 * store.run({ sub: 'u1', tid: 't1', txn: 'x1' }, () => store.current()?.tid) // 't1'
 * store.run({ sub: 'u1', tid: 't1', txn: 'x1' }, () => store.exit(() => store.current())) // undefined
 * ```
 */
export function createContextStore(): ContextStore {
  const als = new AsyncLocalStorage<IdentityContext>()
  return {
    run: (context, fn) => als.run(context, fn),
    current: () => als.getStore(),
    // run(undefined) rather than the experimental AsyncLocalStorage#exit: the same effect.
    exit: (fn) => als.run(undefined as unknown as IdentityContext, fn),
  }
}

/**
 * The process-wide context store the adapters use unless given another one.
 *
 * @example
 * ```ts
 * defaultContextStore.run(ctx, () => producer.send({ topic: 'orders', messages }))
 * ```
 */
export const defaultContextStore: ContextStore = createContextStore()

/**
 * Runs `fn` inside `context` in the default store.
 *
 * @example
 * ```ts
 * await runWithContext({ sub: 'u-42', tid: 'acme', txn: randomUUID() }, () => handle(req))
 * ```
 */
export function runWithContext<T>(context: IdentityContext, fn: () => T): T {
  return defaultContextStore.run(context, fn)
}

/**
 * The current context of the default store, or undefined.
 *
 * @example
 * ```ts
 * const tenant = currentContext()?.tid
 * ```
 */
export function currentContext(): IdentityContext | undefined {
  return defaultContextStore.current()
}

/**
 * The context for the next hop of a verified message: same sub, tid, txn, roles and scope; the
 * producer that signed it becomes part of the actor chain (the next signer pushes itself on top
 * and gives the token a new jti).
 *
 * @example
 * ```ts
 * const next = nextHopContext(verified.claims)
 * ```
 */
export function nextHopContext(claims: IdctxClaims): IdentityContext {
  return {
    sub: claims.sub,
    tid: claims.tid,
    txn: claims.txn,
    pty: claims.pty,
    roles: claims.roles,
    scope: claims.scope,
    act: actorChain(claims),
  }
}

/** The producers so far; a token from a signer that sets no `act` counts its issuer as one. */
function actorChain(claims: IdctxClaims): ActorClaim {
  return claims.act ?? { sub: claims.iss }
}

/**
 * The frozen context a verifier hands out: {@link nextHopContext} plus where it was verified.
 * Written as a literal of fixed shape: spreading into it cost more than an HS256 check.
 */
export function verifiedContext(claims: IdctxClaims, destination: string, tokenSha256: string): VerifiedContext {
  return Object.freeze({
    sub: claims.sub,
    tid: claims.tid,
    txn: claims.txn,
    pty: claims.pty,
    roles: claims.roles,
    scope: claims.scope,
    act: actorChain(claims),
    claims,
    destination,
    tokenSha256,
  })
}
