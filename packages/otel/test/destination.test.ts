import { describe, expect, it } from 'vitest'
import { bullmqDestination, kafkaDestination } from '@idctx/core'
import { messagingAttributes } from '../src/lib/destination.js'

describe('messagingAttributes of percent-encoded destinations', () => {
  it('names the queue, decoded, even when the job name holds a slash', () => {
    expect(messagingAttributes(bullmqDestination('billing', 'refund/x'))).toEqual({
      'messaging.system': 'bullmq',
      'messaging.destination.name': 'billing',
    })
    expect(messagingAttributes(bullmqDestination('billing/refund', 'x'))['messaging.destination.name']).toBe('billing/refund')
    expect(messagingAttributes(kafkaDestination('orders'))['messaging.destination.name']).toBe('orders')
  })

  it('keeps control characters encoded and leaves a malformed escape as it is', () => {
    expect(messagingAttributes(bullmqDestination('a\nb\u001b[31m', 'x'))['messaging.destination.name']).toBe('a%0Ab%1B[31m')
    expect(messagingAttributes('bullmq:50%ZZ/x')['messaging.destination.name']).toBe('50%ZZ')
  })
})
