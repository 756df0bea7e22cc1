import type { FlowProducer, Queue } from 'bullmq'

/** The error `fn` throws, or undefined when it returns: the assertions stay outside any catch. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

/** What a fake queue or flow producer was asked to store. */
export interface Calls {
  readonly added: unknown[][]
}

/** A Queue stand-in that records what reaches BullMQ, so tests can assert nothing was added. */
export function fakeQueue(name = 'q'): { queue: Queue; calls: Calls } {
  const calls: Calls = { added: [] }
  const queue = {
    name,
    defaultJobOptions: {},
    add: async (...args: unknown[]) => {
      calls.added.push(['add', ...args])
      return { id: '1', data: args[1] }
    },
    addBulk: async (...args: unknown[]) => {
      calls.added.push(['addBulk', ...args])
      return []
    },
    upsertJobScheduler: async (...args: unknown[]) => {
      calls.added.push(['upsertJobScheduler', ...args])
      return { id: 'repeat:x:1' }
    },
  }
  return { queue: queue as unknown as Queue, calls }
}

/** A FlowProducer stand-in that records what reaches BullMQ. */
export function fakeFlowProducer(): { flows: FlowProducer; calls: Calls } {
  const calls: Calls = { added: [] }
  const flows = {
    add: async (...args: unknown[]) => {
      calls.added.push(['add', ...args])
      return { job: { id: '1' } }
    },
    addBulk: async (...args: unknown[]) => {
      calls.added.push(['addBulk', ...args])
      return []
    },
  }
  return { flows: flows as unknown as FlowProducer, calls }
}
