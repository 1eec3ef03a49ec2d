/**
 * End-to-end delivery against the real fleet (embedded broker): a box's
 * outbox forgets events only on the fleet's receipt, the fleet acknowledges
 * (PUBACK) a box's message only after the batch holding it committed, and a
 * slow store makes the fleet stop reading instead of queueing without bound.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Store } from '../device/store/store.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function fleet(values: Record<string, unknown> = {}): Promise<TestFleet> {
  const tf = await startTestFleet(values);
  cleanups.push(() => tf.close());
  return tf;
}

/** Block the store's event writes until released. */
function stallStore(tf: TestFleet): { release: () => void; writes: () => number } {
  const store = tf.fleet.store;
  const real = store.insertEvents.bind(store);
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let writes = 0;
  store.insertEvents = async (...a) => {
    await gate;
    const r = await real(...a);
    writes++;
    return r;
  };
  return { release, writes: () => writes };
}

const STREAM = '0193b2a4-1a00-7e65-8d44-0f5b6c7d8e9f';
function batchOf(deviceId: string, after: number, n: number, boot = newBootId()): string {
  const events = Array.from({ length: n }, (_, i) => sampleEvent(deviceId, after + i + 1, boot));
  return JSON.stringify({ v: 1, deviceId, stream: STREAM, floor: 0, after, events });
}

describe('delivery: receipts and acknowledgements after the commit', () => {
  it('a real box outbox drains only once the fleet has stored its events', async () => {
    const tf = await fleet();
    const box = await provisionBox(tf, 'RCPT-0001');
    const store = await Store.open({
      file: join(mkdtempSync(join(tmpdir(), 'rcpt-')), 'box.db'),
      migrations: { uplink: UPLINK_MIGRATIONS },
    });
    cleanups.push(() => store.close());
    const outbox = new Outbox(store, { bootId: newBootId(), maxEvents: 10_000, publishBatch: 50, minFreeBytes: 1 });
    await outbox.open();
    const stall = stallStore(tf);
    for (let i = 0; i < 120; i++) {
      await outbox.record('panic.pressed', { panicId: '0193b2a4-4c00-7a21-8f00-6b1d2e3f4a5b', source: `b${i}` });
    }
    const link = new Link({
      url: tf.url,
      identity: { kind: 'device', id: box.deviceId, username: box.username, password: box.password },
      keepaliveS: 10,
      connectTimeoutMs: 3000,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
      bootId: newBootId(),
      softwareVersion: 'test',
    });
    wireOutbox(link, outbox, box.deviceId);
    link.start();
    cleanups.push(() => link.stop());
    await vi.waitUntil(() => outbox.delivery.sentBatches >= 3, { timeout: 10_000 });
    // The broker has acknowledged the batches; the fleet has not stored them: nothing is forgotten.
    await vi.waitUntil(() => tf.fleet.ingest.pending > 0, { timeout: 10_000 });
    expect(outbox.depth).toBe(120);
    stall.release();
    await outbox.drained();
    expect(outbox.depth).toBe(0);
    expect((await tf.fleet.store.listEvents({ deviceId: box.deviceId, limit: 500 })).length).toBe(120);
    expect(outbox.delivery.sentBatches).toBeLessThan(10); // 120 events in batches of 50, not 120 messages
  });

  it('the fleet sends its PUBACK for a box message only after the commit, then the receipt', async () => {
    const tf = await fleet();
    const box = await provisionBox(tf, 'RCPT-0002');
    const fleetClient = tf.fleet.client as MqttClient;
    const pubacks: number[] = [];
    fleetClient.on('packetsend', (p) => {
      if (p.cmd === 'puback') pubacks.push(Date.now());
    });
    const stall = stallStore(tf);
    const c = await connectClient(tf.url, { username: box.username, password: box.password, clean: true });
    cleanups.push(async () => c.end(true));
    const t = deviceTopics(box.deviceId);
    const receipts: { seq: number; stream: string }[] = [];
    c.on('message', (topic, payload) => {
      if (topic === t.receipt) receipts.push(JSON.parse(payload.toString()));
    });
    await c.subscribeAsync(t.receipt, { qos: 1 });
    await c.publishAsync(t.events, batchOf(box.deviceId, 0, 5), { qos: 1 });
    await vi.waitUntil(() => tf.fleet.ingest.pending === 5, { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 200));
    expect(pubacks.length).toBe(0);
    expect(receipts).toEqual([]);
    const released = Date.now();
    stall.release();
    await vi.waitUntil(() => receipts.length === 1, { timeout: 5000 });
    expect(receipts[0]).toMatchObject({ v: 1, stream: STREAM, seq: 5 });
    expect(pubacks.length).toBe(1);
    expect(pubacks[0]).toBeGreaterThanOrEqual(released);
    expect(stall.writes()).toBe(1);
  });

  it('a slow store: the fleet stops reading at ingest.maxQueued instead of queueing without bound', async () => {
    const tf = await fleet({ ingest: { maxQueued: 100, batchMax: 100 } });
    const box = await provisionBox(tf, 'RCPT-0003');
    const stall = stallStore(tf);
    const c = await connectClient(tf.url, { username: box.username, password: box.password, clean: true });
    cleanups.push(async () => c.end(true));
    const t = deviceTopics(box.deviceId);
    const boot = newBootId();
    for (let i = 0; i < 20; i++) c.publish(t.events, batchOf(box.deviceId, i * 50, 50, boot), { qos: 1 });
    await vi.waitUntil(() => tf.fleet.ingest.counters.backpressure > 0, { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    // One message past the bound at most (it was read before the bound was seen).
    expect(tf.fleet.ingest.pending).toBeLessThanOrEqual(150);
    expect(tf.fleet.ingest.counters.received).toBeLessThan(20);
    stall.release();
    await vi.waitUntil(async () => (await tf.fleet.store.countEvents()) === 1000, { timeout: 20_000, interval: 100 });
    expect(tf.fleet.ingest.counters.received).toBe(20);
  });
});
