import { randomUUID } from 'node:crypto'
import { kafkaDestination, kafkaLeaf, type ExpectedTenant, type Requirements, type VerifyInput, type VerifyResult } from '@idctx/core'
import type { KafkaMessage } from 'kafkajs'
import { asBufferOrString, headerOccurrences, headerString, IdctxHeader, isHeaderValue, type RecordHeaders } from './headers.js'
import type { ConsumedRecord, WrapConsumerOptions } from './types.js'

/** Verifies one consumed record; throws only for infrastructure failures (stores, resolvers). */
export type RecordCheck = (topic: string, partition: number, message: KafkaMessage) => Promise<VerifyResult>

/**
 * Verifies the records of one fetched batch with one replay-store round trip
 * (`Verifier.verifyMany`); results in record order. Throws only for infrastructure failures.
 */
export type BatchCheck = (topic: string, partition: number, messages: readonly KafkaMessage[]) => Promise<VerifyResult[]>

const EMPTY = Buffer.alloc(0)

/**
 * One entry per occurrence of a carrier header, whatever its value, so that `[token, null]` is two
 * (`duplicate`), never one. An occurrence that is not bytes or text (a null value, or anything a
 * client or an interceptor put there) becomes an empty value: alone, an empty token is `missing`
 * and an empty proof fails the binding.
 */
function carrierValues(headers: RecordHeaders, name: string): (Buffer | string)[] {
  return headerOccurrences(headers, name).map((v) => (isHeaderValue(v) ? asBufferOrString(v) : EMPTY))
}

/** `topic/partition/offset`: a record's delivery coordinates. */
export function coordinatesOf(topic: string, partition: number, offset: string): string {
  return `${topic}/${partition}/${offset}`
}

/** Builds the per-record and per-batch verification of a consumer from its options. */
export function createRecordCheck(options: WrapConsumerOptions): { check: RecordCheck; checkBatch: BatchCheck } {
  const { verifier, tenant, payloadTenant } = options
  const redriveGrace = options.redriveGraceSeconds ?? 0
  const requirementsOf = requirementsLookup(options.requirements)
  // A tenant that no token can carry: a record whose payload tenant cannot be read fails at the
  // tenant step (after the signature and binding checks), never passes it.
  const unreadableTenant = `\u0000unreadable-payload-tenant:${randomUUID()}`
  const expected: (record: ConsumedRecord) => ExpectedTenant | Promise<ExpectedTenant> =
    typeof tenant === 'function' ? tenant : () => tenant

  const inputOf = (topic: string, partition: number, message: KafkaMessage): VerifyInput | Promise<VerifyInput> => {
    const headers = message.headers as RecordHeaders
    const proofs = carrierValues(headers, IdctxHeader.Proof)
    let payload: string | undefined
    const record: ConsumedRecord = { topic, partition, message }
    if (payloadTenant !== undefined) {
      try {
        payload = payloadTenant(record)
      } catch {
        payload = unreadableTenant
      }
    }
    const build = (expectedTenant: ExpectedTenant): VerifyInput => ({
        tokens: carrierValues(headers, IdctxHeader.Token),
        // Two proofs (whatever their values) cannot both be the record's: an empty proof never
        // decodes, so the binding fails.
        proof: proofs.length > 1 ? '' : proofs[0],
        // Every occurrence of idctx-ctx, like idctx: the verifier tells missing (with a batch
        // token), duplicate, oversize and a record beside a single-profile token apart.
        contextRecord: carrierValues(headers, IdctxHeader.Context),
        destination: kafkaDestination(topic),
        leaf: () => kafkaLeaf(topic, message.key, message.value),
        expectedTenant,
        payloadTenant: payload,
        coordinates: coordinatesOf(topic, partition, message.offset),
        requirements: requirementsOf(topic),
        traceparent: headerString(headers, 'traceparent'),
        ...(redriveGrace > 0 && headerOccurrences(headers, IdctxHeader.RedrivenFrom).length > 0 ? { expiryGraceSeconds: redriveGrace } : {}),
      })
    // Wait only for a tenant resolver that is asynchronous: an extra await per record is measurable.
    const tenantOfRecord = expected(record)
    return isThenable(tenantOfRecord) ? Promise.resolve(tenantOfRecord).then(build) : build(tenantOfRecord)
  }

  const check: RecordCheck = (topic, partition, message) => {
    const input = inputOf(topic, partition, message)
    return isThenable(input) ? Promise.resolve(input).then((i) => verifier.verify(i)) : verifier.verify(input)
  }
  const checkBatch: BatchCheck = async (topic, partition, messages) => {
    const inputs = await Promise.all(messages.map((m) => inputOf(topic, partition, m)))
    // A verifier of another make may lack verifyMany: the same checks, one message at a time.
    if (typeof verifier.verifyMany !== 'function') {
      const out: VerifyResult[] = []
      for (const input of inputs) out.push(await verifier.verify(input))
      return out
    }
    return verifier.verifyMany(inputs)
  }
  return { check, checkBatch }
}

function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function'
}

function requirementsLookup(
  r: WrapConsumerOptions['requirements'],
): (topic: string) => Requirements | undefined {
  if (r === undefined) return () => undefined
  if (typeof r === 'function') return r
  return (topic) => (Object.prototype.hasOwnProperty.call(r, topic) ? r[topic] : undefined)
}
