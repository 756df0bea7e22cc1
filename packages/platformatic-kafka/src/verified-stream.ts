import {
  ConfigError,
  kafkaCoordinates,
  RecordRejectedError,
  type ContextStore,
  type KafkaDispositions,
  type KafkaRecordCheck,
  type KafkaRejection,
  type VerifiedContext,
} from '@idctx/core'
import type { MessagesStream } from '@platformatic/kafka'
import type { VerifyResult } from '@idctx/core'
import { headerString } from './headers.js'
import type { RawRecords } from './raw-records.js'
import type { AnyMessage, ConsumedRecord, IdctxMessage, IdctxMessagesStream, RejectionPolicy, Violation } from './types.js'

/** Most messages verified together ahead of the one handed out (those the client already holds). */
const MAX_VERIFIED_AHEAD = 512

/** What the verified stream needs from `wrapConsumer`. */
export interface StreamRuntime {
  readonly policy: RejectionPolicy
  readonly store: ContextStore
  readonly records: KafkaRecordCheck<ConsumedRecord>
  readonly dispositions: KafkaDispositions<AnyMessage>
}

/**
 * Commits handled positions, at most one commit request in flight: marks made while one is
 * running are committed together by the next (each partition at its latest handled message).
 */
function createCommitter(): { mark(message: AnyMessage): void; flush(): Promise<void> } {
  const marked = new Map<string, AnyMessage>()
  let running: Promise<void> | undefined
  let failure: unknown
  const loop = async (): Promise<void> => {
    while (marked.size > 0) {
      const batch = [...marked.values()]
      marked.clear()
      try {
        await Promise.all(batch.map((m) => m.commit()))
      } catch (e) {
        // Not a loss: an uncommitted message is delivered again. Keep the latest position to retry.
        failure = e
        for (const m of batch) {
          const k = `${m.topic}:${m.partition}`
          if (!marked.has(k)) marked.set(k, m)
        }
        return
      }
    }
  }
  const start = () => {
    if (running !== undefined) return
    running = loop().finally(() => {
      running = undefined
    })
  }
  return {
    mark(message) {
      marked.set(`${message.topic}:${message.partition}`, message)
      start()
    },
    async flush() {
      while (running !== undefined) await running
      if (marked.size > 0) await loop()
      if (marked.size > 0) {
        const e = failure
        failure = undefined
        throw e
      }
    },
  }
}

/**
 * The verified view of a client stream. Every message is verified before it comes out; rejected
 * ones follow the policy before the next message is read. Offsets (the client's own autocommit is
 * off, since it commits at fetch time, before anything is handled):
 * - `commitHandled` (the application asked for autocommit): a message is committed once it was
 *   handled — when the iterator is asked for the next one, or `process`'s handler returned — and
 *   a dead-lettered or skipped one once its write was acknowledged or it was reported; commits
 *   are coalesced, one request in flight.
 * - otherwise the application commits (`message.commit()`); a rejected message is covered by the
 *   next commit of a later message.
 * Under `fail` the stream throws at the rejected message, which is never committed.
 */
