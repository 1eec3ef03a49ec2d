import { describe, expect, it } from 'vitest';
import { SingleFlight } from './single-flight.js';

/** A pass that waits until released, counting how often it ran. */
function gatedPass() {
  const gates: (() => void)[] = [];
  let passes = 0;
  const pass = () =>
    new Promise<void>((resolve) => {
      passes++;
      gates.push(resolve);
    });
  return { pass, passes: () => passes, release: () => gates.shift()?.() };
}

describe('SingleFlight', () => {
  it('runs one pass at a time and coalesces calls meanwhile into one more pass', async () => {
    const g = gatedPass();
    const errors: unknown[] = [];
    const f = new SingleFlight(g.pass, { active: () => true, onError: (e) => errors.push(e) });
    const first = f.run();
    expect(f.running).toBe(first);
    expect(f.run()).toBe(first);
    expect(f.run()).toBe(first);
    await expect.poll(() => g.passes()).toBe(1);
    g.release();
    await expect.poll(() => g.passes()).toBe(2); // the two calls meanwhile: one more pass
    g.release();
    await first;
    expect(g.passes()).toBe(2);
    expect(f.running).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('reports a failed pass, never rejects, runs `after` with the flight clear, and starts again on the next call', async () => {
    let n = 0;
    const seen: string[] = [];
    const f = new SingleFlight(
      async () => {
        n++;
        if (n === 1) throw new Error('boom');
      },
      {
        active: () => true,
        onError: (e) => seen.push((e as Error).message),
        after: async () => {
          seen.push(`after, running: ${f.running !== undefined}`);
        },
      },
    );
    await expect(f.run()).resolves.toBeUndefined();
    expect(seen).toEqual(['boom', 'after, running: false']);
    await f.run();
    expect(n).toBe(2);
  });

  it('starts nothing and repeats nothing once inactive', async () => {
    let active = true;
    const g = gatedPass();
    const f = new SingleFlight(g.pass, { active: () => active, onError: () => undefined });
    const run = f.run();
    void f.run(); // asks for another pass
    active = false;
    await expect.poll(() => g.passes()).toBe(1);
    g.release();
    await run;
    expect(g.passes()).toBe(1);
    await f.run();
    expect(g.passes()).toBe(1);
  });
});
