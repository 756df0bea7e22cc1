import * as nodeCrypto from 'node:crypto'
import { canonicalJson, canonicalJsonWithout } from './lib/canonical-json.js'
import { hashPrefixedLeaf } from './merkle.js'

// The RFC 6962 leaf prefix 0x00, then the domain tag.
const PREFIX = Buffer.from('\0idctx-leaf-v1\0', 'latin1')
const NULL_LENGTH = 0xffffffff

/**
 * A Kafka key or value as the client hands it over: bytes, text, or null (a tombstone).
 *
 * @example
 * ```ts
 * const key: KafkaBytes = 'o-1'
 * const value: KafkaBytes = Buffer.from('{"order":"o-1"}')
 * kafkaLeaf('orders', key, value)    // the leaf a signer binds
 * kafkaLeaf('orders', key, null)     // a tombstone has a leaf too
 * ```
 */
export type KafkaBytes = Buffer | Uint8Array | string | null | undefined

const UNRESERVED = /^[A-Za-z0-9._~-]*$/
const HEX = '0123456789ABCDEF'

/**
 * Percent-encodes one user-chosen component of a destination (RFC 3986 §2.1): every UTF-8 byte
 * outside the unreserved set (`A–Z a–z 0–9 - . _ ~`) becomes `%XX`, so `/` and `%` never stand
 * for themselves and two different (queue, job name) pairs never give the same destination.
 * Never throws: a lone surrogate is encoded as U+FFFD, as Redis and Kafka would store it.
 *
 * @example
 * ```ts
 * encodeDestinationComponent('refund/x') // 'refund%2Fx'
 * ```
 */
export function encodeDestinationComponent(component: string): string {
  if (UNRESERVED.test(component)) return component
  let out = ''
  for (const byte of Buffer.from(component, 'utf8')) {
    const c = String.fromCharCode(byte)
    out += byte < 0x80 && UNRESERVED.test(c) ? c : `%${HEX[byte >> 4]}${HEX[byte & 15]}`
  }
  return out
}

/**
 * The destination string of a Kafka topic, as it appears in `dst`, in the leaf and in ACL
 * patterns: `kafka:` and the percent-encoded topic (Kafka's own topic characters are all
 * unreserved, so a real topic reads as itself).
 *
 * @example
 * ```ts
 * kafkaDestination('orders') // 'kafka:orders'
 * ```
 */
export function kafkaDestination(topic: string): string {
  return `kafka:${encodeDestinationComponent(topic)}`
}

/**
 * The destination string of a BullMQ job, as it appears in `dst`, in the leaf and in ACL
 * patterns: `bullmq:<queue>/<jobName>`, each component percent-encoded (see
 * {@link encodeDestinationComponent}), so queue `billing` with name `refund/x` and queue
 * `billing/refund` with name `x` are different destinations.
 *
 * @example
 * ```ts
 * bullmqDestination('invoices', 'invoice') // 'bullmq:invoices/invoice'
 * bullmqDestination('billing', 'refund/x') // 'bullmq:billing/refund%2Fx'
 * ```
 */
