/**
 * The one way tests (and scripts) wait for something: poll a condition until it holds.
 *
 * A test never sleeps for a fixed time hoping the code is done by then (on a
 * loaded machine it is not, and on an idle one the sleep is wasted): it waits
 * for the state it is about to assert, with a generous timeout, and the
 * timeout's error names what was awaited. Time-driven logic (timeouts,
 * backoffs, schedules) uses fake timers or an injected clock instead.
 */

// Real time, taken at import: a test that installs fake timers still waits in real time here.
const realSetTimeout = globalThis.setTimeout;
const realNow = Date.now.bind(Date);

export interface WaitOptions {
  /** Give up after this long (default 10 s: generous, a loaded machine is slow). */
  timeoutMs?: number;
  /** Poll this often (default 10 ms). */
  intervalMs?: number;
}

/**
 * Resolves with the condition's first truthy value (so it can hand back what
 * it found); rejects after the timeout with "timed out after N ms waiting for
 * <what>" (what: the condition's source when not given). The condition may be
 * async; an exception from it fails at once.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  what: string = condition.toString(),
  options: number | WaitOptions = {},
): Promise<NonNullable<Exclude<T, false | 0 | ''>>> {
  const { timeoutMs = 10_000, intervalMs = 10 } = typeof options === 'number' ? { timeoutMs: options } : options;
  const end = realNow() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<Exclude<T, false | 0 | ''>>;
    if (realNow() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => realSetTimeout(r, intervalMs));
  }
}
