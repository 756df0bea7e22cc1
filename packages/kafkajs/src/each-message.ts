import type { EachMessageHandler } from 'kafkajs'
import type { ConsumerRuntime } from './consumer-runtime.js'
import { rejectionOf, violationOf } from './consumer-runtime.js'
import { RecordRejectedError } from './errors.js'
import type { IdctxEachMessagePayload, RejectionPolicy } from './types.js'

/**
 * The kafkajs `eachMessage` that verifies a record before the user's handler sees it.
 *
 * Offset semantics: kafkajs resolves a record's offset only when `eachMessage` returns. A verified
 * record runs the handler inside its context. A rejected record is dead-lettered (returning only
 * after the dead-letter write is acknowledged; a failed write throws, so the record is
 * redelivered), skipped, thrown on (`fail`), or handed to the handler with its violation (`audit`).
 *
 * Context: everything runs under `store.exit` (no identity), whatever context surrounds kafkajs —
 * e.g. a `consumer.run()` started inside `runWithContext` — except the handler of a verified
 * record, which runs inside that record's context. An audited (rejected) record's handler, the
 * verification itself (tenant resolvers, observers) and the dead-letter write get no identity.
 */
export function wrapEachMessage<P extends RejectionPolicy>(
  handler: (payload: IdctxEachMessagePayload<P>) => Promise<void>,
  runtime: ConsumerRuntime,
): EachMessageHandler {
  const { store } = runtime
  return (payload) => store.exit(() => handle(payload))

  async function handle(payload: Parameters<EachMessageHandler>[0]): Promise<void> {
    const { topic, partition, message } = payload
    const r = await runtime.check(topic, partition, message)
    if (r.ok) {
      const identity = r.context
      return store.run(identity, () => handler({ ...payload, identity } as IdctxEachMessagePayload<P>))
    }
    const rejection = rejectionOf(topic, partition, message, r)
    switch (runtime.policy) {
      case 'dead-letter':
        await runtime.deadLetter([rejection])
        return
      case 'skip':
        runtime.report(rejection, 'skip')
        return
      case 'fail':
        runtime.report(rejection, 'fail')
        throw new RecordRejectedError(r.error, rejection.coordinates, r.tokenSha256)
      case 'audit':
        runtime.report(rejection, 'audit')
        // Already outside any identity (store.exit above): an unverified record gets none.
        return handler({ ...payload, identity: undefined, violation: violationOf(rejection) } as IdctxEachMessagePayload<P>)
    }
  }
}