export function createVerifiedStream<P extends RejectionPolicy>(
  stream: MessagesStream<any, any, any, any>,
  runtime: StreamRuntime,
  raw: RawRecords,
  commitHandled: boolean,
): IdctxMessagesStream<P, any> {
  const { store, policy, records, dispositions } = runtime
  const committer = createCommitter()
  const verdicts = new WeakMap<object, VerifiedContext | undefined>()
  const source = stream[Symbol.asyncIterator]() as AsyncIterator<AnyMessage>
  let handed: AnyMessage | undefined
  // The messages read from the client and not handed out yet, the first being the one verified or
  // disposed of now. When that throws (a store, a tenant resolver, the dead-letter write, the
  // `fail` policy, a deserializer) it stays first: a stream used again resumes at it, never after
  // it, so nothing past it is delivered or committed. `results[i]` is `pending[i]`'s result, once
  // the batch it came in was verified.
  const pending: AnyMessage[] = []
  let results: (VerifyResult | undefined)[] = []
  // What ended the client's stream while messages were still pending: handed out after them.
  let ended: { readonly error: unknown } | 'done' | undefined
  // Set by close(): nothing more is handed out, whatever was read ahead (it is not committed, so
  // the group delivers it again).
  let closed = false
  // One reader at a time: a second concurrent `next()` would mark a message as handled while it
  // is still in the first reader's handler (and commit it).
  let reading = false
  let processing = false

  const rejectionOf = (message: AnyMessage, result: Extract<Awaited<ReturnType<StreamRuntime['records']['check']>>, { ok: false }>): KafkaRejection<AnyMessage> => ({
    topic: message.topic,
    partition: message.partition,
    message,
    result,
    coordinates: kafkaCoordinates(message.topic, message.partition, String(message.offset)),
    traceparent: headerString(message.headers, 'traceparent'),
  })
  const violationOf = (r: KafkaRejection<AnyMessage>): Violation => ({ reason: r.result.error.reason, error: r.result.error, tokenSha256: r.result.tokenSha256 })

  const next = (): Promise<IteratorResult<IdctxMessage<P, any>>> => {
    if (reading) return Promise.reject(new TypeError('the verified stream has one reader at a time: await each next() (one for-await loop or one process())'))
    reading = true
    return store.exit(read).finally(() => {
      reading = false
    })
  }

  /** The first pending message is done with: the next one comes first. */
  const next1 = (): void => {
    pending.shift()
    results.shift()
  }

  const read = async (): Promise<IteratorResult<IdctxMessage<P, any>>> => {
    try {
      return await readNext()
    } catch (e) {
      // Whatever threw, the pending messages are verified again when the stream is used again.
      results = []
      throw e
    }
  }

  const readNext = async (): Promise<IteratorResult<IdctxMessage<P, any>>> => {
    // The message handed out before was handled: for-await asks for the next one only then.
    if (handed !== undefined && commitHandled) committer.mark(handed)
    handed = undefined
    for (;;) {
      if (closed) {
        pending.length = 0
        results = []
        if (commitHandled) await committer.flush()
        return { done: true, value: undefined }
      }
      if (pending.length === 0) {
        if (ended !== undefined) {
          if (ended !== 'done') throw ended.error
          if (commitHandled) await committer.flush()
          return { done: true, value: undefined }
        }
        const r = await source.next()
        if (r.done === true) {
          if (commitHandled) await committer.flush()
          return { done: true, value: undefined }
        }
        pending.push(r.value)
        // The messages the client already holds come along: they are verified together, with one
        // replay-store round trip (a shared store answers in one call what would be one per message).
        while (pending.length < MAX_VERIFIED_AHEAD && stream.readableLength > 0) {
          try {
            const more = await source.next()
            if (more.done === true) {
              ended = 'done'
              break
            }
            pending.push(more.value)
          } catch (error) {
            ended = { error }
            break
          }
        }
        results = []
      }
      const message = pending[0] as AnyMessage
      if (raw.of(message.headers as object) === undefined) {
        throw new ConfigError('consume options', [
          { path: 'deserializers', message: 'idctx could not read the raw record: pass deserializers to consume(), not to the Consumer constructor (which overrides them), and no registry' },
        ])
      }
      if (results[0] === undefined) {
        // First use, or after a throw: (re)verified from the first pending message on. A message
        // verified before is seen again at the same coordinates: a redelivery, never a replay.
        results = await records.checkBatch(pending.map((m) => ({ topic: m.topic, partition: m.partition, message: m })))
      }
      const result = results[0] as VerifyResult
      const unreadable = raw.failure(message.headers as object)
      if (unreadable !== undefined && (result.ok || policy === 'audit')) {
        // The application's deserializer could not read a message it would be handed: stop
        // there, as the client does, without committing it (a rejected one follows its policy).
        throw new Error(`a deserializer failed on ${kafkaCoordinates(message.topic, message.partition, String(message.offset))}`, { cause: unreadable.error })
      }
      if (result.ok) {
        const out = { ...message, identity: result.context } as IdctxMessage<P, any>
        verdicts.set(out, result.context)
        handed = message
        next1()
        return { done: false, value: out }
      }
      const rejection = rejectionOf(message, result)
      switch (policy) {
        case 'dead-letter':
          await dispositions.deadLetter([rejection])
          next1()
          if (commitHandled) committer.mark(message)
          continue
        case 'skip':
          dispositions.report(rejection, 'skip')
          next1()
          if (commitHandled) committer.mark(message)
          continue
        case 'fail':
          dispositions.report(rejection, 'fail')
          throw new RecordRejectedError(result.error, rejection.coordinates, result.tokenSha256)
        case 'audit': {
          dispositions.report(rejection, 'audit')
          const out = { ...message, identity: undefined, violation: violationOf(rejection) } as IdctxMessage<P, any>
          verdicts.set(out, undefined)
          handed = message
          next1()
          return { done: false, value: out }
        }
      }
    }
  }

  const runInContext = <T>(message: IdctxMessage<P, any>, fn: () => T): T => {
    if (message === null || typeof message !== 'object' || !verdicts.has(message)) {
      throw new TypeError('runInContext needs a message this stream handed out (the object itself, not a copy)')
    }
    const identity = verdicts.get(message)
    return identity === undefined ? store.exit(fn) : store.run(identity, fn)
  }

  const iterator: AsyncIterableIterator<IdctxMessage<P, any>> = {
    next,
    async return() {
      // Leaving the loop early (break, throw): the message in hand is not taken as handled.
      handed = undefined
      if (commitHandled) await committer.flush().catch(() => undefined)
      await source.return?.()
      return { done: true, value: undefined }
    },
    [Symbol.asyncIterator]() {
      return iterator
    },
  }

  return {
    [Symbol.asyncIterator]: () => iterator,
    async process(handler) {
      if (processing) throw new TypeError('process() is already running on this stream: one reader at a time')
      processing = true
      try {
        for await (const message of iterator) await runInContext(message, () => handler(message))
      } finally {
        processing = false
      }
    },
    runInContext,
    async close() {
      closed = true
      // The message in hand may still be in its handler: it is committed by the loop's last
      // `next()` (await `process` after `close`), never here.
      if (commitHandled) await committer.flush()
      await stream.close()
    },
  }
}
