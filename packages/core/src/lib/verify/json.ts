import { isUtf8 } from 'node:buffer'
import { decodeBase64url } from '../base64url.js'

/**
 * Invalid UTF-8 is refused, as jose's fatal TextDecoder does: a lenient decoder would map distinct
 * signed bytes to the same U+FFFD text and accept claims jose refuses. isUtf8 + toString is the
 * same check at a fraction of TextDecoder's cost. Like TextDecoder, a leading byte-order mark is
 * dropped.
 */
export function strictUtf8(bytes: Buffer): string | undefined {
  if (!isUtf8(bytes)) return undefined
  const text = bytes.toString('utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

/**
 * Whether JSON text nests deeper than `max` objects and arrays, counted on the raw text (strings
 * skipped) so that no parser or schema recursion ever meets a deeper value.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  // Depth never exceeds the number of opening brackets: a text with at most `max` of them (the
  // usual claim set has 1 to 3) needs no scan. Brackets inside strings only make this count larger.
  let opening = 0
  for (let i = text.indexOf('{'); i !== -1 && opening <= max; i = text.indexOf('{', i + 1)) opening++
  for (let i = text.indexOf('['); i !== -1 && opening <= max; i = text.indexOf('[', i + 1)) opening++
  if (opening <= max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

/** A canonical base64url segment holding a JSON object no deeper than `maxNesting`, or undefined. */
export function parseJsonObject(b64: string, maxNesting: number): Record<string, unknown> | undefined {
  const bytes = decodeBase64url(b64)
  if (bytes === undefined) return undefined
  let value: unknown
  try {
    const text = strictUtf8(bytes)
    if (text === undefined || nestsDeeperThan(text, maxNesting)) return undefined
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}
