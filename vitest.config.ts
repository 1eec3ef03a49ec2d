import { defineConfig } from 'vitest/config';

// Convention: unit tests sit next to the code they test (`foo.ts` ->
// `foo.test.ts`); tests that cross folders (device <-> fleet, end to end)
// live in test/. Both are picked up here.
export default defineConfig({
  test: {
    include: ['device/**/*.test.ts', 'fleet/**/*.test.ts', 'shared/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    // A skipped test must print why; .ci/run fails the run if any test was skipped.
    allowOnly: false,
  },
});
