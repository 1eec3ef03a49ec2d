/**
 * End-to-end delivery of events: batches from the box, receipts from the
 * fleet.
 *
 * The box publishes its outbox on callbox/v1/<deviceId>/events as an
 * EventBatch: a run of consecutive outbox rows (one or many events), with
 * two numbers that let the fleet give one cumulative receipt per box:
 *
 * - floor: the box holds no event of this stream with seq <= floor any more
 *   (each was receipted, or superseded by a newer state event);
 * - after: the batch carries every event the box held with
 *   after < seq <= (the last event's seq).
 *
 * The fleet, once the batch's events are committed (new or duplicates), sets
 * its watermark for (box, stream) to the batch's last seq when the batch
 * joins on (after <= watermark, starting from floor), and publishes a
 * Receipt with the watermark on callbox/v1/<deviceId>/events/receipt. The
 * box deletes its rows up to the receipt's seq, and only then: the broker's
 * PUBACK is transport, not proof. ReceiptWatermarks below is that rule, for
 * the fleet (and the test fleet).
 *
 * stream is the id of the box's outbox (made with the store; a store set
 * aside as corrupt starts a new stream whose seq starts again at 1), so a
 * receipt never reaches across two outboxes.
 */

import { CallboxError, ErrorCode } from '../errors.js';
import { DeviceId, SchemaVersion, type Static, Strict, Timestamp, Type, Uuid } from '../schema.js';
import { validate } from '../validate.js';
import { type AnyEvent, EventEnvelopeSchema, MAX_FUTURE_SKEW_MS } from './events.js';
import { decodeEventValue, parseJson } from './messages.js';

/** Bounds a batch must keep (the box's settings cannot exceed them). */
export const BATCH_MAX_EVENTS = 1000;

const Seq = (description: string) => Type.Integer({ minimum: 0, description });

export const EventBatchSchema = Strict({
  v: SchemaVersion(1),
  deviceId: DeviceId(),
  stream: Uuid('id of the box outbox the events come from; a new outbox (store set aside) has a new one'),
  floor: Seq('the box holds no event of this stream with seq <= floor (receipted or superseded)'),
  after: Seq('the batch carries every event the box held with after < seq <= the last seq in events'),
  events: Type.Array(EventEnvelopeSchema, {
    minItems: 1,
    maxItems: BATCH_MAX_EVENTS,
    description: 'consecutive outbox events in seq order (an Event each, see Events)',
  }),
});

/** The header of a batch, checked before its events are checked one by one (clearer errors, faster). */
const BatchHeaderSchema = Strict({
  v: SchemaVersion(1),
  deviceId: DeviceId(),
  stream: Uuid(),
  floor: Seq(''),
  after: Seq(''),
  events: Type.Array(Type.Unknown(), { minItems: 1, maxItems: BATCH_MAX_EVENTS }),
});

export const ReceiptSchema = Strict({
  v: SchemaVersion(1),
  stream: Uuid('the outbox stream this receipt is about'),
  seq: Seq('every event of this stream with seq <= this is stored by the fleet: the box may forget it'),
  at: Timestamp('when the fleet sent it'),
});
export type Receipt = Static<typeof ReceiptSchema>;

export interface DecodedBatch {
  deviceId: string;
  stream: string;
  floor: number;
  after: number;
  /** seq of the last event. */
  last: number;
  /** Events that passed their schema, in seq order. */
  events: AnyEvent[];
  /** Events that did not (with the reason): never storable, receipted past so that they cannot block the outbox. */
  rejected: { index: number; id: string | null; reason: string }[];
}

/**
 * Check a decoded JSON value as a batch: header first (a bad header rejects
 * the batch: no receipt, the box sends it again), then each event with
 * `decodeOne` (a bad event is reported in `rejected`; the rest are kept).
 */
