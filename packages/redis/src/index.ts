export { createRedisReplayStore } from './replay-store.js'
export type { RedisReplayStore, RedisReplayStoreOptions } from './replay-store.js'
export { createRedisRevocationStore } from './revocation-store.js'
export type { RedisRevocationStore, RedisRevocationStoreOptions } from './revocation-store.js'
