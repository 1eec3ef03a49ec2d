import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../device/store/store.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { newBootId } from '../shared/ids.js';
import { waitFor } from '../shared/wait.js';
import { FakeFleet, startBroker, type TestBroker } from './uplink-helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDb(): string {
  return join(mkdtempSync(join(tmpdir(), 'callbox-outbox-')), 'box.db');
}

async function openOutbox(file: string, over: Partial<ConstructorParameters<typeof Outbox>[1]> = {}) {
  const store = await Store.open({ file, migrations: { uplink: UPLINK_MIGRATIONS } });
  const outbox = new Outbox(store, {
    bootId: newBootId(),
    maxEvents: 1000,
    publishBatch: 50,
    minFreeBytes: 1,
    freeBytes: async () => 10 ** 12,
    ...over,
  });
  await outbox.open();
  return { store, outbox };
}

const call = (n: number) => ({
  callId: `c${n}`,
  number: null,
  withheld: true,
  inHours: true,
  repeatCaller: false,
  waiting: false,
});

function linkFor(broker: TestBroker, deviceId: string): Link {
  return new Link({
    url: broker.url,
    identity: { kind: 'device', id: deviceId, username: deviceId, password: 'secret-secret-secret' },
    keepaliveS: 5,
    connectTimeoutMs: 2000,
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
    bootId: newBootId(),
    softwareVersion: 'test',
  });
}