export function checkBatch(value: unknown, decodeOne: (v: unknown) => AnyEvent): DecodedBatch {
  const h = validate(BatchHeaderSchema, value, 'event batch');
  if (h.floor > h.after) {
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `event batch is invalid: /floor: got ${h.floor}, expected at most after (${h.after})`,
    );
  }
  const events: AnyEvent[] = [];
  const rejected: DecodedBatch['rejected'] = [];
  let prev = h.after;
  h.events.forEach((raw, index) => {
    const seq = (raw as { seq?: unknown } | null)?.seq;
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq <= prev) {
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        `event batch is invalid: /events/${index}/seq: got ${JSON.stringify(seq)}, expected an integer above ${prev} (events in rising seq order after ${h.after})`,
      );
    }
    prev = seq;
    try {
      const e = decodeOne(raw);
      if (e.deviceId !== h.deviceId) {
        throw new Error(`event names device ${e.deviceId} but the batch is from ${h.deviceId}`);
      }
      events.push(e);
    } catch (err) {
      const id = (raw as { id?: unknown }).id;
      rejected.push({ index, id: typeof id === 'string' ? id : null, reason: (err as Error).message });
    }
  });
  return { deviceId: h.deviceId, stream: h.stream, floor: h.floor, after: h.after, last: prev, events, rejected };
}

/**
 * A message on callbox/v1/<id>/events: an EventBatch, or the single Event
 * older boxes send (stored the same way; no receipt, since such a box
 * forgets on PUBACK).
 */
export function decodeEventsPayload(
  payload: Buffer | string,
  now = Date.now(),
): { kind: 'batch'; batch: DecodedBatch } | { kind: 'single'; event: AnyEvent } {
  const value = parseJson(payload, 'events message');
  // An event dated far ahead of the receiver's clock is refused like any invalid event (it would sit at the top of
  // every time-ordered view and blind the figures).
  const decodeOne = (v: unknown) => notTooFarAhead(decodeEventValue(v), now);
  if (isBatchShape(value)) return { kind: 'batch', batch: checkBatch(value, decodeOne) };
  return { kind: 'single', event: decodeOne(value) };
}

function notTooFarAhead(e: AnyEvent, now: number): AnyEvent {
  if (Date.parse(e.at) > now + MAX_FUTURE_SKEW_MS) {
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `event ${e.id}: /at: got ${e.at}, expected at most ${MAX_FUTURE_SKEW_MS / 3_600_000} h ahead of the fleet's clock`,
    );
  }
  return e;
}

/** Does this decoded JSON look like a batch (rather than the single-event form of older boxes)? */
export function isBatchShape(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Array.isArray((value as { events?: unknown }).events);
}

/**
 * The fleet's cumulative receipt per (box, stream). Call committed() only
 * after the batch's events are durably stored; it returns the seq to
 * receipt (every event of the stream up to it is stored or no longer held
 * by the box). Batches that arrive ahead of a missing one are remembered
 * (a few per stream) and joined when the missing one commits.
 *
 * Kept in memory only: after a fleet restart the first batch of a box
 * starts it again from the batch's floor, which is safe (the box holds
 * nothing at or below it).
 */
export class ReceiptWatermarks {
  private readonly marks = new Map<string, { stream: string; seq: number; ahead: Map<number, number> }>();

  constructor(private readonly maxAhead = 64) {}

  committed(b: Pick<DecodedBatch, 'deviceId' | 'stream' | 'floor' | 'after' | 'last'>): number {
    let m = this.marks.get(b.deviceId);
    if (!m || m.stream !== b.stream) {
      m = { stream: b.stream, seq: b.floor, ahead: new Map() };
      this.marks.set(b.deviceId, m);
    }
    m.seq = Math.max(m.seq, b.floor);
    if (b.after <= m.seq) {
      m.seq = Math.max(m.seq, b.last);
    } else {
      // A batch ahead of one not (yet) stored: kept to join later.
      m.ahead.set(b.after, Math.max(m.ahead.get(b.after) ?? 0, b.last));
      if (m.ahead.size > this.maxAhead) m.ahead.delete(m.ahead.keys().next().value as number);
    }
    for (let joined = true; joined && m.ahead.size > 0; ) {
      joined = false;
      for (const [after, last] of m.ahead) {
        if (after <= m.seq) {
          m.ahead.delete(after);
          if (last > m.seq) m.seq = last;
          joined = true;
        }
      }
    }
    return m.seq;
  }

  /** The current watermark of a box's stream (tests, metrics). */
  get(deviceId: string, stream: string): number | undefined {
    const m = this.marks.get(deviceId);
    return m && m.stream === stream ? m.seq : undefined;
  }
}
