import { Consumer, Producer, type ConsumerOptions } from '@platformatic/kafka'
import { BROKERS, uniqueName } from '../kafka/helpers.js'

/** Owns the @platformatic/kafka clients of one test file and closes them all. */
export class PlatformaticClients {
  private readonly closers: (() => Promise<unknown>)[] = []

  producer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    const p = new Producer({ clientId: uniqueName('pk-p'), bootstrapBrokers: BROKERS })
    this.closers.push(() => p.close())
    return p
  }

  consumer(groupId = uniqueName('pk-g'), extra: Partial<ConsumerOptions<Buffer, Buffer, Buffer, Buffer>> = {}): Consumer<Buffer, Buffer, Buffer, Buffer> {
    const c = new Consumer({ clientId: uniqueName('pk-c'), groupId, bootstrapBrokers: BROKERS, maxWaitTime: 200, ...extra } as ConsumerOptions<Buffer, Buffer, Buffer, Buffer>)
    this.closers.push(() => c.close())
    return c
  }

  async close(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => undefined)
  }
}

/** Text of a header value as this client delivers it. */
export function text(v: unknown): string | undefined {
  return Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : undefined
}
