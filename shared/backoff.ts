/**
 * The one backoff formula of both programs: the delay before retry `attempt`
 * (0-based) is `initial * 2^attempt`, capped at `max`, then jittered:
 *
 *   none   the capped value itself (a lone process retrying its own resource)
 *   full   uniform in [0, base]           (AWS "full jitter")
 *   equal  base/2 + uniform in [0, base/2] (half fixed, half random: never a storm, never instant)
 *
 * Every caller keeps its own bounds (initial, cap); the random source is
 * injectable so tests pass fixed values. `Backoff` is the same formula with
 * the attempt counter kept (next() / reset()), for loops that retry until a
 * success resets them. `sleep` waits with an abort signal and removes its
 * listener when it ends, so a long-running retry loop does not pile
 * listeners on a long-lived signal.
 */

export type Jitter = 'none' | 'full' | 'equal';

export interface BackoffOptions {
  /** Delay of attempt 0 (ms, or seconds: the formula does not care about the unit). */
  initial: number;
  /** Cap; Infinity for none. */
  max: number;
  /** Default 'none'. */
  jitter?: Jitter;
  /** Random source in [0, 1) (default Math.random). */
  random?: () => number;
}

/** Beyond this exponent the doubling only overflows; any cap is reached long before. */
const MAX_EXPONENT = 52;

/** The delay before retry `attempt` (0-based; negative counts as 0). */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const n = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  const base = Math.min(o.max, o.initial * 2 ** n);
  const jitter = o.jitter ?? 'none';
  if (jitter === 'none') return base;
  const r = (o.random ?? Math.random)();
  return jitter === 'full' ? Math.round(r * base) : Math.round(base / 2 + r * (base / 2));
}

/** backoffDelay with the attempt counted: next() gives the delay and moves on, reset() starts again. */
export class Backoff {
  private n = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** Attempts made since the last reset. */
  get attempt(): number {
    return this.n;
  }

  next(): number {
    return backoffDelay(this.n++, this.opts);
  }

  reset(): void {
    this.n = 0;
  }
}

/** Wait `ms`, or less if `signal` aborts (resolves either way); the abort listener is removed when it ends. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
