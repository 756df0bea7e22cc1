/**
 * One verifier instance with the Redis deny-list, as its own OS process.
 * - `revoker`: on `{ type: 'revoke', kind, values, gapMs }` revokes each value in turn and reports
 *   the moment each `revoke()` resolved (`process.hrtime`, CLOCK_MONOTONIC: one clock for every
 *   process of the machine).
 * - `watcher`: watches `values` and reports the moment `isRevoked` first turns true for each: checked
 *   right after every change the store receives (a listener behind the store's own, on the
 *   subscriber connection) and every 5 ms besides.
 * Both answer `{ type: 'verify', token, topic, key, value }` with the verifier's verdict.
 */
import { createVerifier, importJwk, kafkaDestination, kafkaLeaf, type PublicJwk } from '@idctx/core'
import { createRedisRevocationStore } from '@idctx/redis'
import { Redis } from 'ioredis'
import { config, fail, onParentMessage, onStop, report } from './ipc.js'

export interface RevocationInstanceConfig {
  readonly role: 'revoker' | 'watcher'
  readonly url: string
  readonly prefix: string
  readonly issuer: string
  readonly audience: string
  readonly jwk: PublicJwk
  /** Watcher: the jti values to watch. */
  readonly values?: readonly string[]
}

export type RevocationInstanceMessage =
  | { type: 'ready' }
  | { type: 'revoked'; value: string; at: string }
  | { type: 'seen'; value: string; at: string }
  | { type: 'verified'; id: number; ok: boolean; reason: string | undefined; error: string | undefined }
  | { type: 'fatal'; message: string }

async function main(): Promise<void> {
  const c = config<RevocationInstanceConfig>()
  const client = new Redis(c.url, { maxRetriesPerRequest: 1 })
  const subscriber = new Redis(c.url)
  const store = createRedisRevocationStore({ client, subscriber, prefix: c.prefix })
  await store.ready()
  const verifier = createVerifier({ audience: c.audience, issuers: { [c.issuer]: [importJwk(c.jwk)] }, revocation: store })
  onStop(async () => {
    await store.close()
    client.disconnect()
    subscriber.disconnect()
  })

  if (c.role === 'watcher') {
    const pending = new Set(c.values ?? [])
    const look = () => {
      if (pending.size === 0) return
      const at = process.hrtime.bigint()
      for (const value of pending) {
        if (store.isRevoked({ kid: '-', jti: value, txn: '-', sub: '-', tid: '-' })) {
          pending.delete(value)
          void report({ type: 'seen', value, at: String(at) })
        }
      }
    }
    // Registered after the store's own listener: runs once the store has applied the change.
    subscriber.on('message', look)
    setInterval(look, 5).unref()
  }

  onParentMessage((m) => {
    if (m.type === 'revoke') {
      void (async () => {
        for (const value of m.values as string[]) {
          await store.revoke(m.kind as 'jti', value, Date.now() + 120_000)
          const at = process.hrtime.bigint()
          await report({ type: 'revoked', value, at: String(at) })
          await new Promise((r) => setTimeout(r, m.gapMs as number))
        }
      })().catch(fail)
    } else if (m.type === 'verify') {
      const { token, topic, key, value, id } = m as unknown as { token: string; topic: string; key: string; value: string; id: number }
      verifier
        .verify({ tokens: [token], destination: kafkaDestination(topic), leaf: kafkaLeaf(topic, key, value), expectedTenant: 'acme' })
        .then(
          (r) => report({ type: 'verified', id, ok: r.ok, reason: r.ok ? undefined : r.error.reason, error: undefined }),
          (e: unknown) => report({ type: 'verified', id, ok: false, reason: undefined, error: String(e) }),
        )
        .catch(fail)
    } else if (m.type === 'unrevoke') {
      void store.unrevoke(m.kind as 'txn', m.value as string).catch(fail)
    }
  })
  await report({ type: 'ready' })
}

main().catch(fail)
