/**
 * Event ingest: every message on callbox/v1/<id>/events is decoded against
 * the shared schemas (an EventBatch, or the single Event of older boxes),
 * checked to be the publishing box's own (deviceId = the topic's), queued,
 * and written in batches: one multi-row INSERT per batch, idempotent by
 * event id (a redelivered event is counted as a duplicate and announced to
 * nobody). Each newly stored event goes on the bus ('event.stored').
 *
 * After the commit, and only then:
 * - each message's `onCommitted` runs (the fleet sends the broker its PUBACK
 *   there, see Fleet.connect: a PUBACK is no longer sent on receipt);
 * - each box that sent an EventBatch gets one Receipt with its cumulative
 *   watermark (shared/contract/delivery.ts), duplicates included, so that a
 *   box whose receipt was lost can forget what the fleet already has.
 *
 * Bounded: at most `maxQueued` events wait for the store. Above it
 * hasRoom() is false and whenRoom() resolves once a commit made room; the
 * fleet stops reading from the broker meanwhile (backpressure down to TCP
 * and the broker's own queues), instead of growing without bound.
 *
 * Sequence gaps: the highest sequence number per box is kept (loaded from
 * the store the first time a box is seen); an event more than one ahead
 * announces the skipped run ('sequence.gap') and logs it. A late event can
 * fill a gap; Store.findGaps() computes the gaps that remain from the data.
 *
 * If the store fails, the batch is kept and retried (1 s, doubling to 30 s):
 * nothing received is dropped while the process lives, and nothing is
 * acknowledged or receipted before it is stored.
 */
import { Backoff } from '../shared/backoff.js';
import {
  type DecodedBatch,
  decodeEventsPayload,
  type Receipt,
  ReceiptWatermarks,
} from '../shared/contract/delivery.js';
import type { AnyEvent } from '../shared/contract/events.js';
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
  receipts: number;
  /** Times accept() found the queue full (the fleet paused reading). */
  backpressure: number;
}

export interface IngestOptions {
  batchMax: number;
  flushMs: number;
  /** Events waiting for the store above which the fleet stops reading from the broker. */
  maxQueued?: number;
  /**
   * Announce sequence gaps as events arrive (default true). Off when several
   * fleet workers share the events: each sees only part of a box's sequence
   * (Store.findGaps() still computes the gaps from the data).
   */
  liveGapCheck?: boolean;
}

/** Where receipts go (the fleet publishes them QoS 1 on the box's receipt topic). */
export type ReceiptSender = (deviceId: string, receipt: Receipt) => void;

