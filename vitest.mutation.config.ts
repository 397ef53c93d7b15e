import { defineConfig } from 'vitest/config';

/**
 * The tests a mutation run (`npm run test:mutation`, stryker.config.mjs) executes against each
 * mutant: the unit tests beside the mutated modules (keys, usage, limits, memory redaction). No
 * globalSetup: nothing here builds dist/ or needs Postgres or Redis, so one mutant costs
 * milliseconds. `npm test` does not read this file.
 */
export default defineConfig({
  test: {
    include: ['src/keys/**/*.test.ts', 'src/usage/**/*.test.ts', 'src/limits/**/*.test.ts', 'src/memory/redact.test.ts'],
    provide: { postgresUrl: '', redisUrl: '' },
    testTimeout: 10_000,
    maxWorkers: 1,
  },
});
