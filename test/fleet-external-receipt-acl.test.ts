/**
 * External mode with a Mosquitto configured by an older fleet (its roles
 * lack the receipt topic): the fleet brings the ACLs up to the contract at
 * start, so a box can subscribe to its receipts and its outbox drains.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FleetBus } from '../fleet/bus.js';
import { loadFleetConfig } from '../fleet/config.js';
import { Fleet } from '../fleet/fleet.js';
import { generateMosquittoConfig } from '../fleet/mosquitto.js';
import { Registry } from '../fleet/registry.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../scripts/lib/mosquitto.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { connectClient, granted } from './helpers/fleet.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('external Mosquitto configured before receipts existed', () => {
  it('the fleet adds the receipt topic to every box role at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-mosq-acl-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const store = await SqliteStore.open(join(dir, 'fleet.db'));
    await store.migrate();
    cleanups.push(() => store.close());
    const registry = new Registry({
      store,
      bus: new FleetBus(),
      sink: { put: () => undefined, revoke: () => undefined },
      mqtt: () => undefined,
      caPem: null,
      publicUrl: null,
    });
    const box = await registry.provision('test', 'ACL-OLD-01');
    const port = await freePort();
    const gen = await generateMosquittoConfig(store, { dir: join(dir, 'mosquitto'), port });
    // As an older generator wrote it: no receipt topic in the roles.
    const dynsec = JSON.parse(readFileSync(gen.dynsecFile, 'utf8'));
    for (const role of dynsec.roles) {
      role.acls = role.acls.filter((a: { topic: string }) => !a.topic.endsWith('/events/receipt'));
    }
    writeFileSync(gen.dynsecFile, JSON.stringify(dynsec));
    const mosq: RunningMosquitto = await startMosquitto(gen.confFile, port);
    cleanups.push(() => mosq.stop());
    const url = `mqtt://127.0.0.1:${port}`;
    const receipt = deviceTopics(box.deviceId).receipt;
    const before = await connectClient(url, { username: box.deviceId, password: box.password });
    expect(await granted(before, [receipt])).toEqual([128]);
    before.end(true);
    const config = loadFleetConfig(
      undefined,
      { mqtt: { mode: 'external', externalUrl: url, externalPasswordFile: gen.fleetSecretFile, reconnectMs: 100 } },
      {},
    );
    const fleet = await Fleet.start(config, { store, onBootstrapAdmin: () => undefined });
    cleanups.push(() => fleet.stop());
    await expect
      .poll(
        async () => {
          const c = await connectClient(url, { username: box.deviceId, password: box.password });
          try {
            return await granted(c, [receipt]);
          } finally {
            c.end(true);
          }
        },
        { timeout: 10_000, interval: 200 },
      )
      .toEqual([1]);
  });
});
