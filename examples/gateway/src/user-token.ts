/**
 * The reason the gateway gives for a user token jose refused: named like the idctx reason codes
 * where one fits, so the summary reads the same at every hop.
 *
 * @example
 * ```ts
 * userTokenReason(Object.assign(new Error(), { code: 'ERR_JWT_EXPIRED' })) // 'expired'
 * ```
 */
export function userTokenReason(error: unknown): string {
  const { code, claim } = (error ?? {}) as { code?: unknown; claim?: unknown }
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired'
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature'
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown_kid'
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'alg_not_allowed'
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return claim === 'iss' ? 'wrong_issuer' : claim === 'aud' ? 'wrong_audience' : claim === 'nbf' ? 'not_yet_valid' : 'invalid_claims'
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed'
    default:
      return 'invalid_token'
  }
}

/** True when jose failed because the IdP's keys could not be fetched: not the token's fault. */
export function isKeySourceFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || typeof code !== 'string'
}
