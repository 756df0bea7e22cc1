import type { IdctxClaims } from '../../claims.js'
import { batchLeaf } from '../../leaf.js'
import { isProducerAllowed, meetsRequirements } from '../../policies.js'
import { proofPosition, verifyInclusion } from '../../merkle.js'
import { ReasonCode } from '../../reason-codes.js'
import type { ReplayEntry, ReplayVerdict } from '../../stores.js'
import type { ExpectedTenant, VerifyInput } from '../../verifier.js'
import { Fail, isThenable, type Checked, type Entry, type Known, type Merged } from './checked.js'
import type { RecordCheck } from './context-records.js'
import type { VerifierConfig } from './options.js'
import type { TokenCache } from './token-cache.js'

/** Replay checks left for one batched store call (`verifyMany`); `replayAt` points into it. */
export type DeferredReplay = ReplayEntry[]

/**
 * Steps 7–11 of the verification order, for a token that passed steps 2–6 — and, for a
 * batch-profile token, the per-message steps of the design's "Batch profile" (context record,
 * binding, time, policies, replay). `known` receives the claims read so far, for the observer.
 */
export type MessageCheck = (input: VerifyInput, entry: Entry, cached: boolean, deferred: DeferredReplay | undefined, known: Known) => Checked | Promise<Checked>

function tenantMatches(expected: ExpectedTenant, tid: string): boolean {
  if (typeof expected === 'string') return expected === tid
  if (Array.isArray(expected)) return (expected as readonly string[]).includes(tid)
  return (expected as { any?: unknown }).any === true
}

/** Whether the message carries any context record (every occurrence counts, whatever its value). */
function hasContextRecord(input: VerifyInput): boolean {
  const r = input.contextRecord as unknown
  return r !== undefined && (!Array.isArray(r) || r.length > 0)
}

/**
 * Builds steps 7–11: time, binding to the exact message (leaf walked up its proof), tenant,
 * producer ACL and scopes, deny-list and replay. It returns a plain value whenever nothing had to
 * wait (in-memory or no stores) and a promise only when a store is asynchronous.
 */
