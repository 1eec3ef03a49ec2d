/**
 * The seam between the box's feature modules (calls, io, modem health) and
 * the durable outbox (device/uplink). A producer awaits record(): when it
 * resolves, the event is committed to disk and will reach the fleet at
 * least once, in sequence order, even across power cuts.
 */
import type { EventBody, EventType } from '../shared/contract/events.js';

export interface RecordedEvent {
  id: string;
  seq: number;
}

export interface RecordOptions {
  /**
   * The event's id, when the producer can name the event deterministically (a received SMS read
   * again after a crash): recording an id that is still stored returns the stored event instead of
   * a second one, and one already delivered is delivered again under the same id, which the fleet
   * keeps once. A UUID (sortable like the generated UUIDv7 ids: time first). Default: a new UUIDv7.
   */
  id?: string;
}

export interface EventSink {
  /** Commit an event durably; `at` defaults to now. */
  record<K extends EventType>(type: K, body: EventBody<K>, at?: Date, opts?: RecordOptions): Promise<RecordedEvent>;
}

/** An in-memory sink for unit tests of producers (not durable). */
export class MemoryEventSink implements EventSink {
  readonly events: { type: EventType; body: unknown; at: Date; id: string; seq: number }[] = [];
  private seq = 0;
  async record<K extends EventType>(
    type: K,
    body: EventBody<K>,
    at = new Date(),
    opts: RecordOptions = {},
  ): Promise<RecordedEvent> {
    const same = opts.id ? this.events.find((e) => e.id === opts.id) : undefined;
    if (same) return { id: same.id, seq: same.seq };
    const e = { type, body, at, id: opts.id ?? `mem-${++this.seq}`, seq: opts.id ? ++this.seq : this.seq };
    this.events.push(e);
    return { id: e.id, seq: e.seq };
  }
  ofType<K extends EventType>(type: K): EventBody<K>[] {
    return this.events.filter((e) => e.type === type).map((e) => e.body as EventBody<K>);
  }
}
