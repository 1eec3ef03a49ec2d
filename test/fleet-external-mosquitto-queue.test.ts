/**
 * External Mosquitto keeps the fleet's events while the fleet is away, and
 * never drops them silently: the generated configuration turns persistence
 * on (the fleet's queued events survive a Mosquitto restart) and bounds the
 * queue by configuration; when the queue overflows, Mosquitto logs it and
 * the fleet reads the drop from $SYS and logs it as an error and says it on
 * its bus (BrokerQueueWatch). The queue bound is tiny here (30) to overflow
 * it with a few events.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKER_SYS_TOPICS, BrokerQueueWatch } from '../fleet/broker/queue-watch.js';
import { FleetBus } from '../fleet/bus.js';
import { type FleetConfig, loadFleetConfig } from '../fleet/config.js';
import { Fleet } from '../fleet/fleet.js';
import { generateMosquittoConfig } from '../fleet/mosquitto.js';
import { Registry } from '../fleet/registry.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../scripts/lib/mosquitto.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { connectClient } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

describe("BrokerQueueWatch: the broker's queue from its $SYS figures", () => {
  it('warns at half, errs at 80 %, clears below 40 %, and reports every drop', () => {
    const bus = new FleetBus();
    const seen: string[] = [];
    bus.on('broker.queue', {}, (s) => {
      seen.push(`${s.level}:${s.stored}:${s.dropped}`);
    });
    const w = new BrokerQueueWatch(bus, 1000);
    const say = (topic: string, n: number | string) => w.onSys(topic, Buffer.from(String(n)));
    say(BROKER_SYS_TOPICS.stored, 100);
    say(BROKER_SYS_TOPICS.dropped, 0);
    expect(seen).toEqual([]);
    say(BROKER_SYS_TOPICS.stored, 500);
    say(BROKER_SYS_TOPICS.stored, 850);
    say(BROKER_SYS_TOPICS.stored, 600); // still critical until it falls below 40 %
    say(BROKER_SYS_TOPICS.stored, 300);
    say(BROKER_SYS_TOPICS.dropped, 7);
    expect(seen).toEqual(['filling:500:0', 'critical:850:0', 'ok:300:0', 'ok:300:7']);
    expect(say(BROKER_SYS_TOPICS.stored, 'lots')).toBe(true); // not a number: ignored
    expect(w.state.stored).toBe(300);
    expect(w.onSys('$SYS/broker/uptime', Buffer.from('5 seconds'))).toBe(false);
    // drops that happened before the fleet looked are reported at its first reading
    const late = new BrokerQueueWatch(bus, 1000);
    late.onSys(BROKER_SYS_TOPICS.dropped, Buffer.from('12'));
    expect(seen.at(-1)).toBe('ok:null:12');
  });
});

describe('external Mosquitto keeps the fleet events and never drops them silently', () => {
  let dir: string;
  let store: SqliteStore;
  let mosq: RunningMosquitto;
  let conf: string;
  let port: number;
  let config: FleetConfig;
  let box: { deviceId: string; password: string };
  let url: string;
  const bootId = newBootId();
  let seq = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-mosq-queue-'));
    store = await SqliteStore.open(join(dir, 'fleet.db'));
    await store.migrate();
    const offline = new Registry({
      store,
      bus: new FleetBus(),
      sink: { put: () => undefined, revoke: () => undefined },
      mqtt: () => undefined,
      caPem: null,
      publicUrl: null,
    });
    await offline.createOpsUser('test', 'admin', 'admin');
    box = await offline.provision('test', 'QUEUE-001');
    port = await freePort();
    const gen = await generateMosquittoConfig(store, {
      dir: join(dir, 'mosquitto'),
      port,
      maxQueuedMessages: 30,
      sysIntervalS: 1,
    });
    conf = gen.confFile;
    mosq = await startMosquitto(conf, port);
    url = `mqtt://127.0.0.1:${port}`;
    config = loadFleetConfig(
      undefined,
      {
        mqtt: { mode: 'external', externalUrl: url, externalPasswordFile: gen.fleetSecretFile, reconnectMs: 100 },
        ingest: { flushMs: 2 },
      },
      {},
    );
    // The fleet's persistent session exists on the broker once it has subscribed.
    const first = await Fleet.start(config, { store, onBootstrapAdmin: () => undefined });
    await first.stop();
  });
  afterAll(async () => {
    await mosq?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function sendWhileFleetAway(n: number): Promise<void> {
    const c = await connectClient(url, { username: box.deviceId, password: box.password });
    for (let i = 0; i < n; i++) {
      await c.publishAsync(
        deviceTopics(box.deviceId).events,
        JSON.stringify(sampleEvent(box.deviceId, ++seq, bootId)),
        {
          qos: 1,
        },
      );
    }
    await c.endAsync();
  }

  it('writes persistence and the queue bound into the configuration', () => {
    const text = readFileSync(conf, 'utf8');
    expect(text).toMatch(/^persistence true$/m);
    expect(text).toMatch(new RegExp(`^persistence_location ${join(dir, 'mosquitto', 'data')}/$`, 'm'));
    expect(text).toMatch(/^max_queued_messages 30$/m);
    expect(text).toMatch(/^max_queued_bytes \d+$/m);
    expect(text).toMatch(/^log_type notice$/m);
  });

  it("keeps the fleet's queued events across a Mosquitto restart", async () => {
    await sendWhileFleetAway(20);
    await mosq.stop(); // SIGTERM: Mosquitto saves its store
    mosq = await startMosquitto(conf, port);
    const fleet = await Fleet.start(config, { store, onBootstrapAdmin: () => undefined });
    try {
      await expect.poll(() => store.countEvents({ deviceId: box.deviceId }), { timeout: 15_000 }).toBe(20);
    } finally {
      await fleet.stop();
    }
  });

  it('reports a full queue: Mosquitto logs the drop, the fleet reads it from $SYS', async () => {
    const before = await store.countEvents({ deviceId: box.deviceId });
    await sendWhileFleetAway(80); // the bound is 30 queued (+ in flight)
    const fleet = await Fleet.start(config, { store, onBootstrapAdmin: () => undefined });
    try {
      await expect.poll(() => fleet.metrics().brokerQueue?.dropped ?? 0, { timeout: 15_000 }).toBeGreaterThan(0);
      const dropped = fleet.metrics().brokerQueue?.dropped ?? 0;
      await expect
        .poll(async () => (await store.countEvents({ deviceId: box.deviceId })) - before, { timeout: 15_000 })
        .toBe(80 - dropped);
      expect(mosq.output()).toMatch(/Outgoing messages are being dropped for client fleet:core/);
    } finally {
      await fleet.stop();
    }
  });
});
