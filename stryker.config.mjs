// Mutation testing (`npm run test:mutation`): StrykerJS changes the modules below one small edit at a
// time and runs the tests of vitest.mutation.config.ts against each change; a change no test notices
// ("survived") is a promise nothing guards. Scores are recorded in the README's testing section.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'src/keys/**/*.ts',
    'src/usage/**/*.ts',
    'src/limits/**/*.ts',
    'src/memory/redact.ts',
    '!src/**/*.test.ts',
    // SQL and Redis (Lua) modules: only the HTTP suite (a gateway on PGlite/Postgres/Redis per test
    // file) exercises them, seconds per mutant instead of milliseconds; left out so a run fits in minutes.
    '!src/keys/key-store.ts',
    '!src/usage/ledger-store.ts',
    '!src/usage/reports.ts',
    '!src/usage/ledger.ts',
    '!src/limits/redis-limiter.ts',
    '!src/limits/redis-scripts.ts',
  ],
  coverageAnalysis: 'perTest',
  // The machine has two cores, shared.
  concurrency: 2,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['dist', '.data', 'reports', 'bench', 'deploy', 'coverage', 'test/artifacts', 'scratch'],
  cleanTempDir: 'always',
  thresholds: { high: 85, low: 70, break: null },
};
