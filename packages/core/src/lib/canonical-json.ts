import { types } from 'node:util'

/**
 * RFC 8785 (JCS) text of what `JSON.stringify` makes of a value, in one pass: exactly the bytes of
 * `canonicalize(JSON.parse(JSON.stringify(value)))`, without building and re-parsing the
 * intermediate JSON text (the bulk of a BullMQ job's verification cost before this existed).
 *
 * It follows the steps of `JSON.stringify` (SerializeJSONProperty): `toJSON` with the property
 * key, boxed primitives unwrapped, `undefined`/functions/symbols dropped from objects and `null` in
 * arrays, non-finite numbers as `null`, a TypeError for BigInt and cycles. Getters run once each,
 * in the object's own key order, as `JSON.stringify` runs them; only the emitted members are then
 * sorted by UTF-16 code units, as RFC 8785 (and `canonicalize`) sorts them. Numbers and strings
 * use `JSON.stringify`'s own serialization, which RFC 8785 adopts as is.
 *
 * Returns undefined where `JSON.stringify` returns undefined (a function, a symbol, undefined).
 *
 * @example
 * ```ts
 * canonicalJson({ b: [1, undefined], a: NaN, f: () => 1 }) // '{"a":null,"b":[1,null]}'
 * ```
 */
export function canonicalJson(value: unknown): string | undefined {
  return valueText(value, '', [])
}

/**
 * {@link canonicalJson} of a plain object holding `source`'s own enumerable properties except
 * `omit` — what `const { [omit]: _, ...rest } = source` gives — without making that copy.
 *
 * @example
 * ```ts
 * canonicalJsonWithout({ b: 1, __idctx: 'eyJ…', a: 2 }, '__idctx') // '{"a":2,"b":1}'
 * ```
 */
export function canonicalJsonWithout(source: object, omit: string): string | undefined {
  // The copy would carry an own toJSON (called with the copy as `this`): then make that copy.
  if (Object.prototype.hasOwnProperty.call(source, 'toJSON')) {
    const { [omit]: _omit, ...rest } = source as Record<string, unknown>
    return canonicalJson(rest)
  }
  return objectText(source as Record<string, unknown>, [source], omit)
}

function valueText(input: unknown, key: string, ancestors: object[]): string | undefined {
  let value = input
  if ((typeof value === 'object' && value !== null) || typeof value === 'function' || typeof value === 'bigint') {
    const toJSON = (value as { toJSON?: unknown }).toJSON
    if (typeof toJSON === 'function') value = (toJSON as (this: unknown, key: string) => unknown).call(value, key)
  }
  if (typeof value !== 'object' || value === null) return primitiveText(value)
  // A Symbol object has no primitive JSON.stringify unwraps: it is serialized as an object.
  if (types.isBoxedPrimitive(value) && !types.isSymbolObject(value)) return primitiveText(unbox(value))
  if (ancestors.includes(value)) throw new TypeError('Converting circular structure to JSON')
  ancestors.push(value)
  const text = Array.isArray(value) ? arrayText(value, ancestors) : objectText(value as Record<string, unknown>, ancestors, undefined)
  ancestors.pop()
  return text
}

function primitiveText(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null'
    case 'boolean':
      return value ? 'true' : 'false'
    case 'bigint':
      throw new TypeError('Do not know how to serialize a BigInt')
    case 'object':
      return 'null'
    default:
      return undefined
  }
}

/** The primitive of a Number, String, Boolean or BigInt object, converted as JSON.stringify does. */
function unbox(value: object): unknown {
  if (types.isNumberObject(value)) return Number(value)
  if (types.isStringObject(value)) return String(value)
  if (types.isBooleanObject(value)) return Boolean.prototype.valueOf.call(value)
  return BigInt.prototype.valueOf.call(value)
}

function arrayText(array: readonly unknown[], ancestors: object[]): string {
  let out = '['
  const n = array.length
  for (let i = 0; i < n; i++) {
    if (i > 0) out += ','
    out += valueText(array[i], String(i), ancestors) ?? 'null'
  }
  return `${out}]`
}

function byKey(a: readonly [string, string], b: readonly [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0
}

function objectText(object: Record<string, unknown>, ancestors: object[], omit: string | undefined): string {
  const members: [string, string][] = []
  for (const key of Object.keys(object)) {
    if (key === omit) continue
    const text = valueText(object[key], key, ancestors)
    if (text !== undefined) members.push([key, text])
  }
  if (members.length > 1) members.sort(byKey)
  let out = '{'
  for (let i = 0; i < members.length; i++) {
    const [key, text] = members[i] as [string, string]
    if (i > 0) out += ','
    out += `${JSON.stringify(key)}:${text}`
  }
  return `${out}}`
}
