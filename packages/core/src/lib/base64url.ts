const ALPHABET = /^[A-Za-z0-9_-]*$/

/**
 * The 6-bit value of each base64url character code, -1 for any other: the last character of an
 * unpadded segment of length 4k+2 (4k+3) carries 4 (2) unused low bits, which must be zero.
 */
const VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < 64; i++) VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.charCodeAt(i)] = i

/**
 * Canonical base64url decode (RFC 7515 §2, RFC 4648 §5): no padding, no foreign characters, and
 * zero unused trailing bits. Non-canonical encodings decode to the same bytes as the canonical
 * one; refusing them keeps a token's string form unique, so no mutated token verifies. Checked
 * on the last character instead of by re-encoding (a property test compares both).
 */
export function decodeBase64url(input: string): Buffer | undefined {
  const rest = input.length % 4
  if (rest === 1 || !ALPHABET.test(input)) return undefined
  if (rest !== 0) {
    const last = VALUE[input.charCodeAt(input.length - 1)] as number
    if ((last & (rest === 2 ? 0x0f : 0x03)) !== 0) return undefined
  }
  return Buffer.from(input, 'base64url')
}

export function encodeBase64url(input: Uint8Array): string {
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('base64url')
}
