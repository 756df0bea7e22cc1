import { isUtf8 } from 'node:buffer'
import { CONTEXT_RECORD_REQUIRED, contextRecordSchema, mergeBatchClaims, type BatchClaims, type ContextRecord } from '../../batch-context.js'
import { actorDepth } from '../../claims.js'
import { contextRecordHash } from '../../leaf.js'
import { ReasonCode } from '../../reason-codes.js'
import { canonicalJson } from '../canonical-json.js'
import { Fail, type Entry, type Merged } from './checked.js'
import { nestsDeeperThan } from './json.js'
import type { VerifierConfig } from './options.js'

/** A context record that passed its checks: its members, its hash, the claims last merged with it. */
export interface ParsedRecord {
  readonly record: ContextRecord
  /** SHA-256 of the record's UTF-8 bytes: what the batch leaf binds. */
  readonly sha256: Buffer
  /** The batch token this record was last merged with, and the result (records of one call share a token). */
  mergedFor: Entry | undefined
  merged: Merged | undefined
}

/**
 * The per-message checks of a batch-profile message's context record (design, "Batch profile"):
 * present, exactly one, within `maxContextRecordBytes`, then parsed with the claim rules — its
 * nesting measured on the text first, strict UTF-8, the RFC 8785 canonical form, the members of
 * {@link contextRecordSchema} and the actor depth cap. Parsed records are cached per string
 * (bounded, oldest first), so the messages of one call, or a redelivery, parse once.
 */
export interface RecordCheck {
  /** The record of one message, or the first failure (reasons of the design's order). */
  parse(values: readonly unknown[] | undefined): ParsedRecord | Fail
  /** The claims a message verifies with: the token's merged with its record (cached per token). */
  merge(entry: Entry & { kind: 'batch' }, parsed: ParsedRecord): Merged
  clear(): void
}

export function createRecordCheck(o: VerifierConfig, maxNesting: number): RecordCheck {
  const cache = new Map<string, ParsedRecord>()
  const size = o.contextRecordCacheSize

  /** The last record accepted from bytes, with a copy of those bytes (never a view of the caller's). */
  let last: { readonly bytes: Buffer; readonly parsed: ParsedRecord } | undefined
  const remember = (raw: unknown, parsed: ParsedRecord): ParsedRecord => {
    if (raw instanceof Uint8Array && size > 0) last = { bytes: Buffer.from(raw), parsed }
    return parsed
  }

  const parseText = (text: string): ParsedRecord | Fail => {
    if (nestsDeeperThan(text, maxNesting)) return new Fail(ReasonCode.Malformed, 'context record nests too deep', 'act')
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      return new Fail(ReasonCode.Malformed, 'context record is not JSON')
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return new Fail(ReasonCode.Malformed, 'context record is not a JSON object')
    for (const m of CONTEXT_RECORD_REQUIRED) {
      if (!Object.prototype.hasOwnProperty.call(value, m)) return new Fail(ReasonCode.MissingClaim, `context record member ${m} is missing`, m)
    }
    const parsed = contextRecordSchema.safeParse(value)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const member = issue?.code === 'unrecognized_keys' ? '' : String(issue?.path[0] ?? '')
      return new Fail(ReasonCode.Malformed, member === '' ? 'context record has a member that is not allowed' : `context record member ${member} has the wrong shape`, member === '' ? undefined : member)
    }
    // One spelling per record: the RFC 8785 text the signer writes (sorted members, no spaces,
    // no escapes JSON does not need, no duplicate member), so a record string identifies a record.
    if (canonicalJson(value) !== text) return new Fail(ReasonCode.Malformed, 'context record is not RFC 8785 canonical JSON')
    const record = parsed.data
    if (actorDepth(record.act) > o.maxActorDepth) return new Fail(ReasonCode.Malformed, 'actor chain too deep', 'act')
    return { record, sha256: contextRecordHash(text), mergedFor: undefined, merged: undefined }
  }

  return {
    parse(values) {
      if (values === undefined || values.length === 0) {
        return new Fail(ReasonCode.Malformed, 'a batch-profile token came without its context record (idctx-ctx)')
      }
      if (!Array.isArray(values)) return new Fail(ReasonCode.Malformed, 'the context record carrier is not a list of values')
      if (values.length > 1) return new Fail(ReasonCode.Duplicate, 'more than one context record on the message')
      const raw: unknown = values[0]
      let text: string
      if (typeof raw === 'string') {
        if (raw.length > o.maxContextRecordBytes || Buffer.byteLength(raw, 'utf8') > o.maxContextRecordBytes) {
          return new Fail(ReasonCode.Oversize, `context record exceeds ${o.maxContextRecordBytes} bytes`)
        }
        text = raw
      } else if (raw instanceof Uint8Array) {
        // The records of one call carry the same record bytes: the last accepted ones are reused.
        if (last !== undefined && last.bytes.equals(raw)) return last.parsed
        if (raw.byteLength > o.maxContextRecordBytes) return new Fail(ReasonCode.Oversize, `context record exceeds ${o.maxContextRecordBytes} bytes`)
        const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
        // Invalid UTF-8 is refused (as in a token's payload): valid UTF-8 decodes and re-encodes
        // to the same bytes, so the hash of the text is the hash of the bytes as they arrived.
        if (!isUtf8(bytes)) return new Fail(ReasonCode.Malformed, 'context record is not UTF-8')
        text = bytes.toString('utf8')
      } else {
        return new Fail(ReasonCode.Malformed, 'the context record is not text or bytes')
      }
      const hit = cache.get(text)
      if (hit !== undefined) return remember(raw, hit)
      const parsed = parseText(text)
      if (!(parsed instanceof Fail) && size > 0) {
        if (cache.size >= size) {
          const oldest = cache.keys().next()
          if (oldest.done !== true) cache.delete(oldest.value)
        }
        cache.set(text, parsed)
      }
      return parsed instanceof Fail ? parsed : remember(raw, parsed)
    },
    merge(entry, parsed) {
      if (parsed.mergedFor === entry && parsed.merged !== undefined) return parsed.merged
      const merged: Merged = { claims: mergeBatchClaims(entry.claims as BatchClaims, parsed.record), context: undefined }
      parsed.mergedFor = entry
      parsed.merged = merged
      return merged
    },
    clear: () => {
      cache.clear()
      last = undefined
    },
  }
}
