import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newBootId } from '../shared/ids.js';
import { FleetBus, type FleetBusEvents } from './bus.js';
import { Ingest } from './ingest.js';
import { sampleEvent } from './store/conformance.js';
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
