/**
 * A view of `target` in which `overrides` replace some members and every other member is the
 * target's own, methods bound to the target (so class instances with private fields, and methods
 * that return `this`, keep working). Nothing of the target is modified, and `in` sees both. This
 * is how every idctx adapter wraps a client object (a producer, a consumer, a queue) — exported
 * for adapters of other clients.
 *
 * @example
 * ```ts
 * const signed = passThrough(producer, { send: (record: ProducerRecord) => signAndSend(record) })
 * await signed.connect() // the producer's own connect, bound to it
 * await signed.send({ topic: 'orders', messages }) // the override
 * ```
 */
export function passThrough<T extends object, O extends object>(target: T, overrides: O): Omit<T, keyof O> & O {
  const bound = new WeakMap<(...args: unknown[]) => unknown, unknown>()
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return (overrides as Record<PropertyKey, unknown>)[prop]
      const v: unknown = Reflect.get(t, prop, t)
      if (typeof v !== 'function') return v
      // One bound function per member function: `view.send === view.send`, and a member the
      // target replaces later is bound afresh.
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
  }) as unknown as Omit<T, keyof O> & O
}
