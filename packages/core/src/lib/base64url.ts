const ALPHABET = /^[A-Za-z0-9_-]*$/

/** Canonical base64url decode: no padding, no foreign characters, zero trailing bits. */
export function decodeBase64url(input: string): Buffer | undefined {
  if (!ALPHABET.test(input) || input.length % 4 === 1) return undefined
  const out = Buffer.from(input, 'base64url')
  // Non-canonical encodings (non-zero unused trailing bits) decode to the same bytes as the
  // canonical one; refusing them keeps a token's string form unique, so no mutated token verifies.
  if (encodeBase64url(out) !== input) return undefined
  return out
}

export function encodeBase64url(input: Uint8Array): string {
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('base64url')
}
