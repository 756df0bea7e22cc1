import { KeyError } from '../../errors.js'
import type { IdctxKey } from '../../keys.js'
import type { KeySource } from '../../key-set.js'
import type { ReadyReport } from '../../verifier.js'

/** A key found for a kid: the issuer whose source has it, the key, and that source. */
export interface FoundKey {
  readonly issuer: string
  readonly key: IdctxKey
  readonly source: KeySource
}

/** Step 4 of the verification order: the trusted key for a kid, from the issuers' key sources. */
export interface KeyLookup {
  findKey(kid: string, issHint?: () => unknown): FoundKey | undefined
  lookupKey(kid: string, payload: () => Record<string, unknown> | null): Promise<FoundKey | undefined>
  ready(): Promise<ReadyReport>
}

/** Builds the key lookup over the trusted issuers (issuer id → key source). */
export function createKeyLookup(issuers: readonly (readonly [string, KeySource])[]): KeyLookup {
  const trusted = new Set(issuers.map(([iss]) => iss))
  /**
   * The trusted key for a kid. Should two issuers publish the same kid, the one named by the
   * token's (not yet trusted) `iss` is tried, so one issuer cannot shadow another's key; the
   * signature and step 6 still decide.
   */
  const findKey = (kid: string, issHint?: () => unknown): FoundKey | undefined => {
    let first: FoundKey | undefined
    for (const [issuer, source] of issuers) {
      const key = source.get(kid)
      if (key === undefined) continue
      if (first === undefined) {
        first = { issuer, key, source }
        if (issuers.length === 1 || issHint === undefined) return first
      } else if (issHint?.() === issuer) {
        return { issuer, key, source }
      }
    }
    return first
  }

  /**
   * A kid no source knows yet. Sources that can learn keys (remote JWKS) say either "absent after
   * a fetch made after the token was issued" (unknown_kid) or throw (retry): a key source that
   * cannot be reached, or is held back by its cooldown, never turns a genuine token into a
   * rejection. Only the issuer the token names is asked when it is a trusted one: a key of any
   * other issuer would fail step 6 anyway.
   */
  const lookupKey = async (kid: string, payload: () => Record<string, unknown> | null): Promise<FoundKey | undefined> => {
    const issHint = () => payload()?.iss ?? null
    const found = findKey(kid, issHint)
    if (found !== undefined) return found
    const named = issHint()
    const asked = issuers.filter(([iss, s]) => (s.resolve !== undefined || s.refresh !== undefined) && (typeof named !== 'string' || !trusted.has(named) || iss === named))
    if (asked.length === 0) return undefined
    const iat = payload()?.iat
    const token = { issuedAtSeconds: typeof iat === 'number' ? iat : undefined }
    const outcomes = await Promise.allSettled(
      asked.map(async ([, s]) => {
        if (s.resolve !== undefined) return s.resolve(kid, token)
        await (s.refresh as () => Promise<void>)()
        return s.get(kid)
      }),
    )
    const again = findKey(kid, issHint)
    if (again !== undefined) return again
    const failed = outcomes.findIndex((r) => r.status === 'rejected')
    if (failed >= 0) {
      const cause = (outcomes[failed] as PromiseRejectedResult).reason as unknown
      const issuer = (asked[failed] as readonly [string, KeySource])[0]
      const k = cause instanceof KeyError ? cause : undefined
      throw new KeyError(`keys of issuer ${JSON.stringify(issuer)} could not be checked for an unknown kid: ${k?.message ?? 'the key source failed'}`, {
        cause,
        issuer,
        url: k?.url,
        status: k?.status,
        networkCode: k?.networkCode,
      })
    }
    return undefined
  }

  return {
    findKey,
    lookupKey,
    async ready(): Promise<ReadyReport> {
      const entries = await Promise.all(
        issuers.map(async ([issuer, source]): Promise<[string, { ok: true } | { ok: false; error: KeyError }]> => {
          try {
            if (source.ready !== undefined) await source.ready()
            else if (source.refresh !== undefined) await source.refresh()
            return [issuer, { ok: true }]
          } catch (e) {
            const k = e instanceof KeyError ? e : undefined
            const error = new KeyError(`keys of issuer ${JSON.stringify(issuer)} could not be loaded: ${k?.message ?? 'the key source failed'}`, {
              cause: e,
              issuer,
              url: k?.url,
              status: k?.status,
              networkCode: k?.networkCode,
            })
            return [issuer, { ok: false, error }]
          }
        }),
      )
      return { ok: entries.every(([, r]) => r.ok), issuers: Object.fromEntries(entries) }
    },
  }
}
