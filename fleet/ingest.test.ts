import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newBootId } from '../shared/ids.js';
import { sampleEvent } from '../test/helpers/store-conformance.js';
import { FleetBus, type FleetBusEvents } from './bus.js';
import { Ingest } from './ingest.js';
import { SqliteStore } from './store/sqlite.js';

describe('ingest: validated, idempotent, batched, with sequence gaps reported', () => {
  let dir: string;
  let store: SqliteStore;
  let bus: FleetBus;
  let ingest: Ingest;
  let stored: FleetBusEvents['event.stored'][];
  let gaps: FleetBusEvents['sequence.gap'][];
  let rejected: FleetBusEvents['message.rejected'][];
  const owner = {};
  const topic = 'callbox/v1/cb-1/events';

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ingest-'));
    store = await SqliteStore.open(join(dir, 'f.db'));
    await store.migrate();
    bus = new FleetBus();
    stored = [];
    gaps = [];
    rejected = [];
    bus.on('event.stored', owner, (e) => {
      stored.push(e);
    });
    bus.on('sequence.gap', owner, (g) => {
      gaps.push(g);
    });
    bus.on('message.rejected', owner, (r) => {
      rejected.push(r);
    });
    ingest = new Ingest(store, bus, { batchMax: 500, flushMs: 5 });
  });
  afterEach(async () => {
    await ingest.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a redelivered event once and announces it once', async () => {
    const e = sampleEvent('cb-1', 1);
    ingest.accept('cb-1', topic, Buffer.from(JSON.stringify(e)));
    ingest.accept('cb-1', topic, Buffer.from(JSON.stringify(e)));
    await ingest.drain();
    ingest.accept('cb-1', topic, Buffer.from(JSON.stringify(e)));
    await ingest.drain();
    expect(await store.countEvents()).toBe(1);
    expect(stored.map((s) => s.event.id)).toEqual([e.id]);
    expect(ingest.counters.duplicates).toBe(2);
  });

  it('counts and rejects malformed payloads and events naming another box, storing nothing', async () => {
    expect(ingest.accept('cb-1', topic, Buffer.from('{not json'))).toBe(false);
    const bad = { ...sampleEvent('cb-1', 1), body: { panicId: 'nope' } };
    expect(ingest.accept('cb-1', topic, Buffer.from(JSON.stringify(bad)))).toBe(false);
    expect(ingest.accept('cb-1', topic, Buffer.from(JSON.stringify(sampleEvent('cb-2', 1))))).toBe(false);
    await ingest.drain();
    expect(await store.countEvents()).toBe(0);
    expect(ingest.counters.rejected).toBe(3);
    expect(rejected.map((r) => r.reason)).toEqual([
      expect.stringMatching(/not valid JSON/),
      expect.stringMatching(/\/body\/panicId/),
      expect.stringMatching(/names device cb-2/),
    ]);
  });

  it('drain() while events keep arriving: each written once, none dropped (one flush at a time)', async () => {
    const writes: string[] = [];
    const insert = store.insertEvents.bind(store);
    vi.spyOn(store, 'insertEvents').mockImplementation(async (events, at) => {
      writes.push(...events.map((e) => e.id));
      await new Promise((r) => setTimeout(r, 15));
      return insert(events, at);
    });
    const small = new Ingest(store, bus, { batchMax: 10, flushMs: 0 });
    const sent: string[] = [];
    let seq = 0;
    const send = (n: number) => {
      for (let i = 0; i < n; i++) {
        const e = sampleEvent('cb-1', ++seq);
        sent.push(e.id);
        small.accept('cb-1', topic, Buffer.from(JSON.stringify(e)));
      }
    };
    send(25);
    const draining = small.drain();
    // More arrive while the drain writes: the timer must not start a second flush beside it.
    for (let round = 0; round < 5; round++) {
      await new Promise((r) => setTimeout(r, 5));
      send(7);
    }
    await draining;
    await small.drain();
    await small.stop();
    expect(await store.countEvents()).toBe(sent.length);
    expect(new Set(writes).size).toBe(writes.length);
    expect([...writes].sort()).toEqual([...sent].sort());
  });

  it('writes many events in few batches', async () => {
    const boot = newBootId();
    for (let i = 1; i <= 1200; i++) {
      ingest.accept('cb-1', topic, Buffer.from(JSON.stringify(sampleEvent('cb-1', i, boot))));
    }
    await ingest.drain();
    expect(await store.countEvents()).toBe(1200);
    expect(ingest.counters.batches).toBeLessThanOrEqual(4);
    expect(gaps).toEqual([]);
  });

  it('reports a sequence gap when a box skips numbers, including across restarts of the fleet', async () => {
    const boot = newBootId();
    for (const s of [1, 2, 5]) ingest.accept('cb-1', topic, Buffer.from(JSON.stringify(sampleEvent('cb-1', s, boot))));
    await ingest.drain();
    expect(gaps).toEqual([{ deviceId: 'cb-1', fromSeq: 3, toSeq: 4 }]);
    // a new ingest (fleet restarted) learns the highest sequence from the store
    const again = new Ingest(store, bus, { batchMax: 500, flushMs: 1 });
    again.accept('cb-1', topic, Buffer.from(JSON.stringify(sampleEvent('cb-1', 8, boot))));
    await again.stop();
    expect(gaps.at(-1)).toEqual({ deviceId: 'cb-1', fromSeq: 6, toSeq: 7 });
    expect(await store.findGaps('cb-1')).toEqual([
      { deviceId: 'cb-1', fromSeq: 3, toSeq: 4 },
      { deviceId: 'cb-1', fromSeq: 6, toSeq: 7 },
    ]);
  });
});

