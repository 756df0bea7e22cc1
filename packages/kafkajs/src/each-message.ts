import type { VerifyResult } from '@idctx/core'
import type { EachBatchHandler, EachMessageHandler, EachMessagePayload, KafkaMessage } from 'kafkajs'
import type { ConsumerRuntime } from './consumer-runtime.js'
import { rejectionOf, violationOf } from './consumer-runtime.js'
import { RecordRejectedError } from './errors.js'
import type { IdctxEachMessagePayload, RejectionPolicy } from './types.js'

type Handler<P extends RejectionPolicy> = (payload: IdctxEachMessagePayload<P>) => Promise<void>

/**
 * Handles one record whose verification result is known: the handler inside the record's context
 * when verified, otherwise the policy. Runs under `store.exit` (set by the callers).
 */
async function handleVerdict<P extends RejectionPolicy>(handler: Handler<P>, runtime: ConsumerRuntime, payload: EachMessagePayload, r: VerifyResult): Promise<void> {
  const { topic, partition, message } = payload
  if (r.ok) {
    const identity = r.context
    return runtime.store.run(identity, () => handler({ ...payload, identity } as IdctxEachMessagePayload<P>))
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
      // Already outside any identity (store.exit): an unverified record gets none.
      return handler({ ...payload, identity: undefined, violation: violationOf(rejection) } as IdctxEachMessagePayload<P>)
  }
}

/**
 * The kafkajs `eachMessage` that verifies a record before the user's handler sees it, one record
 * at a time (`eachMessageVerify: 'record'`).
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
export function wrapEachMessage<P extends RejectionPolicy>(handler: Handler<P>, runtime: ConsumerRuntime): EachMessageHandler {
  const { store } = runtime
  return (payload) =>
    store.exit(async () => handleVerdict(handler, runtime, payload, await runtime.check(payload.topic, payload.partition, payload.message)))
}

/** What {@link wrapEachMessageByBatch} needs to mirror kafkajs's own `eachMessage` loop. */
export interface EachMessageLoop {
  /** `consumer.run`'s `autoCommit` (default true): commit when the interval or threshold is reached. */
  autoCommit: boolean
  /** Whether the partition is paused now (by the handler's `pause()` or `consumer.pause`). */
  isPaused(topic: string, partition: number): boolean
}

/**
 * The user's `eachMessage`, run by kafkajs as an `eachBatch` (with `eachBatchAutoResolve: false`)
 * so that the records of a fetched batch are verified together before the first is handled
 * (`eachMessageVerify: 'batch'`): one replay-store round trip per batch (`Verifier.verifyMany`)
 * instead of one per record, which is what a shared store on Redis costs on the per-record path.
 *
 * The loop is kafkajs 2.2.4's own `eachMessage` loop (runner.js `processEachMessage`): stop when
 * the consumer stops or the partition is sought (`isStale`); for each record call the handler with
 * the `eachMessage` payload (`topic`, `partition`, `message`, `heartbeat`, `pause`) plus the
 * verdict, then resolve its offset, heartbeat and commit if the auto-commit interval or threshold
 * is reached; stop after a record whose handler paused the partition. A throwing handler leaves
 * the offsets resolved so far (kafkajs commits them and redelivers from the failed record on).
 * Records are handled one after the other, in order; the verdicts, offsets and context are those
 * of {@link wrapEachMessage}. A record is verified when its batch arrives rather than just before
 * its handler runs: a revocation or an expiry that falls while the batch's earlier records are
 * handled applies from the next batch on (the same as for `eachBatch`).
 */
export function wrapEachMessageByBatch<P extends RejectionPolicy>(handler: Handler<P>, runtime: ConsumerRuntime, loop: EachMessageLoop): EachBatchHandler {
  const { store } = runtime
  return (payload) =>
    store.exit(async () => {
      const { batch, heartbeat, pause, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload
      const { topic, partition } = batch
      const messages = batch.messages as KafkaMessage[]
      const results = await runtime.checkBatch(topic, partition, messages)
      for (let i = 0; i < messages.length; i++) {
        if (!isRunning() || isStale()) break
        const message = messages[i] as KafkaMessage
        await handleVerdict(handler, runtime, { topic, partition, message, heartbeat, pause }, results[i] as VerifyResult)
        resolveOffset(message.offset)
        await heartbeat()
        if (loop.autoCommit) await commitOffsetsIfNecessary()
        if (loop.isPaused(topic, partition)) break
      }
    })
}
