import { defineConfig } from 'vitest/config';

// Convention: unit tests sit next to the code they test (`foo.ts` ->
// `foo.test.ts`); tests that cross folders (device <-> fleet, end to end)
// live in test/. Both are picked up here.
const TESTS = ['device/**/*.test.ts', 'fleet/**/*.test.ts', 'shared/**/*.test.ts', 'test/**/*.test.ts'];
// Tests whose figures are times the machine itself sets (how long the engine takes to elect a new leader after a
// node is killed, then let the boxes back in): run after the others, alone, so another test file's load on the
// same two cores does not stretch them.
const ALONE = ['test/cluster-failover.test.ts'];

export default defineConfig({
  test: {
    projects: [
      { extends: true, test: { name: 'suite', include: TESTS, exclude: ['**/node_modules/**', ...ALONE] } },
      { extends: true, test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
    // Limits for a test that hangs, not speed targets (benchmarks print those): every wait inside a test waits on a
    // condition, and a machine at load 20 on 2 cores (three suites and a build at once) takes 3x longer.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits on a condition too: vitest's default of 1 s fails on a loaded machine.
    expect: { poll: { timeout: 20_000, interval: 50 } },
    pool: 'forks',
    // A passing test prints nothing: its logs and console are printed only when it fails.
    setupFiles: ['./test/quiet-output.ts'],
    // The dashboard is built (when stale) once before the tests: the browser tests load it from the fleet.
    globalSetup: ['./test/web/build-ui.ts'],
    // 'dot': one character per test, failures in full (`--reporter=default` lists every file).
    reporters: ['dot', './test/security/table-reporter.ts', './test/summary-reporter.ts'],
    // A skipped test must print why; .ci/run fails the run if any test was skipped.
    allowOnly: false,
    // Tests exercise failures on purpose: keep their info lines out of the run's output
    // (a test that reads logs sets its own level; CALLBOX_LOG_LEVEL=info shows everything).
    env: { CALLBOX_LOG_LEVEL: process.env.CALLBOX_LOG_LEVEL ?? 'warn' },
  },
});
