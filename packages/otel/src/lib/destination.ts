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
    return { [MessagingAttributes.System]: 'kafka', [MessagingAttributes.DestinationName]: decoded(destination.slice(6)) }
  }
  if (destination.startsWith('bullmq:')) {
    // Components are percent-encoded, so the first `/` always ends the queue name.
    const rest = destination.slice(7)
    const slash = rest.indexOf('/')
    return {
      [MessagingAttributes.System]: 'bullmq',
      [MessagingAttributes.DestinationName]: decoded(slash === -1 ? rest : rest.slice(0, slash)),
    }
  }
  return {}
}

/**
 * A percent-encoded destination component as its name, for the semantic-convention attribute;
 * control characters stay encoded so an attacker-chosen name cannot inject them into a backend.
 */
function decoded(component: string): string {
  if (!component.includes('%')) return component
  try {
    return decodeURIComponent(component).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => encodeURIComponent(c))
  } catch {
    return component
  }
}