export function createMessageCheck(o: VerifierConfig, clock: () => number, cache: TokenCache, records: RecordCheck): MessageCheck {
  /** 7. time: the token's `exp`, `nbf`, `iat` and lifetime cap. */
  const timeFails = (input: VerifyInput, entry: Entry, now: number): Fail | undefined => {
    const c = entry.claims
    const tol = o.clockToleranceSeconds
    const grace = Math.min(input.expiryGraceSeconds ?? 0, o.maxExpiryGraceSeconds)
    if (c.exp + grace <= now - tol) return new Fail(ReasonCode.Expired, 'token has expired', 'exp')
    if (c.nbf !== undefined && c.nbf > now + tol) return new Fail(ReasonCode.NotYetValid, 'token is not valid yet', 'nbf')
    if (c.iat > now + tol) return new Fail(ReasonCode.NotYetValid, 'token was issued in the future', 'iat')
    const maxLifetime = entry.kind === 'grant' ? o.maxGrantLifetimeSeconds : o.maxLifetimeSeconds
    if (c.exp - c.iat > maxLifetime) return new Fail(ReasonCode.LifetimeExceeded, 'token lifetime exceeds the cap', 'exp')
    return undefined
  }

  /**
   * 8. binding: `dst`, then the leaf (`leaf`) included under `mh` by the message's proof (none:
   * the leaf is `mh`). Returns the proof text for the replay position, or the failure.
   */
  const bindingFails = (input: VerifyInput, entry: Entry, leaf: Buffer, now: number): Fail | { proofText: string | undefined } => {
    if (entry.claims.dst !== undefined && entry.claims.dst !== input.destination) {
      return new Fail(ReasonCode.BindingMismatch, 'token was signed for another destination', 'dst')
    }
    let included: boolean
    let proofText: string | undefined
    if (input.proof === undefined) {
      included = leaf.equals(entry.root)
    } else {
      proofText = typeof input.proof === 'string' ? input.proof : input.proof.toString('utf8')
      // Remember authenticated nodes only while the budget lasts: past it, records are still
      // verified in full, just without the shortcut.
      const before = entry.nodes.size
      included = verifyInclusion(leaf, proofText, entry.root, cache.nodesOf(entry, now))
      cache.addedNodes(entry.nodes.size - before)
    }
    if (!included) return new Fail(ReasonCode.BindingMismatch, 'message does not match the token binding', 'mh')
    return { proofText }
  }

  /** Steps 9–11 with the claims the message verifies with (a batch message's merged with its record). */
  const policies = (
    input: VerifyInput,
    entry: Entry,
    c: IdctxClaims,
    cached: boolean,
    merged: Merged | undefined,
    proofText: string | undefined,
    deferred: DeferredReplay | undefined,
  ): Checked | Promise<Checked> => {
    const ok: Checked = merged === undefined ? { entry, cached } : { entry, cached, merged }
    // 9. tenant
    if (!tenantMatches(input.expectedTenant, c.tid)) return new Fail(ReasonCode.TenantMismatch, 'token tenant is not the expected tenant', 'tid')
    if (input.payloadTenant !== undefined && input.payloadTenant !== c.tid) {
      return new Fail(ReasonCode.TenantMismatch, 'payload tenant differs from token tenant', 'tid')
    }

    // 10. producer rights and scopes
    if (o.producerAcl !== undefined && !isProducerAllowed(o.producerAcl, c.iss, input.destination, c.tid)) {
      return new Fail(ReasonCode.ActorNotAllowed, 'producer may not publish here for this tenant', 'iss')
    }
    if (!meetsRequirements(o.requirements, c.scope, c.roles) || !meetsRequirements(input.requirements, c.scope, c.roles)) {
      return new Fail(ReasonCode.InsufficientScope, 'required scopes or roles are missing', 'scope')
    }

    // 11. deny-list and replay
    const checkReplay = (): Checked | Promise<Checked> => {
      if (o.replay === undefined || input.coordinates === undefined || entry.kind === 'grant') return ok
      // Remembered for as long as ANY delivery of this message could still pass the time check:
      // up to the largest grace an adapter may ask for, whatever this delivery asked. A copy that
      // arrives with a grace after the entry of a graceless first delivery lapsed would else pass.
      const replayEntry: ReplayEntry = {
        jti: c.jti,
        index: proofText === undefined ? 0 : (proofPosition(proofText) as number),
        coordinates: input.coordinates,
        expiresAt: (c.exp + o.maxExpiryGraceSeconds + o.clockToleranceSeconds) * 1000,
        firstDelivery: input.firstDelivery === true,
      }
      if (deferred !== undefined) {
        deferred.push(replayEntry)
        return { ...ok, replayAt: deferred.length - 1 }
      }
      const verdict = o.replay.check(replayEntry)
      const decide = (v: ReplayVerdict): Checked =>
        v === 'replay' ? new Fail(ReasonCode.Replayed, 'message was already delivered elsewhere', 'jti') : ok
      return isThenable(verdict) ? Promise.resolve(verdict).then(decide) : decide(verdict)
    }
    if (o.revocation === undefined) return checkReplay()
    const revoked = o.revocation.isRevoked({ kid: entry.header.kid, jti: c.jti, txn: c.txn, sub: c.sub, tid: c.tid })
    const decide = (r: boolean): Checked | Promise<Checked> =>
      r ? new Fail(ReasonCode.Revoked, 'token, key, transaction, subject or tenant is revoked') : checkReplay()
    return isThenable(revoked) ? Promise.resolve(revoked).then(decide) : decide(revoked)
  }

  /** Steps 7–11: what depends on the message, for a token that passed steps 2–6. */
  return (input, entry, cached, deferred, known) => {
    if (entry.kind === 'batch') {
      // Batch profile: the context record (present, one, size, claim rules) → binding with the
      // batch leaf → time (the token's) → tenant, ACL, scopes, deny-list with the record's
      // sub/tid/txn and the token's iss/jti/kid → replay on (jti, leaf position).
      const parsed = records.parse(input.contextRecord)
      if (parsed instanceof Fail) return parsed
      const merged = records.merge(entry, parsed)
      known.claims = merged.claims
      // Every batch-profile message carries its proof: a batch token covers two messages or more.
      if (input.proof === undefined) return new Fail(ReasonCode.BindingMismatch, 'a batch-profile message came without its idctx-proof', 'mh')
      const now = clock() / 1000
      const messageLeaf = typeof input.leaf === 'function' ? input.leaf() : input.leaf
      if (!(messageLeaf instanceof Uint8Array) || messageLeaf.length !== 32) return new Fail(ReasonCode.BindingMismatch, 'message does not match the token binding', 'mh')
      const bound = bindingFails(input, entry, batchLeaf(parsed.sha256, messageLeaf), now)
      if (bound instanceof Fail) return bound
      const late = timeFails(input, entry, now)
      if (late !== undefined) return late
      return policies(input, entry, merged.claims, cached, merged, bound.proofText, deferred)
    }
    // Single profile (and grants): a context record beside the token is a carrier of the other
    // profile.
    if (hasContextRecord(input)) {
      return new Fail(ReasonCode.Malformed, 'a context record (idctx-ctx) came with a token of the single profile')
    }
    const now = clock() / 1000
    const late = timeFails(input, entry, now)
    if (late !== undefined) return late
    const leaf = typeof input.leaf === 'function' ? input.leaf() : input.leaf
    const bound = bindingFails(input, entry, leaf, now)
    if (bound instanceof Fail) return bound
    return policies(input, entry, entry.claims, cached, undefined, bound.proofText, deferred)
  }
}
