import type { IdctxClaims } from '../../claims.js'
import type { VerifiedContext } from '../../context.js'
import type { Algorithm, IdctxKey } from '../../keys.js'
import type { KeySource } from '../../key-set.js'
import type { VerifiedNodes } from '../../merkle.js'
import type { ReasonCode } from '../../reason-codes.js'

/** The `typ` of each kind of token: a message token is never accepted as a grant, nor the reverse. */
export const TYP = { message: 'idctx+jwt', grant: 'idctx-grant+jwt' } as const
export type TokenKind = keyof typeof TYP

/** The first failed check: a reason code, a message without values, the claim involved. */
export class Fail {
  constructor(readonly reason: ReasonCode, readonly message: string, readonly claim?: string) {}
}

/** A token that passed steps 2–6, as the verified-token cache holds it. */
export interface Entry {
  readonly kind: TokenKind
  readonly claims: IdctxClaims
  readonly header: { alg: Algorithm; kid: string }
  readonly key: IdctxKey
  readonly source: KeySource
  readonly tokenSha256: string
  /** The decoded `mh`, and the batch tree nodes authenticated against it so far. */
  readonly root: Buffer
  readonly nodes: VerifiedNodes
  /** The last context handed out for this token (see `finish`). */
  context: VerifiedContext | undefined
}

/** Partial facts about a token that failed, for the observer. */
export interface Known {
  tokenSha256?: string
  kid?: string
  claims?: IdctxClaims
}

/** What the checks give: the verified entry (and where its deferred replay verdict goes), or the first failure. */
export type Checked = { entry: Entry; cached: boolean; replayAt?: number } | Fail

/** Whether `await` would wait for a store's answer (a promise or any thenable). */
export function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function'
}
