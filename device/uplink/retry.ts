/**
 * Keep trying an uplink step until it succeeds, with the link's jittered
 * doubling backoff between failures (backoffDelay), for as long as it is
 * still wanted (`active()`: the same online session, the box not stopping).
 * Used for config.get after a connect: a request lost with a restarting
 * fleet must be asked again, not left to a retained message that may never
 * come (the box would run an old version without anyone noticing).
 */
import { sleep } from '../../shared/backoff.js';
import { backoffDelay } from './link.js';

export interface RetryOptions {
  /** First wait after a failure (ms); doubles per failure up to maxMs, with equal jitter. */
  minMs: number;
  maxMs: number;
  random?: () => number;
  /** Still worth trying? Checked before every attempt and after every wait. */
  active: () => boolean;
  /** Aborting ends a wait at once. */
  signal?: AbortSignal;
  /** A failure, and the wait before the next attempt. */
  onFailure?: (err: unknown, attempt: number, waitMs: number) => void;
}

/** Run `fn` until it resolves (true) or is no longer wanted (false). Never rejects. */
export async function retryWithBackoff(fn: () => Promise<unknown>, o: RetryOptions): Promise<boolean> {
  for (let attempt = 0; o.active() && !o.signal?.aborted; attempt++) {
    try {
      await fn();
      return true;
    } catch (e) {
      if (!o.active() || o.signal?.aborted) return false;
      const waitMs = backoffDelay(attempt, o.minMs, o.maxMs, o.random);
      o.onFailure?.(e, attempt, waitMs);
      await sleep(waitMs, o.signal);
    }
  }
  return false;
}
