/**
 * The alert engine's reader of stored events, exactly once: the cursor
 * (`alerts` in event_cursors) is like a Kafka consumer group's offset. The
 * reader takes the cursor's lease, reads the events after it, applies them
 * (in order per box, boxes side by side) and moves the cursor past them
 * (compare and set). A crash between applying and moving reads them again;
 * what applying does is idempotent per event (see engine.ts). One fleet
 * instance holds the cursor at a time; another takes it when the holder's
 * lease runs out. An event that fails EVENT_ATTEMPTS times is logged and
 * passed over, so one bad event cannot stop alerting.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AnyEvent } from '../../shared/contract/events.js';
import type { Logger } from '../../shared/log.js';
import type { PositionedEvent, Store } from '../store/types.js';
import type { Clock } from './clinics.js';
import type { AlertsConfig } from './config.js';
import { isoOf } from './lifecycle.js';
import { SingleFlight } from './single-flight.js';
import type { AlertStore } from './types.js';

/** The alert engine's cursor over stored events (made by the fleet store's migration 3). */
export const EVENT_CURSOR = 'alerts';
/** A stored event whose handling failed this many times is logged and passed over (it must not stop alerting). */
const EVENT_ATTEMPTS = 5;
/** The first wait after a failed pass; doubled up to 30 s. */
const RETRY_MS = 1000;

/** A stored event as the box sent it (what handleEvent takes). */
function storedToEvent(e: PositionedEvent): AnyEvent {
  return {
    v: 1,
    id: e.id,
    deviceId: e.deviceId,
    bootId: e.bootId,
    seq: e.seq,
    at: e.at,
    type: e.type,
    body: e.body,
  } as AnyEvent;
}

export interface CursorReaderDeps {
  store: Store;
  alerts: AlertStore;
  config: AlertsConfig;
  clock: Clock;
  log: Logger;
  /** Is the engine running? */
  active: () => boolean;
  /** Apply one event (throws: tried again later). */
  apply: (e: AnyEvent) => Promise<void>;
}

export class EventCursorReader {
  private readonly flight: SingleFlight;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MS;
  /** Events of the batch being read that are already applied (by id, with their position). */
  private readonly appliedIds = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private prunedAt = 0;
  /** Set while an event is applied: a new alert's first step then runs without holding the reader. */
  private readonly reading = new AsyncLocalStorage<boolean>();

  constructor(private readonly deps: CursorReaderDeps) {
    this.flight = new SingleFlight(() => this.catchUp(), {
      active: deps.active,
      onError: (e) => {
        if (!deps.active()) return; // stopped under it: read again at the next start
        deps.log.error({ err: e, retryMs: this.retryMs }, 'reading stored events failed; trying again');
        this.retryLater();
      },
    });
  }

  private iso(ms = this.deps.clock.now()): string {
    return isoOf(ms);
  }

  /** Is the caller inside the application of a stored event? */
  get inEvent(): boolean {
    return this.reading.getStore() === true;
  }

  /** The pass in progress, if any. */
  get running(): Promise<void> | undefined {
    return this.flight.running;
  }

  /** Read and apply what was stored after the cursor. Never rejects. */
  consume(): Promise<void> {
    return this.flight.run();
  }

  stop(): void {
    clearTimeout(this.retryTimer);
  }

  private retryLater(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.consume(), this.retryMs);
    this.retryTimer.unref?.();
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
  }

  /** Until nothing is left after the cursor (or another instance holds it). */
  private async catchUp(): Promise<void> {
    const { store, config: cfg, active } = this.deps;
    while (active()) {
      const now = this.deps.clock.now();
      const until = this.iso(now + cfg.leaseS * 1000);
      const cursor = await store.claimCursor(EVENT_CURSOR, cfg.instance, this.iso(now), until);
      if (!cursor) return; // another fleet instance reads the events; the poll looks again
      const batch = await store.readEventsAfter(cursor.pos, cfg.eventBatch);
      if (batch.length === 0) return;
      const failed = await this.applyBatch(batch);
      if (!active()) return; // stopped under it: the rest is read again at the next start
      // The cursor moves past the events applied without a gap; a failed one stops it (read again later).
      let to = cursor.pos;
      for (const e of batch) {
        if (!this.appliedIds.has(e.id)) break;
        to = e.pos;
      }
      if (to > cursor.pos) {
        const moved = await store.advanceCursor(EVENT_CURSOR, {
          owner: cfg.instance,
          from: cursor.pos,
          to,
          now: this.iso(),
          until,
        });
        if (!moved) {
          this.deps.log.warn({ pos: cursor.pos }, 'the event cursor was taken by another instance; it reads from here');
          return;
        }
        for (const [id, pos] of this.appliedIds) if (pos <= to) this.appliedIds.delete(id);
        if (cursor.pos === 0 || batch.length >= cfg.eventBatch) {
          this.deps.log.debug({ from: cursor.pos, to, events: batch.length }, 'stored events applied');
        }
      }
      if (failed) {
        this.retryLater();
        return;
      }
      this.retryMs = RETRY_MS;
      await this.pruneEffects();
    }
  }

  /** Apply a batch: one box's events in order, boxes side by side. Returns true if any failed. */
  private async applyBatch(batch: PositionedEvent[]): Promise<boolean> {
    const byBox = new Map<string, PositionedEvent[]>();
    for (const e of batch) {
      const list = byBox.get(e.deviceId) ?? [];
      list.push(e);
      byBox.set(e.deviceId, list);
    }
    let failed = false;
    const { log } = this.deps;
    await Promise.all(
      [...byBox.values()].map(async (events) => {
        for (const e of events) {
          if (this.appliedIds.has(e.id)) continue;
          try {
            await this.reading.run(true, () => this.deps.apply(storedToEvent(e)));
          } catch (err) {
            const n = (this.failures.get(e.id) ?? 0) + 1;
            this.failures.set(e.id, n);
            if (n < EVENT_ATTEMPTS) {
              log.warn({ err, eventId: e.id, type: e.type, attempt: n }, 'applying a stored event failed');
              failed = true;
              return; // this box's later events wait for it
            }
            log.error(
              { err, eventId: e.id, type: e.type, deviceId: e.deviceId },
              `applying a stored event failed ${n} times: passed over`,
            );
          }
          this.failures.delete(e.id);
          this.appliedIds.set(e.id, e.pos);
        }
      }),
    );
    return failed;
  }

  /** Forget the per-event records of alerts once a day has passed (the cursor is long past them). */
  private async pruneEffects(): Promise<void> {
    const now = this.deps.clock.now();
    if (now - this.prunedAt < 3_600_000) return;
    this.prunedAt = now;
    await this.deps.alerts
      .pruneEventEffects(this.iso(now - 86_400_000))
      .catch((err) => this.deps.log.warn({ err }, 'pruning event records failed'));
  }
}
