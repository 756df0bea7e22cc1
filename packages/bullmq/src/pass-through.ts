/**
 * A view of `target` where `overrides` replace some members and everything else is the target's
 * own member, with methods bound to the target (so private state and `this`-returning methods
 * keep working). The target itself is never modified.
 */
export function passThrough<T extends object, O extends object>(target: T, overrides: O): Omit<T, keyof O> & O {
  const bound = new Map<PropertyKey, { original: unknown; fn: unknown }>()
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return (overrides as Record<PropertyKey, unknown>)[prop]
      const value = Reflect.get(t, prop, t) as unknown
      if (typeof value !== 'function') return value
      const hit = bound.get(prop)
      if (hit !== undefined && hit.original === value) return hit.fn
      const fn = (value as (...args: unknown[]) => unknown).bind(t)
      bound.set(prop, { original: value, fn })
      return fn
    },
    has(t, prop) {
      return Object.prototype.hasOwnProperty.call(overrides, prop) || Reflect.has(t, prop)
    },
  }) as unknown as Omit<T, keyof O> & O
}
