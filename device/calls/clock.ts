/**
 * Time as device/calls sees it. Injected so that tests drive ring timeouts
 * with vi.useFakeTimers(); the default reads the globals at call time, so
 * fake timers installed after import are honoured too.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};
