import type { Deserializers, MessageToConsume } from '@platformatic/kafka'

/**
 * The bytes of a consumed record as they came off the wire, before any deserializer.
 *
 * @example
 * ```ts
 * const entry: DeadLetterEntry = { topic, partition, offset, reason, record: { key: null, value, headers: [[Buffer.from('idctx'), token]] } satisfies RawRecord }
 * ```
 */
export interface RawRecord {
  readonly key: Buffer | null
  readonly value: Buffer | null
  /** Every header entry in wire order, a repeated name repeated. */
  readonly headers: readonly (readonly [Buffer | null, Buffer | null])[]
}

type AnyDeserializers = Partial<Deserializers<unknown, unknown, unknown, unknown>>

/** Remembers the raw record behind every message the wrapped streams deliver. */
export interface RawRecords {
  /** The caller's deserializers plus the capture, to pass to the client's `consume`. */
  capture(deserializers: AnyDeserializers | undefined): AnyDeserializers
  /** The raw record behind a delivered message, looked up by its `headers` Map. */
  of(headers: unknown): RawRecord | undefined
}

function identity(data?: Buffer): Buffer | undefined {
  return data
}

/**
 * The token binds the exact key and value bytes and the carriers are counted on the raw header
 * list, whatever deserializers the application uses. `@platformatic/kafka` (1.x and 2.x) calls
 * the key deserializer as `(key, headers, record)`: `headers` is the Map that becomes
 * `message.headers` and `record` the record as read (key, value and every header entry,
 * duplicates included). Wrapping that one deserializer captures the raw record without changing
 * what the application gets.
 */
export function createRawRecords(): RawRecords {
  const raw = new WeakMap<object, RawRecord>()
  return {
    capture(deserializers) {
      const key = deserializers?.key ?? identity
      return {
        ...deserializers,
        key: (data?: Buffer, headers?: Map<unknown, unknown>, record?: MessageToConsume) => {
          if (headers !== undefined && record !== undefined) raw.set(headers, { key: record.key, value: record.value, headers: record.headers })
          return key(data, headers, record)
        },
      }
    },
    of: (headers) => (typeof headers === 'object' && headers !== null ? raw.get(headers) : undefined),
  }
}

/** Every occurrence of each header name of a raw record (names as UTF-8). */
export function rawHeaderGroups(record: RawRecord): Map<string, (Buffer | null)[]> {
  const groups = new Map<string, (Buffer | null)[]>()
  for (const [k, v] of record.headers) {
    if (k === null) continue
    const name = k.toString('utf8')
    const list = groups.get(name)
    if (list === undefined) groups.set(name, [v])
    else list.push(v)
  }
  return groups
}
