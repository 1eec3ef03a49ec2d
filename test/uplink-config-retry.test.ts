/**
 * A box asks for its desired configuration again, with backoff, until the
 * fleet answers: the real Box against a real aedes broker and the fake
 * fleet, whose first config.get answers are lost (as when the fleet restarts
 * under a box that just connected) and whose desired version is not retained
 * (a broker restart loses retained messages). Before, the box asked once and
 * ran the old version until its next reconnect.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Box } from '../device/box.js';
import { loadDeviceConfig } from '../device/config.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { FakeFleet, startBroker } from './uplink-helpers.js';

const SERIAL = 'CB-RETRY-0001';
const SECRET = 'label-secret-retry';
const DEVICE = 'clinic-retry';
const DEVICE_PW = 'device-password-retry-0123456789';

const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('config.get after connect', () => {
  it('is asked again with backoff until the fleet answers, and the desired version is applied', async () => {
    const broker = await startBroker();
    cleanups.push(() => broker.close());
    broker.accounts = new Map([
      [`claim:${SERIAL}`, SECRET],
      ['fleet:core', 'x'],
      [DEVICE, DEVICE_PW],
    ]);
    const fleet = await FakeFleet.start(broker.fleetUrl);
    cleanups.push(() => fleet.close());
    fleet.approvals.set(SERIAL, { deviceId: DEVICE, password: DEVICE_PW });
    // Desired version 2 exists at the fleet, but no retained message carries it; the first two asks are lost.
    fleet.desired.set(DEVICE, {
      v: 1,
      version: 2,
      at: new Date().toISOString(),
      settings: { ...defaultSettings(), calls: { ...defaultSettings().calls, ringTimeoutS: 40 } },
    });
    fleet.dropConfigGets = 2;
    const dataDir = mkdtempSync(join(tmpdir(), 'callbox-retry-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const config = loadDeviceConfig(
      undefined,
      {
        box: { serial: SERIAL, claimSecret: SECRET, dataDir },
        mqtt: {
          url: broker.url,
          keepaliveS: 5,
          connectTimeoutMs: 2000,
          reconnectMinMs: 100,
          reconnectMaxMs: 1000,
          requestTimeoutMs: 1000,
          claimRetryS: 1,
        },
      },
      {},
    );
    const box = new Box({ config, softwareVersion: 'test-1' });
    cleanups.push(() => box.stop());
    await box.start();
    await waitFor(() => box.settingsVersion === 2, 'desired version 2 applied', 20_000);
    expect(box.settings.calls.ringTimeoutS).toBe(40);
    expect(fleet.configGets).toBe(3);
    await fleet.waitFor(() => fleet.reported.some((r) => r.report.version === 2), 5000, 'report of v2');
    expect(logs.lines.filter((l) => l.msg === 'configuration fetch failed; asking again')).toHaveLength(2);
  }, 60_000);
});