describe('ingest: batches, receipts after the commit, bounded queue', () => {
  let dir: string;
  let store: SqliteStore;
  const topic = 'callbox/v1/cb-1/events';
  const stream = '0193b2a4-1a00-7e65-8d44-0f5b6c7d8e9f';
  const batch = (after: number, seqs: number[], boot: string, floor = Math.min(after, 0)) =>
    Buffer.from(
      JSON.stringify({
        v: 1,
        deviceId: 'cb-1',
        stream,
        floor,
        after,
        events: seqs.map((s) => sampleEvent('cb-1', s, boot)),
      }),
    );

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ingest-r-'));
    store = await SqliteStore.open(join(dir, 'f.db'));
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('acknowledges and receipts only after the commit, cumulatively, duplicates included', async () => {
    const ingest = new Ingest(store, new FleetBus(), { batchMax: 500, flushMs: 5 });
    const receipts: { deviceId: string; seq: number }[] = [];
    ingest.sendReceipt = (deviceId, r) => receipts.push({ deviceId, seq: r.seq });
    const boot = newBootId();
    let acked = 0;
    const first = batch(0, [1, 2, 3], boot);
    expect(ingest.accept('cb-1', topic, first, () => acked++)).toBe(true);
    expect(acked).toBe(0);
    expect(receipts).toEqual([]);
    await ingest.drain();
    expect(acked).toBe(1);
    expect(await store.countEvents()).toBe(3);
    expect(receipts).toEqual([{ deviceId: 'cb-1', seq: 3 }]);
    // A batch ahead of a missing one is stored but not receipted past the hole...
    ingest.accept('cb-1', topic, batch(6, [7, 8], boot), () => acked++);
    await ingest.drain();
    expect(receipts.at(-1)).toEqual({ deviceId: 'cb-1', seq: 3 });
    // ...until the hole arrives; then both are covered.
    ingest.accept('cb-1', topic, batch(3, [4, 5, 6], boot), () => acked++);
    await ingest.drain();
    expect(receipts.at(-1)).toEqual({ deviceId: 'cb-1', seq: 8 });
    // A resend of what is stored: no new rows, still a receipt (the box may have missed it).
    ingest.accept('cb-1', topic, first, () => acked++);
    await ingest.drain();
    expect(await store.countEvents()).toBe(8);
    expect(receipts.length).toBe(4);
    expect(acked).toBe(4);
    await ingest.stop();
  });

  it('a failing store: nothing acknowledged or receipted until it is stored', async () => {
    const ingest = new Ingest(store, new FleetBus(), { batchMax: 500, flushMs: 1 });
    const receipts: number[] = [];
    ingest.sendReceipt = (_d, r) => receipts.push(r.seq);
    const real = store.insertEvents.bind(store);
    let fail = true;
    store.insertEvents = async (...a) => {
      if (fail) throw new Error('database is locked');
      return real(...a);
    };
    let acked = 0;
    ingest.accept('cb-1', topic, batch(0, [1, 2], newBootId()), () => acked++);
    await vi.waitUntil(() => ingest.counters.storeErrors > 0, { timeout: 5000 });
    expect(acked).toBe(0);
    expect(receipts).toEqual([]);
    fail = false;
    await vi.waitUntil(() => acked === 1, { timeout: 5000 });
    expect(receipts).toEqual([2]);
    await ingest.stop();
  });

  it('holds at most maxQueued events: then hasRoom() is false until a commit makes room', async () => {
    const ingest = new Ingest(store, new FleetBus(), { batchMax: 100, flushMs: 1, maxQueued: 100 });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const real = store.insertEvents.bind(store);
    store.insertEvents = async (...a) => {
      await gate;
      return real(...a);
    };
    const boot = newBootId();
    for (let i = 0; i < 10; i++) {
      ingest.accept(
        'cb-1',
        topic,
        batch(
          i * 10,
          Array.from({ length: 10 }, (_, k) => i * 10 + k + 1),
          boot,
        ),
      );
    }
    expect(ingest.hasRoom()).toBe(false);
    expect(ingest.counters.backpressure).toBe(1);
    let room = false;
    const waiting = ingest.whenRoom().then(() => {
      room = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(room).toBe(false);
    release();
    await waiting;
    expect(ingest.hasRoom()).toBe(true);
    await ingest.stop();
    expect(await store.countEvents()).toBe(100);
  });

  it('rejects a batch whose sequence numbers do not rise, and names the field', async () => {
    const bus = new FleetBus();
    const reasons: string[] = [];
    bus.on('message.rejected', {}, (r) => {
      reasons.push(r.reason);
    });
    const ingest = new Ingest(store, bus, { batchMax: 500, flushMs: 1 });
    expect(ingest.accept('cb-1', topic, batch(5, [4], newBootId()))).toBe(false);
    expect(reasons[0]).toMatch(/\/events\/0\/seq: got 4, expected an integer above 5/);
    await ingest.stop();
  });
});
