/**
 * External-broker mode: the fleet generates Mosquitto's configuration
 * (dynamic security: identities and the contract's ACL), a mosquitto the
 * test starts runs it, and the same rules hold; credentials issued later
 * (claims, decommissioning) reach the running Mosquitto live.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetBus } from '../fleet/bus.js';
import { loadFleetConfig } from '../fleet/config.js';
import { Fleet } from '../fleet/fleet.js';
import { generateMosquittoConfig } from '../fleet/mosquitto.js';
import { OpsClient } from '../fleet/ops-client.js';
import { Registry } from '../fleet/registry.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../scripts/lib/mosquitto.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { claim, closed, connectClient, granted } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

describe('external Mosquitto with the generated configuration', () => {
  let dir: string;
  let store: SqliteStore;
  let mosq: RunningMosquitto;
  let fleet: Fleet;
  let admin: OpsClient;
  let url: string;
  let a: { deviceId: string; password: string };
  let b: { deviceId: string; password: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-mosq-'));
    store = await SqliteStore.open(join(dir, 'fleet.db'));
    await store.migrate();
    // Provision offline first (as a factory would), then generate Mosquitto's configuration from the store.
    const offline = new Registry({
      store,
      bus: new FleetBus(),
      sink: { put: () => undefined, revoke: () => undefined },
      mqtt: () => undefined,
      caPem: null,
      publicUrl: null,
    });
    const adminUser = await offline.createOpsUser('test', 'admin', 'admin');
    a = await offline.provision('test', 'EXT-A001');
    b = await offline.provision('test', 'EXT-B001');
    await offline.registerBox('test', { serial: 'EXT-C001', claimSecret: 'label-EXT-C001' });
    const port = await freePort();
    const gen = await generateMosquittoConfig(store, { dir: join(dir, 'mosquitto'), port });
    mosq = await startMosquitto(gen.confFile, port);
    url = `mqtt://127.0.0.1:${port}`;
    const config = loadFleetConfig(
      undefined,
      {
        mqtt: { mode: 'external', externalUrl: url, externalPasswordFile: gen.fleetSecretFile, reconnectMs: 100 },
        ingest: { flushMs: 2 },
        ops: { commandTimeoutMs: 2000 },
      },
      {},
    );
    fleet = await Fleet.start(config, { store });
    admin = await OpsClient.connect(url, 'admin', adminUser.password);
  });
  afterAll(async () => {
    await admin?.close();
    await fleet?.stop();
    await mosq?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a box event sent through Mosquitto', async () => {
    const c = await connectClient(url, { username: a.deviceId, password: a.password });
    await c.publishAsync(deviceTopics(a.deviceId).events, JSON.stringify(sampleEvent(a.deviceId, 1)), { qos: 1 });
    await expect.poll(() => store.countEvents({ deviceId: a.deviceId })).toBe(1);
    c.end(true);
  });

  it('keeps box A out of box B: no publishing as B, no subscribing to B, # or $SYS', async () => {
    const c = await connectClient(url, { username: a.deviceId, password: a.password });
    expect(
      await granted(c, [deviceTopics(b.deviceId).configDesired, `${deviceTopics(b.deviceId).root}/#`, '#', '$SYS/#']),
    ).toEqual([128, 128, 128, 128]);
    expect(await granted(c, [deviceTopics(a.deviceId).configDesired])).toEqual([1]);
    await c.publishAsync(deviceTopics(b.deviceId).events, JSON.stringify(sampleEvent(b.deviceId, 1)), { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    await fleet.ingest.drain();
    expect(await store.countEvents({ deviceId: b.deviceId })).toBe(0);
    c.end(true);
  });

  it('refuses a wrong password', async () => {
    await expect(connectClient(url, { username: a.deviceId, password: 'wrong-password-1' })).rejects.toThrow(
      /Not authorized|Bad username/i,
    );
  });

  it('lets a claim credential only claim, and gives the claimed box live credentials', async () => {
    const c = await connectClient(url, { username: 'claim:EXT-C001', password: 'label-EXT-C001' });
    expect(await granted(c, [deviceTopics(a.deviceId).configDesired, 'callbox/v1/_claim/EXT-A001/res'])).toEqual([
      128, 128,
    ]);
    c.end(true);
    const answer = await claim(url, 'EXT-C001', 'label-EXT-C001');
    expect(answer.state).toBe('approved');
    if (answer.state !== 'approved') return;
    await expect
      .poll(
        async () =>
          connectClient(url, { username: answer.username, password: answer.password }).then(
            (x) => {
              x.end(true);
              return true;
            },
            () => false,
          ),
        { timeout: 3000 },
      )
      .toBe(true);
  });

  it('disconnects a decommissioned box at once and refuses it afterwards', async () => {
    const c = await connectClient(url, { username: b.deviceId, password: b.password });
    await admin.call('boxes.decommission', { box: 'EXT-B001', reason: 'stolen' });
    expect(await closed(c, 3000)).toBe(true);
    await expect(connectClient(url, { username: b.deviceId, password: b.password })).rejects.toThrow();
  });
});
