import { describe, expect, it } from 'vitest';
import { checkBatch, ReceiptWatermarks } from './delivery.js';
import { decodeEventValue } from './messages.js';

const S1 = '0193b2a4-1a00-7e65-8d44-0f5b6c7d8e9f';
const S2 = '0193b2a4-1a00-7e65-8d44-0f5b6c7d8ea0';
const b = (stream: string, floor: number, after: number, last: number) => ({
  deviceId: 'cb-1',
  stream,
  floor,
  after,
  last,
});

describe('receipt watermarks: cumulative, never past an event not stored', () => {
  it('joins batches in order, keeps one ahead of a hole until the hole is stored', () => {
    const w = new ReceiptWatermarks();
    expect(w.committed(b(S1, 0, 0, 10))).toBe(10);
    expect(w.committed(b(S1, 0, 20, 30))).toBe(10); // 11..20 not stored yet
    expect(w.committed(b(S1, 0, 10, 20))).toBe(30);
    expect(w.committed(b(S1, 0, 0, 10))).toBe(30); // a resend: receipted again, nothing moves back
  });

  it('starts from the box floor (the box holds nothing below it: after a fleet restart, or superseded events)', () => {
    const w = new ReceiptWatermarks();
    expect(w.committed(b(S1, 40, 40, 45))).toBe(45);
    expect(w.committed(b(S1, 60, 60, 70))).toBe(70); // 46..60 receipted or superseded on the box
  });

  it('a new outbox stream starts again (a store set aside restarts seq at 1)', () => {
    const w = new ReceiptWatermarks();
    expect(w.committed(b(S1, 0, 0, 500))).toBe(500);
    expect(w.committed(b(S2, 0, 0, 3))).toBe(3);
    expect(w.get('cb-1', S1)).toBeUndefined();
  });
});

describe('event batch checks', () => {
  const event = (seq: number, extra: Record<string, unknown> = {}) => ({
    v: 1,
    id: `0193b2a4-2f1e-7c3d-8e4f-5a6b7c8d${String(seq).padStart(4, '0')}`,
    deviceId: 'cb-1',
    bootId: '7d0c8a52-3b1e-4c55-9a0e-2f4b6c8d1e3f',
    seq,
    at: '2026-11-26T09:15:02.120Z',
    type: 'panic.cancelled',
    body: { panicId: '0193b2a4-4c00-7a21-8f00-6b1d2e3f4a5b' },
    ...extra,
  });
  const batch = (events: unknown[], o: Record<string, unknown> = {}) => ({
    v: 1,
    deviceId: 'cb-1',
    stream: S1,
    floor: 0,
    after: 0,
    events,
    ...o,
  });

  it('keeps the valid events and reports the invalid one with its field', () => {
    const d = checkBatch(batch([event(1), event(2, { body: { panicId: 'x' } }), event(3)]), decodeEventValue);
    expect(d.events.map((e) => e.seq)).toEqual([1, 3]);
    expect(d.last).toBe(3);
    expect(d.rejected).toEqual([
      { index: 1, id: expect.any(String), reason: expect.stringMatching(/\/body\/panicId/) },
    ]);
  });

  it('rejects a batch with a floor above after, an empty batch, or events of another box', () => {
    expect(() => checkBatch(batch([event(5)], { floor: 5, after: 4 }), decodeEventValue)).toThrow(
      /\/floor: got 5, expected at most after \(4\)/,
    );
    expect(() => checkBatch(batch([]), decodeEventValue)).toThrow(/event batch is invalid: \/events/);
    const d = checkBatch(batch([event(1, { deviceId: 'cb-2' })]), decodeEventValue);
    expect(d.rejected[0]?.reason).toMatch(/names device cb-2/);
  });
});
