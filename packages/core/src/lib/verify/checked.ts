import type { BatchClaims } from '../../batch-context.js'
import type { IdctxClaims } from '../../claims.js'
import type { VerifiedContext } from '../../context.js'
import type { Algorithm, IdctxKey } from '../../keys.js'
import type { KeySource } from '../../key-set.js'
import type { VerifiedNodes } from '../../merkle.js'
import type { ReasonCode } from '../../reason-codes.js'

/**
 * The `typ` of each kind of token: a message token is never accepted as a grant, nor the reverse;
 * a batch-profile token is a message token of the batch profile (design, "Batch profile").
 */
export const TYP = { message: 'idctx+jwt', batch: 'idctx-batch+jwt', grant: 'idctx-grant+jwt' } as const
export type TokenKind = keyof typeof TYP

/** What a verify call accepts: `message` takes both profiles of message tokens, `grant` only grants. */
export type Accepted = 'message' | 'grant'

/** Whether a token of `kind` may be verified by a call accepting `accepted`. */
export function accepts(accepted: Accepted, kind: TokenKind): boolean {
  return accepted === 'message' ? kind !== 'grant' : kind === 'grant'
}

/** The `typ` a call accepting `accepted` wants, for the `wrong_typ` message. */
export function wantedTyp(accepted: Accepted): string {
  return accepted === 'message' ? `${TYP.message} or ${TYP.batch}` : TYP.grant
}

/** The first failed check: a reason code, a message without values, the claim involved. */
export class Fail {
  constructor(readonly reason: ReasonCode, readonly message: string, readonly claim?: string) {}
}

interface EntryBase {
  readonly header: { alg: Algorithm; kid: string }
  readonly key: IdctxKey
  readonly source: KeySource
  readonly tokenSha256: string
  /** The decoded `mh`, and the batch tree nodes authenticated against it so far. */
  readonly root: Buffer
  readonly nodes: VerifiedNodes
  /** The last context handed out for this token (see `finish`); single profile and grants only. */
  context: VerifiedContext | undefined
}

/** A token that passed steps 2–6, as the verified-token cache holds it. */
export type Entry =
  | (EntryBase & { readonly kind: 'message' | 'grant'; readonly claims: IdctxClaims })
  | (EntryBase & { readonly kind: 'batch'; readonly claims: BatchClaims })

/** The claims one message verified with, and the last context built from them (`finish`). */
export interface Merged {
  readonly claims: IdctxClaims
  context: VerifiedContext | undefined
}

/** Partial facts about a token that failed, for the observer. */
export interface Known {
  tokenSha256?: string
  kid?: string
  claims?: KnownClaims
}

/** The ids an observer gets of a message that failed: whatever was read by then. */
export interface KnownClaims {
  readonly iss: string
  readonly aud?: string | undefined
  readonly jti: string
  readonly txn?: string | undefined
  readonly tid?: string | undefined
  readonly sub?: string | undefined
  readonly trc?: string | undefined
}

/**
 * What the checks give: the verified entry (and where its deferred replay verdict goes, and for
 * a batch-profile message the claims merged with its context record), or the first failure.
 */
export type Checked = { entry: Entry; cached: boolean; replayAt?: number; merged?: Merged } | Fail

/** Whether `await` would wait for a store's answer (a promise or any thenable). */
export function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function'
}
