/**
 * A view of `target` where `overrides` replace some members and every other member is the
 * target's own, with methods bound to the target (so class instances with private fields work).
 * Nothing of the target is modified.
 */
export function passthrough<T extends object>(target: T, overrides: Readonly<Record<PropertyKey, unknown>>): T {
  const bound = new WeakMap<(...args: unknown[]) => unknown, unknown>()
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop]
      const v: unknown = Reflect.get(t, prop, t)
      if (typeof v !== 'function') return v
      const fn = v as (...args: unknown[]) => unknown
      let b = bound.get(fn)
      if (b === undefined) {
        b = fn.bind(t)
        bound.set(fn, b)
      }
      return b
    },
    has(t, prop) {
      return Object.prototype.hasOwnProperty.call(overrides, prop) || Reflect.has(t, prop)
    },
  })
}
