import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff, backoffDelay, sleep } from './backoff.js';

describe('backoffDelay: exponential with a cap and jitter', () => {
  it('doubles from the initial delay up to the cap, without jitter by default', () => {
    const o = { initial: 100, max: 5000 };
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, o))).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000,
    ]);
  });

  it('full jitter spreads over [0, base]', () => {
    const o = { initial: 1000, max: 8000, jitter: 'full' as const };
    expect(backoffDelay(2, { ...o, random: () => 0 })).toBe(0);
    expect(backoffDelay(2, { ...o, random: () => 0.25 })).toBe(1000);
    expect(backoffDelay(2, { ...o, random: () => 0.999 })).toBe(3996);
    expect(backoffDelay(9, { ...o, random: () => 0.5 })).toBe(4000);
  });

  it('equal jitter keeps half fixed: [base/2, base]', () => {
    const o = { initial: 1000, max: 60_000, jitter: 'equal' as const };
    expect(backoffDelay(0, { ...o, random: () => 0 })).toBe(500);
    expect(backoffDelay(0, { ...o, random: () => 0.5 })).toBe(750);
    expect(backoffDelay(3, { ...o, random: () => 0.999 })).toBe(7996);
    expect(backoffDelay(100, { ...o, random: () => 0 })).toBe(30_000);
  });

  it('survives huge, negative and fractional attempts and an uncapped series', () => {
    expect(backoffDelay(10_000, { initial: 5, max: 500 })).toBe(500);
    expect(backoffDelay(-3, { initial: 5, max: 500 })).toBe(5);
    expect(backoffDelay(1.7, { initial: 5, max: 500 })).toBe(10);
    expect(backoffDelay(3, { initial: 250, max: Number.POSITIVE_INFINITY })).toBe(2000);
    expect(backoffDelay(10_000, { initial: 0, max: 500 })).toBe(0);
  });
});

describe('Backoff: the counted series', () => {
  it('gives successive delays and starts again after reset', () => {
    const b = new Backoff({ initial: 1000, max: 30_000 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
    expect(b.attempt).toBe(7);
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.next()).toBe(1000);
  });
});

describe('sleep: an abortable wait that cleans up', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves after the delay and leaves no listener on the signal, however many times it is used', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    for (let i = 0; i < 200; i++) {
      let done = false;
      const p = sleep(1000, ac.signal).then(() => {
        done = true;
      });
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(999);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await p;
      expect(done).toBe(true);
    }
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('ends at once on abort (and at once when already aborted), clearing its timer', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    expect(vi.getTimerCount()).toBe(1);
    ac.abort();
    await p;
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    await sleep(60_000, ac.signal);
    expect(vi.getTimerCount()).toBe(0);
  });
});
