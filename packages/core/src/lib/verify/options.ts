import { z } from 'zod'
import { ConfigError, KeyError } from '../../errors.js'
import { ALGORITHMS, type Algorithm, type IdctxKey, type Jwks } from '../../keys.js'
import { staticKeySource, type KeySource } from '../../key-set.js'
import type { IdctxObserver } from '../../observer.js'
import type { ReplayStore, RevocationStore } from '../../stores.js'
import type { IssuerKeys, VerifyInput } from '../../verifier.js'

const ISSUER_KEYS_HINT = 'a key source (createKeySet, createRemoteJwks), an array of keys ([key]) or a JWKS document ({ keys: [...] })'

export const optionsSchema = z.strictObject({
  audience: z.string().min(1).max(256),
  issuers: z.record(z.string().min(1).max(256), z.custom<IssuerKeys>(isIssuerKeys, ISSUER_KEYS_HINT)).refine((v) => Object.keys(v).length > 0, 'at least one trusted issuer'),
  algorithms: z.array(z.enum(ALGORITHMS as [Algorithm, ...Algorithm[]])).min(1).optional(),
  allowHS256: z.boolean().default(false),
  clockToleranceSeconds: z.number().int().min(0).max(60).default(30),
  maxLifetimeSeconds: z.number().int().positive().max(86_400 * 7).default(900),
  maxGrantLifetimeSeconds: z.number().int().positive().max(86_400 * 366).default(86_400 * 7),
  maxExpiryGraceSeconds: z.number().int().min(0).max(86_400).default(0),
  maxTokenBytes: z.number().int().min(256).max(65_536).default(4096),
  maxContextRecordBytes: z.number().int().min(256).max(65_536).default(2048),
  contextRecordCacheSize: z.number().int().min(0).max(10_000_000).default(10_000),
  maxActorDepth: z.number().int().min(1).max(32).default(8),
  producerAcl: z
    .record(
      z.string(),
      z.strictObject({
        destinations: z.array(z.string().superRefine(destinationPatternIssue)).min(1),
        tenants: z.union([z.array(z.string().min(1).max(256)).min(1), z.literal('*')]).optional(),
      }),
    )
    .optional(),
  requirements: z.strictObject({ scopes: z.array(z.string().min(1)).optional(), roles: z.array(z.string().min(1)).optional() }).optional(),
  revocation: z.custom<RevocationStore>((v) => typeof (v as RevocationStore)?.isRevoked === 'function', 'a revocation store').optional(),
  replay: z.custom<ReplayStore>((v) => typeof (v as ReplayStore)?.check === 'function', 'a replay store').optional(),
  observer: z.custom<IdctxObserver>((v) => typeof v === 'object' && v !== null).optional(),
  cacheSize: z.number().int().min(0).max(10_000_000).default(10_000),
  proofNodeCacheSize: z.number().int().min(0).max(100_000_000).default(200_000),
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
})

/** The verifier's options once parsed: defaults applied, nothing re-validated per message. */
export type VerifierConfig = z.output<typeof optionsSchema>

function isIssuerKeys(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false
  if (typeof (v as KeySource).get === 'function') return true
  if (Array.isArray(v)) return v.every((k) => k !== null && typeof k === 'object' && typeof (k as IdctxKey).kid === 'string' && typeof (k as IdctxKey).alg === 'string' && typeof (k as IdctxKey).verificationKey === 'object')
  return Array.isArray((v as Jwks).keys)
}

/**
 * Why an ACL destination pattern can never match a destination, if it cannot: destinations are
 * `kafka:<topic>` or `bullmq:<queue>/<jobName>` with each component percent-encoded (RFC 3986
 * unreserved characters and `%XX`), and `*` may only end a prefix pattern.
 */
function destinationPatternIssue(pattern: string, ctx: z.RefinementCtx): void {
  const prefix = pattern.endsWith('*')
  const body = prefix ? pattern.slice(0, -1) : pattern
  const component = /^(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})*$/
  let problem: string | undefined
  if (body.includes('*')) problem = "'*' may only end a pattern (a prefix)"
  else if (body.startsWith('kafka:')) {
    const topic = body.slice(6)
    if (!component.test(topic)) problem = 'the topic must be percent-encoded (kafkaDestination(topic) gives the form)'
    else if (!prefix && topic.length === 0) problem = 'an exact kafka pattern needs a topic'
  } else if (body.startsWith('bullmq:')) {
    const parts = body.slice(7).split('/')
    if (parts.length > 2 || !parts.every((c) => component.test(c))) {
      problem = "queue and job name must each be percent-encoded ('/' inside a name is %2F; bullmqDestination(queue, name) gives the form)"
    } else if (!prefix && (parts.length !== 2 || parts[0] === '' || parts[1] === '')) {
      problem = "an exact bullmq pattern is 'bullmq:<queue>/<jobName>'"
    }
  } else if (/^[a-z][a-z0-9+.-]*:./.test(body)) {
    // Another scheme (an HTTP hop's `http:<service>/<route>`, say): its components are the
    // caller's to encode; only the `*` rule above applies.
  } else if (!(prefix && ('kafka:'.startsWith(body) || 'bullmq:'.startsWith(body)))) {
    problem = "a pattern starts with a scheme: 'kafka:', 'bullmq:' (or another, e.g. 'http:')"
  }
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `can never match: ${problem}` })
}

/** A header member name as it may appear in `error.claim`: printable ASCII only, at most 32. */
export function memberName(name: string): string {
  const safe = name.slice(0, 32).replace(/[^\x21-\x7e]/g, '?')
  return safe.length === 0 ? '?' : safe
}

export function issuerSource(issuer: string, keys: IssuerKeys): KeySource {
  if (typeof (keys as KeySource).get === 'function') return keys as KeySource
  try {
    return staticKeySource(keys as readonly IdctxKey[] | Jwks)
  } catch (e) {
    const message = e instanceof KeyError ? e.message : 'its keys could not be imported'
    throw new ConfigError('verifier options', [{ path: `issuers.${memberName(issuer)}`, message }])
  }
}

/**
 * Numbers an adapter passes in: finite and in range, or a ConfigError (a NaN grace would turn the
 * expiry check and replay detection off).
 */
export function checkNumbers(input: VerifyInput): void {
  const g = input.expiryGraceSeconds
  if (g !== undefined && (typeof g !== 'number' || !Number.isFinite(g) || g < 0)) {
    throw new ConfigError('verify input', [{ path: 'expiryGraceSeconds', message: 'must be a finite number of seconds ≥ 0' }])
  }
}

