import { isProducerAllowed, meetsRequirements } from '../../policies.js'
import { proofPosition, verifyInclusion } from '../../merkle.js'
import { ReasonCode } from '../../reason-codes.js'
import type { ReplayEntry, ReplayVerdict } from '../../stores.js'
import type { ExpectedTenant, VerifyInput } from '../../verifier.js'
import { Fail, isThenable, type Checked, type Entry } from './checked.js'
import type { VerifierConfig } from './options.js'
import type { TokenCache } from './token-cache.js'

/** Replay checks left for one batched store call (`verifyMany`); `replayAt` points into it. */
export type DeferredReplay = ReplayEntry[]

/** Steps 7–11 of the verification order, for a token that passed steps 2–6. */
export type MessageCheck = (input: VerifyInput, entry: Entry, cached: boolean, deferred: DeferredReplay | undefined) => Checked | Promise<Checked>

function tenantMatches(expected: ExpectedTenant, tid: string): boolean {
  if (typeof expected === 'string') return expected === tid
  if (Array.isArray(expected)) return (expected as readonly string[]).includes(tid)
  return (expected as { any?: unknown }).any === true
}

/**
 * Builds steps 7–11: time, binding to the exact message (leaf walked up its proof), tenant,
 * producer ACL and scopes, deny-list and replay. It returns a plain value whenever nothing had to
 * wait (in-memory or no stores) and a promise only when a store is asynchronous.
 */
export function createMessageCheck(o: VerifierConfig, clock: () => number, cache: TokenCache): MessageCheck {
  /** Steps 7–11: what depends on the message, for a token that passed steps 2–6. */
  return (input, entry, cached, deferred) => {
    const c = entry.claims

    // 7. time
    const now = clock() / 1000
    const tol = o.clockToleranceSeconds
    const grace = Math.min(input.expiryGraceSeconds ?? 0, o.maxExpiryGraceSeconds)
    if (c.exp + grace <= now - tol) return new Fail(ReasonCode.Expired, 'token has expired', 'exp')
    if (c.nbf !== undefined && c.nbf > now + tol) return new Fail(ReasonCode.NotYetValid, 'token is not valid yet', 'nbf')
    if (c.iat > now + tol) return new Fail(ReasonCode.NotYetValid, 'token was issued in the future', 'iat')
    const maxLifetime = entry.kind === 'grant' ? o.maxGrantLifetimeSeconds : o.maxLifetimeSeconds
    if (c.exp - c.iat > maxLifetime) return new Fail(ReasonCode.LifetimeExceeded, 'token lifetime exceeds the cap', 'exp')

    // 8. binding
    if (c.dst !== undefined && c.dst !== input.destination) {
      return new Fail(ReasonCode.BindingMismatch, 'token was signed for another destination', 'dst')
    }
    const leaf = typeof input.leaf === 'function' ? input.leaf() : input.leaf
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
    if (!included) {
      return new Fail(ReasonCode.BindingMismatch, 'message does not match the token binding', 'mh')
    }

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
      if (o.replay === undefined || input.coordinates === undefined || entry.kind === 'grant') return { entry, cached }
      const replayEntry: ReplayEntry = {
        jti: c.jti,
        index: proofText === undefined ? 0 : (proofPosition(proofText) as number),
        coordinates: input.coordinates,
        expiresAt: (c.exp + grace + tol) * 1000,
        firstDelivery: input.firstDelivery === true,
      }
      if (deferred !== undefined) {
        deferred.push(replayEntry)
        return { entry, cached, replayAt: deferred.length - 1 }
      }
      const verdict = o.replay.check(replayEntry)
      const decide = (v: ReplayVerdict): Checked =>
        v === 'replay' ? new Fail(ReasonCode.Replayed, 'message was already delivered elsewhere', 'jti') : { entry, cached }
      return isThenable(verdict) ? Promise.resolve(verdict).then(decide) : decide(verdict)
    }
    if (o.revocation === undefined) return checkReplay()
    const revoked = o.revocation.isRevoked({ kid: entry.header.kid, jti: c.jti, txn: c.txn, sub: c.sub, tid: c.tid })
    const decide = (r: boolean): Checked | Promise<Checked> =>
      r ? new Fail(ReasonCode.Revoked, 'token, key, transaction, subject or tenant is revoked') : checkReplay()
    return isThenable(revoked) ? Promise.resolve(revoked).then(decide) : decide(revoked)
  }
}
