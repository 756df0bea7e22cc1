import { SigningError } from '@idctx/core'
import { IDCTX_KEY } from './carrier.js'

/**
 * Whether a value is a plain object: created by `{}`, `Object.create(null)` or `JSON.parse` —
 * not an array, not null, not a class instance.
 *
 * @example
 * ```ts
 * isPlainObject({ a: 1 }) // true
 * isPlainObject(new Date()) // false
 * ```
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name
    return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'a non-plain object'
  }
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : 'a non-finite number'
  return `a ${typeof value}`
}

/**
 * Walks a value and throws on the first thing `JSON.stringify` would not store as it is. With
 * `copy`, returns what `JSON.parse(JSON.stringify(value))` would give — in the same walk, which
 * costs a fraction of the round trip — else the value itself.
 */
function assertJson(value: unknown, path: string, seen: Set<object>, copy: boolean): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (!Number.isFinite(value)) throw unsignable(path, value)
      // JSON writes -0 as 0.
      return copy && value === 0 ? 0 : value
    case 'object':
      break
    default:
      throw unsignable(path, value)
  }
  if (value === null) return value
  if (seen.has(value)) throw new SigningError(`job data is not signable: ${path} is a circular reference`)
  if (Array.isArray(value)) {
    if (hasToJSON(value)) throw withToJSON(path)
    seen.add(value)
    // As JSON.stringify does: the length read once, each element read once (a getter may change
    // the array or answer differently on a second read; the copy must be what JSON would store).
    const n = value.length
    const out: unknown[] | undefined = copy ? new Array<unknown>(n) : undefined
    for (let i = 0; i < n; i++) {
      const e: unknown = value[i]
      // A hole or undefined becomes null in JSON: refused, so the worker sees exactly what was signed.
      if (e === undefined) throw new SigningError(`job data is not signable: ${path}[${i}] is undefined (JSON would store null)`)
      const v = assertJson(e, `${path}[${i}]`, seen, copy)
      if (out !== undefined) out[i] = v
    }
    seen.delete(value)
    return out ?? value
  }
  if (!isPlainObject(value)) throw unsignable(path, value)
  if (hasToJSON(value)) throw withToJSON(path)
  seen.add(value)
  const out: Record<string, unknown> | undefined = copy ? {} : undefined
  for (const key of Object.keys(value)) {
    const v = value[key]
    // An undefined property is dropped by JSON and by the canonical form alike: both sides agree.
    if (v === undefined) continue
    const c = assertJson(v, `${path}${pathSegment(key)}`, seen, copy)
    if (out === undefined) continue
    // A member named __proto__ (JSON.parse makes it an own member) must not set the prototype.
    if (key === '__proto__') Object.defineProperty(out, key, { value: c, enumerable: true, writable: true, configurable: true })
    else out[key] = c
  }
  seen.delete(value)
  return out ?? value
}

/**
 * Whether `JSON.stringify` would store what a `toJSON` method returns instead of the members: an
 * array's own one, an Array subclass's, an inherited or proxied one (looked up as JSON looks it up).
 */
function hasToJSON(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON === 'function'
}

function withToJSON(path: string): SigningError {
  return new SigningError(`job data is not signable: ${path} has a toJSON method; use plain objects, arrays, strings, finite numbers, booleans and null`)
}

const IDENTIFIER = /^[A-Za-z_$][\w$]{0,63}$/

/** Keys can be data themselves (a map keyed by user id): only identifier-like keys are named. */
function pathSegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : '[…]'
}

function unsignable(path: string, value: unknown): SigningError {
  return new SigningError(
    `job data is not signable: ${path} is ${describe(value)}; use plain objects, arrays, strings, finite numbers, booleans and null`,
  )
}

/**
 * Checks that job data can be signed: a plain object whose values survive BullMQ's
 * `JSON.stringify` → Redis → `JSON.parse` unchanged, so the worker recomputes the same canonical
 * bytes. `undefined` stands for "no data" (`{}`); properties whose value is `undefined` are
 * dropped, as JSON drops them. Throws a {@link SigningError} naming the path, never the value.
 *
 * @example
 * ```ts
 * signableData({ invoiceId: 'inv-1', lines: [1, 2] }) // ok
 * signableData({ at: new Date() })                    // SigningError: data.at is an instance of Date
 * ```
 */
export function signableData(data: unknown): Record<string, unknown> {
  if (data === undefined) return {}
  assertJson(checkedTop(data), 'data', new Set(), false)
  return data as Record<string, unknown>
}

/** The top of job data: a plain object without the reserved key. */
function checkedTop(data: unknown): Record<string, unknown> {
  if (!isPlainObject(data)) {
    throw new SigningError(`job data must be a plain object, got ${describe(data)}`)
  }
  if (Object.prototype.hasOwnProperty.call(data, IDCTX_KEY)) {
    throw new SigningError(`job data already has the reserved key ${IDCTX_KEY}`)
  }
  return data
}

/**
 * {@link signableData}, returning a copy of the data as the worker will read it back — what
 * `JSON.parse(JSON.stringify(data))` gives — made in the same walk. The signer keeps it, so a
 * caller changing its object after `add` returned cannot make the stored data differ from the
 * signed data. Throws the same {@link SigningError}s as {@link signableData}.
 */
export function signableCopy(data: unknown): Record<string, unknown> {
  if (data === undefined) return {}
  return assertJson(checkedTop(data), 'data', new Set(), true) as Record<string, unknown>
}

/**
 * The job data as the processor sees it: the same object when it has no `__idctx`, otherwise a
 * shallow copy without it.
 *
 * @example
 * ```ts
 * withoutCarrier({ a: 1, __idctx: 'eyJ…' }) // { a: 1 }
 * ```
 */
export function withoutCarrier(data: Record<string, unknown>): Record<string, unknown> {
  if (!Object.prototype.hasOwnProperty.call(data, IDCTX_KEY)) return data
  const { [IDCTX_KEY]: _carrier, ...rest } = data
  return rest
}