describe('outbox storage', () => {
  it('numbers events in record order and keeps the sequence across a reopen', async () => {
    const file = tempDb();
    let { store, outbox } = await openOutbox(file);
    const recorded = await Promise.all([1, 2, 3].map((n) => outbox.record('call.incoming', call(n))));
    expect(recorded.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(outbox.depth).toBe(3);
    await outbox.close();
    await store.close();
    ({ store, outbox } = await openOutbox(file));
    expect(outbox.depth).toBe(3);
    const next = await outbox.record('call.incoming', call(4));
    expect(next.seq).toBe(4);
    await outbox.close();
    await store.close();
  });

  it('refuses a malformed body with the field named and stores nothing', async () => {
    const { store, outbox } = await openOutbox(tempDb());
    cleanups.push(() => store.close());
    const bad = { ...call(1), callId: 7 } as unknown as ReturnType<typeof call>;
    await expect(outbox.record('call.incoming', bad)).rejects.toThrow(/event call\.incoming is invalid: \/callId/);
    expect(outbox.depth).toBe(0);
    expect((await outbox.record('call.incoming', call(2))).seq).toBe(1);
  });

  it('when full: refuses call events, coalesces state events, never drops panic', async () => {
    const { store, outbox } = await openOutbox(tempDb(), { maxEvents: 5 });
    cleanups.push(() => store.close());
    await outbox.record('modem.state', { state: 'no_signal' });
    for (let i = 0; i < 4; i++) await outbox.record('call.incoming', call(i));
    expect(outbox.depth).toBe(5);
    const refused = await outbox.record('call.incoming', call(9)).catch((e) => e);
    expect(isCallboxError(refused, ErrorCode.StoreFull)).toBe(true);
    expect(String(refused.message)).toMatch(/outbox\.maxEvents 5/);
    await outbox.record('modem.state', { state: 'ready' });
    const states = await store.all<{ body: string }>("SELECT body FROM events WHERE type = 'modem.state'");
    expect(states.map((s) => JSON.parse(s.body).state)).toEqual(['ready']);
    const panic = await outbox.record('panic.pressed', {
      panicId: '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a',
      source: 'desk',
    });
    expect(panic.seq).toBeGreaterThan(0);
    expect(outbox.depth).toBe(6);
  });

  it('disk nearly full: only panic and voicemail events are accepted', async () => {
    let free = 10 ** 9;
    const { store, outbox } = await openOutbox(tempDb(), {
      minFreeBytes: 10 ** 6,
      diskCheckMs: 0,
      freeBytes: async () => free,
    });
    cleanups.push(() => store.close());
    await outbox.record('call.incoming', call(1));
    free = 1000;
    const refused = await outbox.record('call.incoming', call(2)).catch((e) => e);
    expect(isCallboxError(refused, ErrorCode.StoreFull)).toBe(true);
    expect(String(refused.message)).toMatch(/MiB free on disk/);
    const p = await outbox.record('panic.pressed', { panicId: '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a', source: 'desk' });
    expect(p.seq).toBe(2);
    free = 10 ** 9;
    expect((await outbox.record('call.incoming', call(3))).seq).toBe(3);
  });

  it('SQLite full mid-commit: record() refuses with StoreFull, nothing half-stored, the sequence has no gap', async () => {
    const { store, outbox } = await openOutbox(tempDb());
    cleanups.push(() => store.close());
    await outbox.record('call.incoming', call(1));
    const { page_count: pages } = (await store.get<{ page_count: number }>('PRAGMA page_count')) ?? { page_count: 0 };
    await store.get(`PRAGMA max_page_count = ${pages}`);
    const big = { ...call(2), callId: 'x'.repeat(64) };
    const results = await Promise.allSettled(Array.from({ length: 300 }, () => outbox.record('call.incoming', big)));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect(isCallboxError((refused[0] as PromiseRejectedResult).reason, ErrorCode.StoreFull)).toBe(true);
    const stored = await store.get<{ n: number }>('SELECT COUNT(*) AS n FROM events');
    const accepted = results.filter((r) => r.status === 'fulfilled').length;
    expect(stored?.n).toBe(1 + accepted);
    expect(outbox.depth).toBe(1 + accepted);
    await store.get('PRAGMA max_page_count = 1073741823');
    expect((await outbox.record('call.incoming', call(3))).seq).toBe(2 + accepted);
  });

  it('a store locked by another process: start-up fails with a clear StoreUnavailable', async () => {
    const file = tempDb();
    const first = await Store.open({ file, migrations: { uplink: UPLINK_MIGRATIONS } });
    cleanups.push(() => first.close());
    // Hold the write lock as a second box process would.
    let locked = false;
    let release = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    const held = first.exclusive(async (q) => {
      await q.exec('BEGIN IMMEDIATE');
      locked = true;
      await released;
      await q.exec('ROLLBACK');
    });
    await waitFor(() => locked, 'the write lock held');
    const err = await Store.open({ file, busyTimeoutMs: 200 }).catch((e) => e);
    release();
    await held;
    expect(isCallboxError(err, ErrorCode.StoreUnavailable)).toBe(true);
    expect(String(err.message)).toMatch(/locked by another process/);
  });

  it('a corrupt store is quarantined and a new one started', async () => {
    const file = tempDb();
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const store = await Store.open({ file, migrations: { uplink: UPLINK_MIGRATIONS } });
    cleanups.push(() => store.close());
    expect(store.quarantined?.reason).toMatch(/not a database|malformed|quick_check/);
    const names = readdirSync(join(file, '..'));
    expect(names.some((n) => n.startsWith('box.db.corrupt-'))).toBe(true);
    const outbox = new Outbox(store, { bootId: newBootId(), maxEvents: 1000, publishBatch: 10, minFreeBytes: 1 });
    await outbox.open();
    expect((await outbox.record('call.incoming', call(1))).seq).toBe(1);
  });
});

describe('outbox over the MQTT link (aedes)', () => {
  it('publishes in sequence order, deletes on the fleet receipt, and replays what was stored while offline', async () => {
    const broker = await startBroker();
    cleanups.push(() => broker.close());
    const fleet = await FakeFleet.start(broker.fleetUrl);
    cleanups.push(() => fleet.close());
    const { store, outbox } = await openOutbox(tempDb());
    cleanups.push(() => store.close());
    // Recorded before the link exists: stored, waiting.
    for (let i = 0; i < 300; i++) void outbox.record('call.incoming', call(i));
    await outbox.record('call.incoming', call(300));
    const link = linkFor(broker, 'box-one');
    wireOutbox(link, outbox, 'box-one');
    link.start();
    cleanups.push(() => link.stop());
    await fleet.events.waitFor(() => fleet.events.count() === 301);
    await outbox.drained();
    expect(outbox.depth).toBe(0);
    const seqs = (fleet.events.byDevice.get('box-one') ?? []).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 301 }, (_, i) => i + 1));
    expect(fleet.statuses.some((s) => s.deviceId === 'box-one' && s.status.state === 'online')).toBe(true);
  });

  it('broker down for a long outage: everything recorded meanwhile arrives afterwards, in order', async () => {
    const broker = await startBroker();
    cleanups.push(() => broker.close());
    const fleet = await FakeFleet.start(broker.fleetUrl);
    cleanups.push(() => fleet.close());
    const { store, outbox } = await openOutbox(tempDb());
    cleanups.push(() => store.close());
    const link = linkFor(broker, 'box-two');
    wireOutbox(link, outbox, 'box-two');
    link.start();
    cleanups.push(() => link.stop());
    await outbox.record('call.incoming', call(0));
    await fleet.events.waitFor(() => fleet.events.count() === 1);
    await outbox.drained(); // receipted: forgotten on the box
    await broker.down();
    await waitFor(() => link.state === 'offline' || link.state === 'connecting', 'the link down');
    // Many reconnect attempts fail while events keep coming.
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => outbox.record('call.incoming', call(round * 100 + i))));
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(outbox.depth).toBeGreaterThanOrEqual(1000);
    await broker.up();
    await fleet.events.waitFor(() => fleet.events.count() === 1001, 20_000);
    const seqs = (fleet.events.byDevice.get('box-two') ?? []).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 1001 }, (_, i) => i + 1));
    await outbox.drained();
    expect(outbox.depth).toBe(0);
  });
});
