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

/**
 * A clock that starts at `startAt` and runs `scale` times faster than real
 * time (timers shortened to match). For end-to-end scenarios and the demo:
 * a 20 s ring timeout takes 1 s at scale 20 while the modem emulator and
 * the driver run on real time.
 */
export function scaledClock(startAt: number, scale: number): Clock {
  if (!(scale > 0)) throw new RangeError(`scaledClock: scale must be > 0, got ${scale}`);
  const realStart = Date.now();
  return {
    now: () => startAt + Math.round((Date.now() - realStart) * scale),
    setTimeout: (fn, ms) => setTimeout(fn, ms / scale),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  };
}
