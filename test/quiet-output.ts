/**
 * Vitest setup file: a passing test prints nothing.
 *
 * Tests exercise failures on purpose (a modem that times out, a database
 * that is closed, a panic SMS that is refused), so the code under test logs
 * warnings and errors by design. Printed as they come, hundreds of such lines
 * hide the few that matter. Here everything a test file's process writes —
 * the project's logger (pino), console.*, process.stdout/stderr.write — goes
 * to an in-memory buffer instead; when a test fails, the lines written while
 * it ran (and since the previous test ended: beforeAll/beforeEach hooks) are
 * printed to stderr under the test's name, and dropped otherwise.
 *
 * A test that reads logs still calls setupLogging({ destination }) itself;
 * CALLBOX_TEST_OUTPUT=live turns the capture off (everything printed as it
 * comes, as before).
 */
import { format } from 'node:util';
import { afterAll, beforeEach } from 'vitest';
import { setupLogging } from '../shared/log.js';

const live = process.env.CALLBOX_TEST_OUTPUT === 'live';

/** The real writer, kept before it is replaced. */
const stderrWrite = process.stderr.write.bind(process.stderr);

/** Everything written since the last test ended; at most MAX_CHUNKS (oldest dropped). */
const MAX_CHUNKS = 20_000;
let buffer: string[] = [];
let dropped = 0;

function capture(chunk: unknown): void {
  buffer.push(typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
  if (buffer.length > MAX_CHUNKS) {
    buffer.shift();
    dropped++;
  }
}

function flush(title: string): void {
  if (buffer.length === 0) return;
  const text = buffer.join('');
  const head = dropped > 0 ? `(${dropped} earlier chunks dropped)\n` : '';
  stderrWrite(
    `\n----- output of ${title} -----\n${head}${text}${text.endsWith('\n') ? '' : '\n'}----- end of output -----\n`,
  );
  clear();
}

function clear(): void {
  buffer = [];
  dropped = 0;
}

if (!live) {
  // The project's logger: to the buffer (pino would otherwise write to fd 1 directly).
  setupLogging({ format: 'json', destination: { write: (line: string) => capture(line) } });

  // Direct writes, from the code under test or the test itself.
  const writer = (chunk: unknown, encoding?: unknown, cb?: unknown): boolean => {
    capture(chunk);
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  };
  process.stdout.write = writer as typeof process.stdout.write;
  process.stderr.write = writer as typeof process.stderr.write;

  // console.* (vitest would print each call with a header of its own).
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    console[method] = (...args: unknown[]) => capture(`${format(...args)}\n`);
  }

  beforeEach((ctx) => {
    const title = `"${ctx.task.fullName ?? ctx.task.name}"`;
    ctx.onTestFinished(({ task }) => {
      if (task.result?.state === 'fail') flush(title);
      else clear();
    });
  });

  // What was written after the last test (afterAll hooks) or by a failed
  // beforeAll: printed when something in this file failed.
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads the first parameter as fixtures and wants a pattern
  afterAll(({}, suite) => {
    const file = suite.file ?? suite;
    const failed = (t: { result?: { state?: string; errors?: unknown[] }; tasks?: unknown[] }): boolean =>
      t.result?.state === 'fail' ||
      (t.result?.errors?.length ?? 0) > 0 ||
      (t.tasks ?? []).some((c) => failed(c as Parameters<typeof failed>[0]));
    if (failed(file as Parameters<typeof failed>[0])) flush(`${file.name} (outside its tests)`);
    else clear();
  });
}
