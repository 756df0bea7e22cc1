import { AsyncResource } from 'node:async_hooks'
import type { IdentityContext } from './context.js'
import type { SigningError } from './errors.js'
import type { MessageBinding, PreparedContext, SignOptions, Signer } from './signer.js'

/**
 * Options of {@link createTurnSigner}.
 *
 * @example
 * ```ts
 * const turn = createTurnSigner(signer, { maxMessages: 256 })
 * ```
 */
export interface TurnSignerOptions {
  /**
   * Most messages one token covers (default 1024, 2..1048576). A call that would bring a pending
   * group above it flushes what is pending first, at once; a call that reaches it flushes at once.
   * A call is never split: one call of more messages is signed alone.
   */
  maxMessages?: number
}

/**
 * One call to sign: its identity context, its messages and its token's timing.
 *
 * @example
 * ```ts
 * const call: TurnCall = { context: currentContext()!, messages: [{ destination: 'kafka:orders', leaf }], lifetimeSeconds: 360 }
 * ```
 */
export interface TurnCall {
  /** The identity the messages are produced for (prepared now if it is a plain context). */
  readonly context: IdentityContext | PreparedContext
  /** The call's messages, in order (at least one). */
  readonly messages: readonly MessageBinding[]
  /** Lifetime of the token in seconds (signer default when omitted). Calls group only with equal lifetimes. */
  readonly lifetimeSeconds?: number | undefined
  /** Not valid before this epoch second. Calls group only with an equal `notBefore`. */
  readonly notBefore?: number | undefined
}

/**
 * The carriers of one call's messages, as {@link TurnSigner.sign} resolves them.
 *
 * @example
 * ```ts
 * const headers = { idctx: s.token, ...(s.proofs[i] && { 'idctx-proof': s.proofs[i] }), ...(s.contextRecord && { 'idctx-ctx': s.contextRecord }) }
 * ```
 */
export interface SignedCall {
  /**
   * `single`: the call was alone in its turn (or alone with its lifetime and nbf), signed with
   * the single profile (`idctx+jwt`, exactly what `Signer.sign` gives); `batch`: it shares a
   * batch-profile token (`idctx-batch+jwt`) with the other calls of its turn.
   */
  readonly profile: 'single' | 'batch'
  /** The compact JWS for the `idctx` carrier of every message of the call. */
  readonly token: string
  readonly tokenSha256: string
  readonly jti: string
  /** Expiry, epoch seconds. */
  readonly exp: number
  /**
   * Per message, in order, the `idctx-proof` value: always one under the batch profile; under
   * the single profile undefined for a call of one message.
   */
  readonly proofs: readonly (string | undefined)[]
  /** The context record for the `idctx-ctx` carrier of every message (batch profile only). */
  readonly contextRecord: string | undefined
}

/**
 * Signs the calls made in one event-loop turn together (design, "Batch profile: one signature
 * for every send of one event-loop turn"). See {@link createTurnSigner}.
 *
 * @example
 * ```ts
 * const signed = await turn.sign({ context, messages }) // checked now, signed when the turn ends
 * await client.send(withCarriers(records, signed))     // in call order, in the caller's context
 * ```
 */
export interface TurnSigner {
  /** The signer every token comes from. */
  readonly signer: Signer
  /**
   * Queues a call for the current turn and resolves with its carriers once the turn is signed.
   * Checks the call synchronously, when it is made, and THROWS (rather than rejecting) so a bad
   * call fails alone and before anything is signed: a {@link SigningError} (`ERR_IDCTX_SIGNING`)
   * for a context that is not signable, a TypeError for a call without messages or a message
   * without a destination and 32-byte leaf. The returned promise rejects only when signing the
   * group failed (a key without its private part, a lifetime the signer refuses, a clock that
   * cannot tell the time): every call of that group then rejects with the same error.
   */
  sign(call: TurnCall): Promise<SignedCall>
  /**
   * A promise that resolves, in order with the calls queued before it, once they are signed: a
   * call that is not signed (unsigned, no context) awaits it to keep its place in line. Resolved
   * at once when nothing is pending.
   */
  barrier(): Promise<void>
  /** Signs every pending call now, instead of on the next turn (e.g. before a transaction commits). */
  flush(): void
  /** Calls queued and not yet signed. */
  readonly pending: number
}

interface Pending {
  readonly call: TurnCall | undefined
  readonly prepared: PreparedContext | undefined
  readonly resolve: (v: SignedCall | undefined) => void
  readonly reject: (e: unknown) => void
  outcome?: { ok: true; value: SignedCall | undefined } | { ok: false; error: unknown }
}

interface Group {
  readonly lifetimeSeconds: number | undefined
  readonly notBefore: number | undefined
  readonly calls: Pending[]
  messages: number
}

const DEFAULT_MAX_MESSAGES = 1024
const MAX_TREE = 1 << 20

/**
 * Creates a turn signer: calls queued with {@link TurnSigner.sign} during one event-loop turn are
 * signed together when the turn ends (`setImmediate`: after every I/O callback of this loop
 * iteration and the microtasks they queued), or as soon as `maxMessages` is reached:
 *
 * - calls with the same lifetime and `notBefore` share one batch-profile token whatever their
 *   identity contexts (the issuer and audience are the signer's own); a group of one call is
 *   signed with the single profile — exactly today's self-contained token;
 * - a context whose record exceeds the signer's `maxContextRecordBytes` is signed alone;
 * - results resolve in the order the calls were queued (barriers included), so code that sends
 *   right after its `await` sends in call order.
 *
 * Batch tokens are signed in the async context the turn signer was created in (the observer's
 * `onSigned` for them belongs to no caller); a lone call is signed in its own turn's context.
 *
 * @example
 * ```ts
 * const turn = createTurnSigner(signer)
 * const [a, b] = await Promise.all([
 *   turn.sign({ context: alice, messages: [{ destination: 'kafka:orders', leaf: leafA }] }),
 *   turn.sign({ context: bob, messages: [{ destination: 'kafka:orders', leaf: leafB }] }),
 * ])
 * a.token === b.token // true: one signature, two context records
 * ```
 */
