/**
 * The consumer-group replay suite (group-scenario.ts) on a local 3-node Redis Cluster that this
 * file starts (three `redis-server --cluster-enabled yes` on loopback, joined by `redis-cli
 * --cluster create`) and stops, whatever the outcome. Replay keys carry a `{jti}` hash tag, so a
 * fetched batch spreads over the nodes and the store answers it with one round trip per node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cluster } from 'ioredis'
import { randomUUID } from 'node:crypto'
import { createRedisReplayStore, createRedisRevocationStore } from '@idctx/redis'
import { groupReplayScenario } from './group-scenario.js'
import { redisServerMissing, startLocalCluster, type LocalCluster } from './servers.js'

const missing = redisServerMissing()
if (missing !== undefined) console.log(`[redis cluster] skipped: ${missing}`)

describe.skipIf(missing !== undefined)('Redis replay store on a local 3-node Redis Cluster', () => {
  let cluster: LocalCluster | undefined
  beforeAll(async () => {
    cluster = await startLocalCluster(3)
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it('a batch spread over the three nodes: first, redelivery and replay in order', async () => {
    const client = new Cluster([...(cluster as LocalCluster).nodes], { redisOptions: { maxRetriesPerRequest: 1 } })
    try {
      const prefix = `test:${randomUUID()}:`
      const store = createRedisReplayStore({ client, prefix })
      const jtis = Array.from({ length: 30 }, () => randomUUID())
      const at = (jti: string, coordinates: string) => ({ jti, index: 0, coordinates, expiresAt: Date.now() + 60_000 })
      expect(await store.checkMany(jtis.map((j) => at(j, `t/0/${j}`)))).toEqual(jtis.map(() => 'first'))
      expect(await store.checkMany(jtis.flatMap((j) => [at(j, `t/0/${j}`), at(j, `t/1/${j}`)]))).toEqual(jtis.flatMap(() => ['redelivery', 'replay']))
      // The keys did land on every node.
      const perNode = await Promise.all(client.nodes('master').map(async (n) => (await n.keys(`${prefix}*`)).length))
      expect(perNode.every((k) => k > 0)).toBe(true)
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(jtis.length)
    } finally {
      client.disconnect()
    }
  })

  it('the deny-list on the cluster: a revocation on one instance reaches another', async () => {
    const nodes = [...(cluster as LocalCluster).nodes]
    const a = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
    const b = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
    const prefix = `test:${randomUUID()}`
    const ra = createRedisRevocationStore({ client: a, prefix })
    const rb = createRedisRevocationStore({ client: b, prefix })
    try {
      await Promise.all([ra.ready(), rb.ready()])
      const ids = { kid: 'k', jti: 'j', txn: 't', sub: 's', tid: 'acme' }
      expect(rb.isRevoked(ids)).toBe(false)
      await ra.revoke('txn', 't')
      const started = Date.now()
      while (!rb.isRevoked(ids)) {
        if (Date.now() - started > 5_000) throw new Error('the revocation did not reach the other instance')
        await new Promise((r) => setTimeout(r, 5))
      }
      // A third instance loads it from the cluster.
      const c = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
      const rc = createRedisRevocationStore({ client: c, prefix })
      await rc.ready()
      expect(rc.isRevoked(ids)).toBe(true)
      await rc.close()
      c.disconnect()
    } finally {
      await ra.close()
      await rb.close()
      a.disconnect()
      b.disconnect()
    }
  })

  it('3 consumer processes: replays to another instance’s partition 200/200 dead-lettered; join + SIGKILL churn: 0 false replayed, 0 lost', async () => {
    const r = await groupReplayScenario({ cluster: (cluster as LocalCluster).nodes }, 'a')
    console.log(
      `[redis cluster group] replays dead-lettered ${r.replaysDetected}/200 (by instance: ${JSON.stringify(r.rejectedBy)}); ` +
        `${r.genuine} genuine records all handled; ${r.redeliveredToAnother} handled again by another instance (moved by the join or the SIGKILL), 0 false replayed`,
    )
    expect(r.replaysDetected).toBe(200)
  })
})
