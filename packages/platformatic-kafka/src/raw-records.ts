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
  /**
   * What one of the application's deserializers threw for this message (its field then holds
   * the raw bytes): a hostile record must still be verified and dead-lettered, not stop the stream.
   */
  failure(headers: unknown): { readonly error: unknown } | undefined
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
  // A deserializer that throws makes the client drop the whole fetch and destroy the stream (or,
  // with `onCorruptedMessage`, drop the record unverified): an unsigned record with a body the
  // application cannot parse would stop the consumer. Its error is kept (by the record while the
  // headers are read, then by the headers Map) and the raw bytes stand in for the value.
  const failedRecords = new WeakMap<object, { error: unknown }>()
  const failures = new WeakMap<object, { error: unknown }>()
  const guard = <A extends unknown[]>(fn: (data: Buffer | undefined, ...rest: A) => unknown, onError: (error: unknown, rest: A) => void) => (data: Buffer | undefined, ...rest: A) => {
    try {
      return fn(data, ...rest)
    } catch (error) {
      onError(error, rest)
      return data
    }
  }
  const onRecord = (error: unknown, [record]: [MessageToConsume?]) => {
    if (typeof record === 'object' && record !== null && !failedRecords.has(record)) failedRecords.set(record, { error })
  }
  const onHeaders = (error: unknown, [headers]: [Map<unknown, unknown>?, MessageToConsume?]) => {
    if (typeof headers === 'object' && headers !== null && !failures.has(headers)) failures.set(headers, { error })
  }
  return {
    capture(deserializers) {
      const key = guard((deserializers?.key ?? identity) as (data: Buffer | undefined, headers?: Map<unknown, unknown>, record?: MessageToConsume) => unknown, onHeaders)
      const value = deserializers?.value === undefined ? undefined : guard(deserializers.value as (data: Buffer | undefined, headers?: Map<unknown, unknown>, record?: MessageToConsume) => unknown, onHeaders)
      const headerKey = deserializers?.headerKey === undefined ? undefined : guard(deserializers.headerKey as (data: Buffer | undefined, record?: MessageToConsume) => unknown, onRecord)
      const headerValue = deserializers?.headerValue === undefined ? undefined : guard(deserializers.headerValue as (data: Buffer | undefined, record?: MessageToConsume) => unknown, onRecord)
      return {
        ...deserializers,
        ...(value === undefined ? {} : { value }),
        ...(headerKey === undefined ? {} : { headerKey }),
        ...(headerValue === undefined ? {} : { headerValue }),
        key: (data?: Buffer, headers?: Map<unknown, unknown>, record?: MessageToConsume) => {
          if (headers !== undefined && record !== undefined) {
            raw.set(headers, { key: record.key, value: record.value, headers: record.headers })
            const failed = failedRecords.get(record)
            if (failed !== undefined) failures.set(headers, failed)
          }
          return key(data, headers, record)
        },
      } as AnyDeserializers
    },
    of: (headers) => (typeof headers === 'object' && headers !== null ? raw.get(headers) : undefined),
    failure: (headers) => (typeof headers === 'object' && headers !== null ? failures.get(headers) : undefined),
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
