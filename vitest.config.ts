import { defineConfig } from 'vitest/config'

// `@idctx/source` makes workspace packages resolve to their TypeScript sources, so tests never
// run against a stale build.
const conditions = ['@idctx/source', 'node', 'import', 'default']
// vitest hands the SSR conditions to Node as --conditions for external modules: 'import' there
// would make require() of a dual package (is-promise under express 5's router) load its ESM build.
// Vite adds 'import' or 'require' by itself, per importer.
const ssrConditions = ['@idctx/source', 'node']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions: ssrConditions, externalConditions: ['@idctx/source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // One broker and one Redis are shared: files run one at a time, tests inside stay serial.
          fileParallelism: false,
        },
      },
    ],
  },
})
