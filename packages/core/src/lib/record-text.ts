import type { ActorClaim } from '../claims.js'
import type { IdentityContext } from '../context.js'

/**
 * The RFC 8785 text of an actor chain `{ sub, act? }`: members sorted (`act` before `sub`),
 * strings as ECMAScript JSON.stringify writes them (RFC 8785 §3.2.2.2).
 */
export function actorText(a: ActorClaim): string {
  return a.act === undefined ? `{"sub":${JSON.stringify(a.sub)}}` : `{"act":${actorText(a.act)},"sub":${JSON.stringify(a.sub)}}`
}

/**
 * The members of a context record after its nonce, as RFC 8785 writes them — `,"pty":…` through
 * `,"txn":…}` in sorted order (pty < roles < scope < sub < tid < trc < txn), absent members left
 * out — for a context that passed the signer's checks (strings, an array of strings). Written
 * directly instead of through the general canonicalizer: it runs for every signed call. A
 * property test holds it to `canonicalJson`.
 */
export function recordTailText(context: IdentityContext, trc: string | undefined): string {
  let out = ''
  if (context.pty !== undefined) out += `,"pty":${JSON.stringify(context.pty)}`
  if (context.roles !== undefined) {
    let roles = ''
    for (let i = 0; i < context.roles.length; i++) roles += `${i > 0 ? ',' : ''}${JSON.stringify(context.roles[i])}`
    out += `,"roles":[${roles}]`
  }
  if (context.scope !== undefined) out += `,"scope":${JSON.stringify(context.scope)}`
  out += `,"sub":${JSON.stringify(context.sub)},"tid":${JSON.stringify(context.tid)}`
  if (trc !== undefined) out += `,"trc":${JSON.stringify(trc)}`
  return `${out},"txn":${JSON.stringify(context.txn)}}`
}
