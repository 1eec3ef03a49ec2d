/**
 * The figures' reader of stored events: the `figures` cursor in
 * event_cursors (a durable position, like a Kafka consumer group's offset)
 * leased by one fleet instance at a time. Each batch of events after the
 * cursor is applied to the rollups and the cursor moved past it in ONE
 * transaction (FiguresStore.applyBatch), so a crash, a restart or a second
 * instance never counts an event twice or skips one; a call's events are
 * further applied once per call and type (rollup.ts).
 *
 * Runs at once when this instance stores events (bus 'event.stored'),
 * every figures.pollMs otherwise (events another instance stored), and
 * again after a failure (1 s doubling to 30 s).
 */
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Store } from '../store/types.js';
import type { RollupDeps } from './rollup.js';
import type { FiguresStore } from './store.js';
import { FIGURES_CURSOR } from './store.js';

export interface ReaderOptions {
  owner: string;
  batch: number;
  leaseS: number;
  log: Logger;
  now?: () => number;
}

export class FiguresReader {
  private current: Promise<void> | undefined;
  private again = false;
  private active = true;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = 1000;
  /** Passes and rebuilds one at a time (a promise chain). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Events and calls applied since start. */
  readonly counters = { events: 0, calls: 0, batches: 0, failures: 0 };

  constructor(
    private readonly store: Store,
    private readonly figures: FiguresStore,
    private readonly deps: RollupDeps,
    private readonly opts: ReaderOptions,
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private lease(): { now: string; until: string } {
    const t = this.now();
    return { now: new Date(t).toISOString(), until: new Date(t + this.opts.leaseS * 1000).toISOString() };
  }

  /** Apply what was stored after the cursor; coalesces with a pass running. Never rejects. */
  kick(): Promise<void> {
    if (!this.active) return Promise.resolve();
    if (this.current) {
      this.again = true;
      return this.current;
    }
    this.current = (async () => {
      try {
        do {
          this.again = false;
          await this.exclusive(() => this.catchUp());
        } while (this.again && this.active);
        this.retryMs = 1000;
      } catch (err) {
        this.counters.failures++;
        this.opts.log.error({ err, retryMs: this.retryMs }, 'applying stored events to the figures failed; retrying');
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.kick(), this.retryMs);
        this.retryTimer.unref?.();
        this.retryMs = Math.min(this.retryMs * 2, 30_000);
      } finally {
        this.current = undefined;
      }
    })();
    return this.current;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Until nothing is left after the cursor (or another instance holds it). */
  private async catchUp(progress?: (events: number, calls: number) => void): Promise<void> {
    let events = 0;
    let calls = 0;
    while (this.active) {
      const { now, until } = this.lease();
      const cursor = await this.store.claimCursor(FIGURES_CURSOR, this.opts.owner, now, until);
      if (!cursor) return; // another fleet instance keeps the figures
      const batch = await this.store.readEventsAfter(cursor.pos, this.opts.batch);
      if (batch.length === 0) return;
      const lease = this.lease();
      const r = await this.figures.applyBatch(batch, { owner: this.opts.owner, from: cursor.pos, ...lease }, this.deps);
      if (!r.moved) {
        this.opts.log.warn(
          { pos: cursor.pos },
          'the figures cursor was taken by another instance; it counts from here',
        );
        return;
      }
      this.counters.events += batch.length;
      this.counters.calls += r.calls;
      this.counters.batches++;
      events += batch.length;
      calls += r.calls;
      progress?.(events, calls);
    }
  }

  /**
   * Recompute every rollup from the stored events, after the pass running (passes wait meanwhile): reset the
   * rollups and the cursor to the first event in one transaction, and read everything again, logging the
   * progress every 10 000 events.
   */
  async rebuild(): Promise<{ events: number; calls: number; ms: number }> {
    return this.exclusive(async () => {
      const t0 = Date.now();
      const { now, until } = this.lease();
      if (!(await this.store.claimCursor(FIGURES_CURSOR, this.opts.owner, now, until))) {
        throw new CallboxError(ErrorCode.Conflict, 'another fleet instance holds the figures cursor: rebuild there');
      }
      await this.figures.resetForRebuild(this.opts.owner, now, until);
      const head = await this.store.eventsHead();
      this.opts.log.info({ head }, 'figures rebuild: rollups cleared; reading every stored event again');
      let logged = 0;
      let total = { events: 0, calls: 0 };
      await this.catchUp((events, calls) => {
        total = { events, calls };
        if (events - logged >= 10_000) {
          logged = events;
          this.opts.log.info({ events, calls, head }, 'figures rebuild: progress');
        }
      });
      const ms = Date.now() - t0;
      this.opts.log.info({ ...total, ms }, 'figures rebuild: done');
      return { ...total, ms };
    });
  }

  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.retryTimer);
    await this.current;
    await this.store.releaseCursor(FIGURES_CURSOR, this.opts.owner).catch(() => undefined);
  }
}
