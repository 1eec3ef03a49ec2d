/**
 * The box's systemd watchdog asks more than its store: a module that says it is unhealthy (the io feature, while
 * the panic button's watcher is dead) stops the WATCHDOG=1 pings until it recovers, so systemd restarts a box whose
 * panic button no longer works instead of leaving it up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Box, type BoxModule } from '../device/box.js';
import { loadDeviceConfig } from '../device/config.js';
import { SystemdNotifier } from '../shared/systemd-notify.js';
import { waitFor } from '../shared/wait.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the box watchdog', () => {
  it('is fed only while every module that can tell says it is healthy', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'callbox-wd-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const sent: string[] = [];
    const notifier = new SystemdNotifier({
      env: { NOTIFY_SOCKET: '/run/test-notify', WATCHDOG_USEC: '60000' },
      send: async (fields) => void sent.push(fields.join(',')),
    });
    let panicWatched = true;
    const panel: BoxModule = { name: 'io', start: () => undefined, healthy: () => panicWatched };
    const config = loadDeviceConfig(undefined, {
      box: { serial: 'CB-WD-0001', claimSecret: 'watchdog-secret-1', dataDir },
      mqtt: { url: 'mqtt://127.0.0.1:9', reconnectMinMs: 1000, reconnectMaxMs: 1000 },
    });
    const box = new Box({ config, notifier, softwareVersion: 'test' });
    box.use(panel);
    await box.start();
    cleanups.push(() => box.stop());
    const pings = () => sent.filter((s) => s === 'WATCHDOG=1').length;
    await waitFor(() => pings() >= 3, 'fed while healthy');
    panicWatched = false;
    await new Promise((r) => setTimeout(r, 100));
    const stalled = pings();
    await new Promise((r) => setTimeout(r, 300));
    expect(pings()).toBe(stalled);
    panicWatched = true;
    await waitFor(() => pings() > stalled + 1, 'fed again');
  });
});