interface Item {
  events: AnyEvent[];
  batch: DecodedBatch | undefined;
  onCommitted: (() => void) | undefined;
  /** When the message arrived (performance.now()), for the ingest latency. */
  arrivedAt?: number;
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
    receipts: 0,
    backpressure: 0,
  };
  private queue: Item[] = [];
  private queuedEvents = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly maxSeq = new Map<string, number>();
  private readonly marks = new ReceiptWatermarks();
  private readonly roomWaiters: (() => void)[] = [];
  /** Waits after a failed write: 1 s doubling to 30 s, back to 1 s after a success. */
  private readonly retry = new Backoff({ initial: 1000, max: 30_000 });
  private stopped = false;
  private readonly maxQueued: number;
  /** Set by the fleet once it is connected. */
  sendReceipt: ReceiptSender | undefined;
  /** Told, for each stored message, the seconds from its arrival to its commit and its events (metrics). */
  onLatency: ((seconds: number, events: number) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly bus: FleetBus,
    private readonly opts: IngestOptions,
  ) {
    this.maxQueued = opts.maxQueued ?? 20_000;
  }

  /**
   * A message from callbox/v1/<deviceId>/events. Returns false if it was
   * rejected (nothing queued; `onCommitted` is not called). Otherwise
   * `onCommitted` runs once its events are stored.
   */
  accept(deviceId: string, topic: string, payload: Buffer, onCommitted?: () => void): boolean {
    this.counters.received++;
    let item: Item;
    try {
      const decoded = decodeEventsPayload(payload);
      if (decoded.kind === 'single') {
        if (decoded.event.deviceId !== deviceId) {
          throw new Error(`event names device ${decoded.event.deviceId} but came from ${deviceId}`);
        }
        item = { events: [decoded.event], batch: undefined, onCommitted };
      } else {
        const b = decoded.batch;
        if (b.deviceId !== deviceId) throw new Error(`batch names device ${b.deviceId} but came from ${deviceId}`);
        for (const r of b.rejected) {
          // Never storable: reported, and receipted past so that it cannot block the box's outbox.
          this.counters.rejected++;
          const reason = `events[${r.index}] (id ${r.id ?? 'none'}): ${r.reason}`;
          log.warn({ deviceId, topic, reason }, 'event in a batch rejected');
          this.bus.emit('message.rejected', { topic, deviceId, reason });
        }
        item = { events: b.events, batch: b, onCommitted };
      }
    } catch (e) {
      this.counters.rejected++;
      const reason = describeError(e);
      log.warn({ deviceId, topic, reason }, 'event rejected');
      this.bus.emit('message.rejected', { topic, deviceId, reason });
      return false;
    }
    item.arrivedAt = performance.now();
    this.queue.push(item);
    this.queuedEvents += item.events.length;
    if (!this.hasRoom()) this.counters.backpressure++;
    if (this.queuedEvents >= this.opts.batchMax) this.kick(0);
    else this.kick(this.opts.flushMs);
    return true;
  }

  /** Events waiting for the store. */
  get pending(): number {
    return this.queuedEvents;
  }

  /** May more be accepted without going over maxQueued? */
  hasRoom(): boolean {
    return this.queuedEvents < this.maxQueued;
  }

  /** Resolves once there is room again (at once if there is). */
  whenRoom(): Promise<void> {
    if (this.hasRoom() || this.stopped) return Promise.resolve();
    return new Promise((r) => this.roomWaiters.push(r));
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

  /** The next items to write: whole messages, up to batchMax events (at least one message). */
  private take(): Item[] {
    const items: Item[] = [];
    let n = 0;
    for (const it of this.queue) {
      if (items.length > 0 && n + it.events.length > this.opts.batchMax) break;
      items.push(it);
      n += it.events.length;
    }
    return items;
  }

  private async flushAll(): Promise<void> {
    while (this.queue.length > 0) {
      const items = this.take();
      try {
        await this.write(items.flatMap((i) => i.events));
      } catch (e) {
        this.counters.storeErrors++;
        const retryMs = this.retry.next();
        log.error({ err: e, queued: this.queuedEvents, retryMs }, 'storing events failed; retrying');
        await new Promise((r) => setTimeout(r, retryMs));
        if (this.stopped) return;
        continue;
      }
      this.retry.reset();
      this.queue.splice(0, items.length);
      for (const it of items) this.queuedEvents -= it.events.length;
      this.committed(items);
      if (this.hasRoom()) for (const w of this.roomWaiters.splice(0)) w();
    }
  }

  /** After the commit: acknowledgements, then one receipt per box (the newest watermark). */
  private committed(items: Item[]): void {
    const receipts = new Map<string, Receipt>();
    const at = new Date().toISOString();
    const now = performance.now();
    for (const it of items) {
      if (this.onLatency && it.arrivedAt !== undefined) this.onLatency((now - it.arrivedAt) / 1000, it.events.length);
      try {
        it.onCommitted?.();
      } catch (err) {
        log.warn({ err }, 'acknowledging a stored message failed');
      }
      const b = it.batch;
      if (!b) continue;
      const seq = this.marks.committed(b);
      receipts.set(b.deviceId, { v: 1, stream: b.stream, seq, at });
    }
    if (!this.sendReceipt) return;
    for (const [deviceId, r] of receipts) {
      this.counters.receipts++;
      this.sendReceipt(deviceId, r);
    }
  }

  private async write(batch: AnyEvent[]): Promise<void> {
    if (batch.length === 0) return;
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
      if (this.opts.liveGapCheck !== false) this.checkSeq(e);
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

  /**
   * A receipt another fleet worker sent (several workers share a box's
   * batches): everything up to its seq is stored, so batches this worker
   * committed ahead of it may join. If that moves this worker's watermark
   * past the receipt, the box gets the newer receipt from here. Only a
   * higher watermark is sent, so receipts seen again change nothing.
   */
  noteReceipt(deviceId: string, r: Receipt): void {
    const before = this.marks.get(deviceId, r.stream) ?? 0;
    const seq = this.marks.committed({ deviceId, stream: r.stream, floor: r.seq, after: r.seq, last: r.seq });
    if (seq <= r.seq || seq <= before || !this.sendReceipt) return;
    this.counters.receipts++;
    this.sendReceipt(deviceId, { v: 1, stream: r.stream, seq, at: new Date().toISOString() });
  }

  /** Write everything queued now (tests, shutdown). */
  async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    // One flush at a time, the timer's or ours: two would take the same head of the queue, write it twice and
    // then drop the next batch unwritten when both remove what they took.
    while (this.flushing || this.queue.length > 0) {
      this.flushing ??= this.flushAll().finally(() => {
        this.flushing = undefined;
      });
      await this.flushing;
    }
  }

  async stop(): Promise<void> {
    await this.drain();
    this.stopped = true;
    for (const w of this.roomWaiters.splice(0)) w();
  }
}
