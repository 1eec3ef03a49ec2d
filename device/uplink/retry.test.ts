import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { retryWithBackoff } from './retry.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('retryWithBackoff', () => {
  it('asks again after each failure, waiting the doubling backoff, until it succeeds', async () => {
    const at: number[] = [];
    const t0 = Date.now();
    let fails = 3;
    const waits: number[] = [];
    const done = retryWithBackoff(
      async () => {
        at.push(Date.now() - t0);
        if (fails-- > 0) throw new Error('config.get got no answer');
      },
      { minMs: 1000, maxMs: 3000, random: () => 1, active: () => true, onFailure: (_e, _n, w) => waits.push(w) },
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(at).toEqual([0]);
    await vi.advanceTimersByTimeAsync(999);
    expect(at).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(at).toEqual([0, 1000]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(at).toEqual([0, 1000, 3000]);
    await vi.advanceTimersByTimeAsync(3000); // capped at maxMs
    expect(at).toEqual([0, 1000, 3000, 6000]);
    await expect(done).resolves.toBe(true);
    expect(waits).toEqual([1000, 2000, 3000]);
  });

  it('stops when no longer wanted (link offline) or aborted (box stopping), without waiting out the backoff', async () => {
    let active = true;
    let calls = 0;
    const fail = async () => {
      calls++;
      throw new Error('no answer');
    };
    const a = retryWithBackoff(fail, { minMs: 1000, maxMs: 60_000, random: () => 0.5, active: () => active });
    await vi.advanceTimersByTimeAsync(0);
    active = false;
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(a).resolves.toBe(false);
    expect(calls).toBe(1);

    const ac = new AbortController();
    calls = 0;
    const b = retryWithBackoff(fail, { minMs: 60_000, maxMs: 60_000, active: () => true, signal: ac.signal });
    await vi.advanceTimersByTimeAsync(0);
    ac.abort();
    await expect(b).resolves.toBe(false); // no timer advanced: the abort ended the wait
    expect(calls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
