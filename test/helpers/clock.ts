/**
 * A clock the test moves by hand, for code that takes an injected Clock
 * (device/calls/clock.ts). Its time stands still until advance(): a boundary
 * such as "rang at most 5 s: abandoned" then depends on the steps the test
 * takes, not on how fast a loaded machine delivers the events in between.
 */
import type { Clock } from '../../device/calls/clock.js';

export class SteppedClock implements Clock {
  private at: number;
  private nextId = 1;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();

  constructor(startAt: number) {
    this.at = startAt;
  }

  now(): number {
    return this.at;
  }

  /** A timer due now (0 ms: "at once" in the code) runs on the next turn, as on a real clock; later ones on advance(). */
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { due: this.at + Math.max(0, ms), fn });
    if (ms <= 0)
      setTimeout(() => {
        if (this.timers.delete(id)) fn();
      }, 0);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Move time forward by ms, running the timers that fall due on the way, in order. */
  advance(ms: number): void {
    const target = this.at + ms;
    for (;;) {
      let first: [number, { due: number; fn: () => void }] | undefined;
      for (const entry of this.timers)
        if (entry[1].due <= target && (!first || entry[1].due < first[1].due)) first = entry;
      if (!first) break;
      this.timers.delete(first[0]);
      this.at = first[1].due;
      first[1].fn();
    }
    this.at = target;
  }
}
