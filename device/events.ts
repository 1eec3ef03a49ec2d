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

export interface EventSink {
  /** Commit an event durably; `at` defaults to now. */
  record<K extends EventType>(type: K, body: EventBody<K>, at?: Date): Promise<RecordedEvent>;
}

/** An in-memory sink for unit tests of producers (not durable). */
export class MemoryEventSink implements EventSink {
  readonly events: { type: EventType; body: unknown; at: Date; id: string; seq: number }[] = [];
  private seq = 0;
  async record<K extends EventType>(type: K, body: EventBody<K>, at = new Date()): Promise<RecordedEvent> {
    const e = { type, body, at, id: `mem-${++this.seq}`, seq: this.seq };
    this.events.push(e);
    return { id: e.id, seq: e.seq };
  }
  ofType<K extends EventType>(type: K): EventBody<K>[] {
    return this.events.filter((e) => e.type === type).map((e) => e.body as EventBody<K>);
  }
}
