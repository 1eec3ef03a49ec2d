/**
 * Event ingest: every message on callbox/v1/<id>/events is decoded against
 * the shared schemas (decodeEvent), checked to be the publishing box's own
 * (deviceId in the envelope = the topic's), queued, and written in batches:
 * one multi-row INSERT per batch, idempotent by event id (a redelivered event
 * is counted as a duplicate and announced to nobody). Each newly stored
 * event goes on the bus ('event.stored').
 *
 * Sequence gaps: the highest sequence number per box is kept (loaded from
 * the store the first time a box is seen); an event more than one ahead
 * announces the skipped run ('sequence.gap') and logs it. A late event can
 * fill a gap; Store.findGaps() computes the gaps that remain from the data.
 *
 * If the store fails, the batch is kept and retried (1 s, doubling to 30 s):
 * nothing received is dropped while the process lives.
 */
import { type AnyEvent, MAX_FUTURE_SKEW_MS } from '../shared/contract/events.js';
import { decodeEvent } from '../shared/contract/messages.js';
import { describeError } from '../shared/errors.js';
import { getLogger } from '../shared/log.js';
import type { FleetBus } from './bus.js';
import type { Store, StoredEvent } from './store/types.js';

const log = getLogger('fleet:ingest');

export interface IngestCounters {
  received: number;
  stored: number;
  duplicates: number;
  rejected: number;
  gaps: number;
  batches: number;
  storeErrors: number;
}

export interface IngestOptions {
  batchMax: number;
  flushMs: number;
}

export class Ingest {
  readonly counters: IngestCounters = {
    received: 0,
    stored: 0,
    duplicates: 0,
    rejected: 0,
    gaps: 0,
    batches: 0,
    storeErrors: 0,
  };
  private queue: AnyEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly maxSeq = new Map<string, number>();
  private retryMs = 1000;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly bus: FleetBus,
    private readonly opts: IngestOptions,
  ) {}

  /** A message from callbox/v1/<deviceId>/events. Returns false if it was rejected. */
  accept(deviceId: string, topic: string, payload: Buffer): boolean {
    this.counters.received++;
    let event: AnyEvent;
    try {
      event = decodeEvent(payload);
      if (event.deviceId !== deviceId) {
        throw new Error(`event names device ${event.deviceId} but came from ${deviceId}`);
      }
      if (Date.parse(event.at) > Date.now() + MAX_FUTURE_SKEW_MS) {
        throw new Error(
          `event at ${event.at} is more than ${MAX_FUTURE_SKEW_MS / 3_600_000} h ahead of the fleet's clock`,
        );
      }
    } catch (e) {
      this.counters.rejected++;
      const reason = describeError(e);
      log.warn({ deviceId, topic, reason }, 'event rejected');
      this.bus.emit('message.rejected', { topic, deviceId, reason });
      return false;
    }
    this.queue.push(event);
    if (this.queue.length >= this.opts.batchMax) this.kick(0);
    else this.kick(this.opts.flushMs);
    return true;
  }

  get pending(): number {
    return this.queue.length;
  }

  private kick(delay: number): void {
    if (this.stopped) return;
    if (this.flushing) return; // the running flush takes the queue when done
    if (this.timer && delay > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flushAll().finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.kick(0);
      });
    }, delay);
  }

  private async flushAll(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.opts.batchMax);
      try {
        await this.write(batch);
        this.queue.splice(0, batch.length);
        this.retryMs = 1000;
      } catch (e) {
        this.counters.storeErrors++;
        log.error({ err: e, queued: this.queue.length, retryMs: this.retryMs }, 'storing events failed; retrying');
        await new Promise((r) => setTimeout(r, this.retryMs));
        this.retryMs = Math.min(this.retryMs * 2, 30_000);
        if (this.stopped) return;
      }
    }
  }

  private async write(batch: AnyEvent[]): Promise<void> {
    for (const id of new Set(batch.map((e) => e.deviceId))) {
      if (!this.maxSeq.has(id)) this.maxSeq.set(id, await this.store.maxSeq(id));
    }
    const receivedAt = new Date().toISOString();
    const fresh = new Set(await this.store.insertEvents(batch, receivedAt));
    this.counters.batches++;
    const ordered = [...batch].sort((a, b) => a.seq - b.seq);
    for (const e of ordered) {
      if (!fresh.has(e.id)) {
        this.counters.duplicates++;
        continue;
      }
      fresh.delete(e.id); // a duplicate inside the batch counts once
      this.counters.stored++;
      this.checkSeq(e);
      const stored: StoredEvent = {
        id: e.id,
        deviceId: e.deviceId,
        bootId: e.bootId,
        seq: e.seq,
        type: e.type,
        at: new Date(e.at).toISOString(),
        receivedAt,
        body: e.body,
      };
      this.bus.emit('event.stored', { event: stored, raw: e });
    }
  }

  private checkSeq(e: AnyEvent): void {
    const max = this.maxSeq.get(e.deviceId) ?? 0;
    if (e.seq > max + 1) {
      this.counters.gaps++;
      const gap = { deviceId: e.deviceId, fromSeq: max + 1, toSeq: e.seq - 1 };
      log.warn(gap, 'sequence gap: events missing from this box');
      this.bus.emit('sequence.gap', gap);
    }
    if (e.seq > max) this.maxSeq.set(e.deviceId, e.seq);
  }

  /** Write everything queued now (tests, shutdown). */
  async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    if (this.queue.length > 0) await this.flushAll();
  }

  async stop(): Promise<void> {
    await this.drain();
    this.stopped = true;
  }
}