export function bullmqDestination(queue: string, jobName: string): string {
  return `bullmq:${encodeDestinationComponent(queue)}/${encodeDestinationComponent(jobName)}`
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/
const AUTHORITY = /^[a-z0-9._~!$&'()*+,;=:%[\]-]{1,255}$/
// Path bytes that stand for themselves: visible ASCII except `?` and `#` (they end a path) and `%`
// (kept only as the start of an escape the client already made).
const PATH_CHAR = /^[!$&'()*+,\-./0-9:;=@A-Z_a-z~]$/

function encodePath(path: string): string {
  let out = ''
  let i = 0
  for (const c of path) {
    if (PATH_CHAR.test(c) || (c === '%' && /^[0-9A-Fa-f]{2}$/.test(path.slice(i + 1, i + 3)))) out += c
    else for (const byte of Buffer.from(c, 'utf8')) out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`
    i += c.length
  }
  return out
}

/**
 * The destination string of an HTTP request, as it appears in `dst`, in the leaf and in ACL
 * patterns: `http:<METHOD> <authority><path>` — the method as sent (a token, case kept), the
 * authority (`host[:port]`, lower-cased) and the path without its query, with every byte outside
 * the visible ASCII (and `?`, `#`, a `%` that starts no escape) percent-encoded. None of the parts
 * can hold the separator that ends the one before it, so two different requests never share a
 * destination. Throws a TypeError for a method that is not an HTTP token, an authority with
 * userinfo, a path that does not start with `/`, or a destination longer than 512 bytes (the
 * `dst` limit).
 *
 * @example
 * ```ts
 * httpDestination('POST', 'orders.internal:8443', '/orders') // 'http:POST orders.internal:8443/orders'
 * ```
 */
export function httpDestination(method: string, authority: string, path: string): string {
  if (typeof method !== 'string' || !METHOD.test(method)) throw new TypeError('httpDestination: method must be an HTTP token')
  const host = typeof authority === 'string' ? authority.toLowerCase() : ''
  if (!AUTHORITY.test(host)) throw new TypeError('httpDestination: authority must be host[:port], without userinfo')
  if (typeof path !== 'string' || !path.startsWith('/')) throw new TypeError('httpDestination: path must start with /')
  const destination = `http:${method} ${host}${encodePath(path)}`
  if (Buffer.byteLength(destination, 'utf8') > 512) throw new TypeError('httpDestination: the destination exceeds 512 bytes')
  return destination
}

/**
 * The leaf of an HTTP request: destination `http:<METHOD> <authority><path>` (see
 * {@link httpDestination}), the query string as the key (without `?`; an empty query and no query
 * are the same) and the exact body bytes as the value (no body and an empty body are the same, as
 * they are on the wire). `target` is the request target as sent: the path and the query. A token
 * moved to another method, service, path, query or body no longer matches.
 *
 * @example
 * ```ts
 * const leaf = httpLeaf('POST', 'orders.internal', '/orders?dry=1', Buffer.from('{"qty":1}'))
 * ```
 */
export function httpLeaf(method: string, authority: string, target: string, body: KafkaBytes): Buffer {
  if (typeof target !== 'string') throw new TypeError('httpLeaf: target must be the path and query as sent')
  const q = target.indexOf('?')
  const hash = target.indexOf('#')
  const end = hash < 0 ? target.length : hash
  const path = q < 0 || q > end ? target.slice(0, end) : target.slice(0, q)
  const query = q < 0 || q > end ? '' : target.slice(q + 1, end)
  return messageLeaf(httpDestination(method, authority, path), query, body ?? '')
}

/** The length of a key or value in the leaf; -1 for a null (tombstone) or absent one. */
function byteLength(v: KafkaBytes): number {
  if (v === null || v === undefined) return -1
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.byteLength
}

/** Writes a 32-bit length (0xFFFFFFFF for null) and the bytes at `at`; returns the next offset. */
function writeField(input: Buffer, at: number, v: KafkaBytes, length: number): number {
  const next = input.writeUInt32BE(length < 0 ? NULL_LENGTH : length, at)
  if (v === null || v === undefined) return next
  if (typeof v === 'string') input.write(v, next, 'utf8')
  else input.set(v, next)
  return next + length
}

/**
 * The leaf hash of one message: a length-prefixed encoding of destination, key and value under a
 * fixed domain tag, hashed as an RFC 6962 leaf. Null and empty are different.
 *
 * @example
 * ```ts
 * const leaf = messageLeaf('kafka:orders', 'order-1', Buffer.from('{"total":3}'))
 * ```
 */
export function messageLeaf(destination: string, key: KafkaBytes, value: KafkaBytes): Buffer {
  const dstLength = Buffer.byteLength(destination, 'utf8')
  const keyLength = byteLength(key)
  const valueLength = byteLength(value)
  // One buffer written in place and hashed once: this runs for every consumed record and job, and
  // separate buffers for each part and their concatenation cost more than the hash itself.
  const input = Buffer.allocUnsafe(PREFIX.length + 12 + dstLength + Math.max(keyLength, 0) + Math.max(valueLength, 0))
  let at = PREFIX.copy(input, 0)
  at = writeField(input, at, destination, dstLength)
  at = writeField(input, at, key, keyLength)
  writeField(input, at, value, valueLength)
  return hashPrefixedLeaf(input)
}

/**
 * The leaf of a Kafka record: destination `kafka:<topic>`, the record key and the exact value
 * bytes (a string value is taken as its UTF-8 bytes, as kafkajs sends it).
 *
 * @example
 * ```ts
 * const leaf = kafkaLeaf('orders', message.key, message.value)
 * ```
 */
export function kafkaLeaf(topic: string, key: KafkaBytes, value: KafkaBytes): Buffer {
  return messageLeaf(kafkaDestination(topic), key, value)
}

/**
 * RFC 8785 (JCS) canonical JSON of BullMQ job data without the reserved token field, as the
 * consumer will read it back (BullMQ stores `JSON.stringify(data)`). Throws a TypeError when the
 * data cannot be serialized (BigInt, cycles).
 *
 * @example
 * ```ts
 * canonicalJobData({ b: 1, a: 2, __idctx: 't' }) // '{"a":2,"b":1}'
 * ```
 */
export function canonicalJobData(data: Record<string, unknown>, reservedKey = '__idctx'): string {
  // Canonicalize what the consumer will see: BullMQ stores JSON.stringify(data), which drops or
  // nulls functions, undefined and NaN; canonicalJson produces exactly canonicalize() of that JSON
  // read back, so leaves agree. Without the reserved key it serializes the object's other members
  // directly instead of copying the object first.
  const text = Object.prototype.hasOwnProperty.call(data, reservedKey)
    ? canonicalJsonWithout(data, reservedKey)
    : canonicalJson(data)
  if (text === undefined) throw new TypeError('job data is not representable as JSON')
  return text
}

/**
 * The leaf of a BullMQ job: destination `bullmq:<queue>/<jobName>`, no key, and the canonical
 * JSON of the data without the token field, so Redis round trips and key order do not matter.
 *
 * @example
 * ```ts
 * const leaf = bullmqLeaf('invoices', 'invoice', job.data)
 * ```
 */
export function bullmqLeaf(queue: string, jobName: string, data: Record<string, unknown>): Buffer {
  return messageLeaf(bullmqDestination(queue, jobName), null, canonicalJobData(data))
}

/**
 * The leaf a job scheduler's grant is bound to: the destination of its runs
 * (`bullmq:<queue>/<jobName>`), the key `scheduler:<schedulerId>` (percent-encoded) and the
 * canonical JSON of the template data without the reserved field. A grant moved to another
 * scheduler, queue or job name, or template data edited in Redis, no longer matches.
 *
 * @example
 * ```ts
 * const leaf = bullmqSchedulerLeaf('reports', 'nightly-report', 'report', { kind: 'daily' })
 * ```
 */
export function bullmqSchedulerLeaf(queue: string, schedulerId: string, jobName: string, data: Record<string, unknown>): Buffer {
  return messageLeaf(bullmqDestination(queue, jobName), `scheduler:${encodeDestinationComponent(schedulerId)}`, canonicalJobData(data))
}

// The RFC 6962 leaf prefix 0x00, then the batch-profile domain tag (design, "Batch profile").
const BATCH_PREFIX = Buffer.from('\0idctx-batch-leaf-v1\0', 'latin1')
const BATCH_LEAF_INPUT = BATCH_PREFIX.length + 64
// crypto.hash (Node >= 20.12) skips the Hash object.
const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash

/**
 * SHA-256 of a context record (see `ContextRecord`), over its exact UTF-8 bytes: what a
 * batch-profile leaf binds. A string is taken as its UTF-8 bytes.
 *
 * @example
 * ```ts
 * const h = contextRecordHash(headers['idctx-ctx']) // 32 bytes
 * ```
 */
export function contextRecordHash(record: string | Uint8Array): Buffer {
  if (typeof record === 'string') {
    if (oneShot !== undefined) return Buffer.from(oneShot('sha256', record, 'binary'), 'latin1')
    return nodeCrypto.createHash('sha256').update(record, 'utf8').digest()
  }
  return nodeCrypto.createHash('sha256').update(record).digest()
}

/**
 * The leaf of one message under the batch profile (design, "Batch profile"):
 * SHA-256(0x00 ‖ "idctx-batch-leaf-v1\0" ‖ SHA-256(context record) ‖ message leaf), where the
 * message leaf is the single-profile leaf of the message ({@link messageLeaf}, {@link kafkaLeaf},
 * {@link bullmqLeaf}). Moving a context record onto another message, or a message under another
 * context record, changes the leaf. Throws a TypeError unless both inputs are 32 bytes.
 *
 * @example
 * ```ts
 * const leaf = batchLeaf(contextRecordHash(record), kafkaLeaf('orders', key, value))
 * ```
 */
export function batchLeaf(contextRecordSha256: Uint8Array, leaf: Uint8Array): Buffer {
  if (contextRecordSha256.length !== 32 || leaf.length !== 32) throw new TypeError('batchLeaf needs two 32-byte hashes')
  const input = Buffer.allocUnsafe(BATCH_LEAF_INPUT)
  BATCH_PREFIX.copy(input, 0)
  input.set(contextRecordSha256, BATCH_PREFIX.length)
  input.set(leaf, BATCH_PREFIX.length + 32)
  return hashPrefixedLeaf(input)
}
