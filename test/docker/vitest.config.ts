import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// The docker test alone (`npm run test:docker` → scripts/docker.mjs test): its file is not a
// `*.test.ts`, so the main suite (vitest.config.ts) never picks it up. Same source conditions.
const conditions = ['@idctx/source', 'node', 'import', 'default']

export default defineConfig({
  root: resolve(dirname(fileURLToPath(import.meta.url)), '../..'),
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@idctx/source'] } },
  test: {
    name: 'docker',
    include: ['test/docker/**/*.docker.ts'],
    testTimeout: 180_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
})
