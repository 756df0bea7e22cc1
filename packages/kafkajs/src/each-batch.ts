import { passThrough } from '@idctx/core'
import type { VerifiedContext, VerifyResult } from '@idctx/core'
import type { EachBatchHandler, EachBatchPayload, KafkaMessage } from 'kafkajs'
import { rejectionOf, violationOf, type ConsumerRuntime, type Rejection } from './consumer-runtime.js'
import { RecordRejectedError } from './errors.js'
import type { IdctxBatch, IdctxBatchMessage, IdctxEachBatchPayload, RejectionPolicy } from './types.js'

/**
 * The kafkajs `eachBatch` that verifies every record of the batch before the user's handler runs.
 *
 * 1. Every record is verified (the verifier's token cache makes that one signature check per
 *    token plus a few hashes per record), with one replay-store round trip for the whole batch
 *    (`Verifier.verifyMany`).
 * 2. Rejected records are dead-lettered in one awaited write (or reported as skipped) BEFORE the
 *    handler runs, so whatever offset the handler or kafkajs resolves later, every record below
 *    it has either reached the handler or the dead-letter topic. A failed write throws: nothing of
 *    the batch is resolved by the wrapper and kafkajs redelivers it.
 * 3. The handler gets a batch view without the rejected records (skipped entirely when none
 *    remain). Each message carries `identity` (audit policy: or `violation`).
 * 4. With `eachBatchAutoResolve: false`, the handler resolves offsets itself; after it returns
 *    normally the wrapper resolves rejected records that directly follow what the handler
 *    resolved (otherwise kafkajs would fetch them again and again). With auto-resolve on, kafkajs
 *    resolves `batch.lastOffset()` when the wrapper returns, as for any batch.
 *
 * Under `fail` the batch stops at the first rejected record: the handler sees only the records
 * before it; with auto-resolve those are resolved, then the wrapper throws
 * {@link RecordRejectedError} and kafkajs redelivers from the rejected record on.
 *
 * Context: the whole batch — verification, dead-letter write and the handler — runs under
 * `store.exit` (no identity), whatever context surrounds kafkajs, because a batch can hold many
 * identities. `runInContext(message, fn)` runs `fn` inside the context of a verified message of
 * this batch view, and with no context for an audited (unverified) one. The identity it enters is
 * the one the wrapper recorded for that message object, never read back from the object, so a
 * copied or edited message cannot lend `fn` another identity (a TypeError says so).
 */
export function wrapEachBatch<P extends RejectionPolicy>(
  handler: (payload: IdctxEachBatchPayload<P>) => Promise<void>,
  runtime: ConsumerRuntime,
  autoResolve: boolean,
): EachBatchHandler {
  const { store } = runtime
  // The verdict of every message object handed out in a batch view: undefined for an audited one.
  const verdicts = new WeakMap<object, VerifiedContext | undefined>()
  const runInContext = <T>(message: IdctxBatchMessage<P>, fn: () => T): T => {
    if (message === null || typeof message !== 'object' || !verdicts.has(message)) {
      throw new TypeError('runInContext needs a message of the idctx batch view (the object itself, not a copy)')
    }
    const identity = verdicts.get(message)
    return identity === undefined ? store.exit(fn) : store.run(identity, fn)
  }

  return (payload) => store.exit(() => handle(payload))

  async function handle(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    const { topic, partition } = batch
    const view: IdctxBatchMessage<P>[] = []
    const dropped: Rejection[] = []
    const droppedOffsets = new Set<string>()
    let failed: Rejection | undefined

    const messages = batch.messages as KafkaMessage[]
    const results = await runtime.checkBatch(topic, partition, messages)
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i] as KafkaMessage
      const r = results[i] as VerifyResult
      if (r.ok) {
        const m = { ...message, identity: r.context } as IdctxBatchMessage<P>
        verdicts.set(m, r.context)
        view.push(m)
        continue
      }
      const rejection = rejectionOf(topic, partition, message, r)
      if (runtime.policy === 'audit') {
        runtime.report(rejection, 'audit')
        const m = { ...message, identity: undefined, violation: violationOf(rejection) } as IdctxBatchMessage<P>
        verdicts.set(m, undefined)
        view.push(m)
      } else if (runtime.policy === 'fail') {
        failed = rejection
        break
      } else {
        dropped.push(rejection)
        droppedOffsets.add(message.offset)
      }
    }

    if (dropped.length > 0) {
      if (runtime.policy === 'dead-letter') await runtime.deadLetter(dropped)
      else for (const d of dropped) runtime.report(d, 'skip')
    }

    // kafkajs keeps the last offset resolved (not the highest), so mirror exactly that.
    let resolved: bigint | undefined
    const resolveOffset = (offset: string): void => {
      payload.resolveOffset(offset)
      resolved = BigInt(offset)
    }

    if (view.length > 0) {
      const viewBatch = passThrough(batch, { messages: view }) as unknown as IdctxBatch<P>
      await handler({ ...payload, batch: viewBatch, resolveOffset, runInContext } as IdctxEachBatchPayload<P>)
    }

    if (failed !== undefined) {
      const last = view[view.length - 1]
      if (autoResolve && last !== undefined) payload.resolveOffset(last.offset)
      runtime.report(failed, 'fail')
      throw new RecordRejectedError(failed.result.error, failed.coordinates, failed.result.tokenSha256)
    }

    if (!autoResolve && droppedOffsets.size > 0) {
      let upTo: string | undefined
      for (const m of batch.messages as KafkaMessage[]) {
        if (droppedOffsets.has(m.offset)) upTo = m.offset
        else if (resolved === undefined || BigInt(m.offset) > resolved) break
      }
      if (upTo !== undefined && (resolved === undefined || BigInt(upTo) > resolved)) payload.resolveOffset(upTo)
    }
  }
}