export function createTurnSigner(signer: Signer, options: TurnSignerOptions = {}): TurnSigner {
  if (typeof signer?.prepare !== 'function' || typeof signer.signBatch !== 'function') {
    throw new TypeError('createTurnSigner needs a Signer (createSigner)')
  }
  const max = options.maxMessages ?? DEFAULT_MAX_MESSAGES
  if (!Number.isInteger(max) || max < 2 || max > MAX_TREE) throw new TypeError(`maxMessages must be a whole number in 2..${MAX_TREE}`)
  // Batch tokens belong to no caller: sign them in the context this turn signer was made in.
  const home = new AsyncResource('idctx.turn-signer')
  let queue: Pending[] = []
  let groups = new Map<string, Group>()
  let scheduled = false

  const onTurnEnd = () => {
    scheduled = false
    flush()
  }

  const enqueue = (p: Pending) => {
    queue.push(p)
    if (!scheduled) {
      scheduled = true
      setImmediate(onTurnEnd)
    }
  }

  const signGroup = (g: Group): void => {
    try {
      if (g.calls.length === 1) {
        const p = g.calls[0] as Pending
        const call = p.call as TurnCall
        const signed = signer.sign(p.prepared as PreparedContext, call.messages, timing(g))
        p.outcome = { ok: true, value: { profile: 'single', token: signed.token, tokenSha256: signed.tokenSha256, jti: signed.jti, exp: signed.exp, proofs: signed.proofs, contextRecord: undefined } }
        return
      }
      const signed = home.runInAsyncScope(() =>
        signer.signBatch(
          g.calls.map((p) => ({ context: p.prepared as PreparedContext, messages: (p.call as TurnCall).messages })),
          timing(g),
        ),
      )
      g.calls.forEach((p, i) => {
        const c = signed.calls[i]
        if (c === undefined) throw new TypeError('the signer returned fewer calls than it was given')
        p.outcome = { ok: true, value: { profile: 'batch', token: signed.token, tokenSha256: signed.tokenSha256, jti: signed.jti, exp: signed.exp, proofs: c.proofs, contextRecord: c.contextRecord } }
      })
    } catch (error) {
      for (const p of g.calls) p.outcome = { ok: false, error }
    }
  }

  const flush = (): void => {
    if (queue.length === 0) return
    const q = queue
    const gs = groups
    queue = []
    groups = new Map()
    for (const g of gs.values()) signGroup(g)
    for (const p of q) {
      const r = p.outcome ?? { ok: true, value: undefined }
      if (r.ok) p.resolve(r.value)
      else p.reject(r.error)
    }
  }

  const sign = (call: TurnCall): Promise<SignedCall> => {
    if (call === null || typeof call !== 'object' || !Array.isArray(call.messages) || call.messages.length === 0) {
      throw new TypeError('a call to sign needs an identity context and at least one message')
    }
    for (const m of call.messages) {
      if (!(m?.leaf instanceof Uint8Array) || m.leaf.length !== 32) throw new TypeError('a leaf must be a 32-byte hash')
      if (typeof m.destination !== 'string' || m.destination.length === 0) throw new TypeError('a message needs a destination string')
    }
    const prepared = signer.prepare(call.context)
    let resolve!: (v: SignedCall | undefined) => void
    let reject!: (e: unknown) => void
    const promise = new Promise<SignedCall | undefined>((res, rej) => {
      resolve = res
      reject = rej
    })
    const p: Pending = { call, prepared, resolve, reject }
    // A context too large for a record, and a call that alone fills a token, are signed alone.
    const alone = !prepared.batchable || call.messages.length >= max
    const key = alone ? `alone\0${queue.length}` : `${call.lifetimeSeconds ?? ''}\0${call.notBefore ?? ''}`
    let g = groups.get(key)
    if (g !== undefined && g.messages + call.messages.length > max) {
      flush()
      g = undefined
    }
    if (g === undefined) {
      g = { lifetimeSeconds: call.lifetimeSeconds, notBefore: call.notBefore, calls: [], messages: 0 }
      groups.set(key, g)
    }
    g.calls.push(p)
    g.messages += call.messages.length
    enqueue(p)
    if (g.messages >= max) flush()
    return promise as Promise<SignedCall>
  }

  return {
    signer,
    sign,
    barrier(): Promise<void> {
      if (queue.length === 0) return Promise.resolve()
      return new Promise<void>((resolve, reject) => enqueue({ call: undefined, prepared: undefined, resolve: () => resolve(), reject }))
    },
    flush,
    get pending() {
      return queue.reduce((n, p) => (p.call === undefined ? n : n + 1), 0)
    },
  }
}

function timing(g: Group): SignOptions {
  const o: SignOptions = {}
  if (g.lifetimeSeconds !== undefined) o.lifetimeSeconds = g.lifetimeSeconds
  if (g.notBefore !== undefined) o.notBefore = g.notBefore
  return o
}
