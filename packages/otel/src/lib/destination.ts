import type { Attributes } from '@opentelemetry/api'
import { MessagingAttributes } from '../attributes.js'

/**
 * Messaging semantic-convention attributes of an idctx destination string (`kafka:<topic>`,
 * `bullmq:<queue>/<jobName>`); empty for anything else.
 *
 * @example
 * ```ts
 * messagingAttributes('kafka:orders') // { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders' }
 * ```
 */
export function messagingAttributes(destination: string): Attributes {
  if (destination.startsWith('kafka:')) {
    return { [MessagingAttributes.System]: 'kafka', [MessagingAttributes.DestinationName]: destination.slice(6) }
  }
  if (destination.startsWith('bullmq:')) {
    const rest = destination.slice(7)
    const slash = rest.indexOf('/')
    return {
      [MessagingAttributes.System]: 'bullmq',
      [MessagingAttributes.DestinationName]: slash === -1 ? rest : rest.slice(0, slash),
    }
  }
  return {}
}
