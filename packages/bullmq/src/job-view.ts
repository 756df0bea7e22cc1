import type { Job } from 'bullmq'

/**
 * The job as the processor sees it: `data` is `data` (the job's data without `__idctx`), every
 * other member is the job's own, and methods run with the view as `this`, so `updateProgress`,
 * `log`, `getChildrenValues`, … work while anything the job serialises sees the clean data. The
 * real job object is left untouched; assigning `view.data` only changes the view.
 */
export function jobView<J extends Job>(job: J, data: unknown): J {
  let current = data
  return new Proxy(job, {
    get(target, prop, receiver) {
      if (prop === 'data') return current
      return Reflect.get(target, prop, receiver) as unknown
    },
    set(target, prop, value) {
      if (prop === 'data') {
        current = value
        return true
      }
      return Reflect.set(target, prop, value)
    },
  })
}
