/**
 * The box program as systemd runs it (callbox-device --config <file>), in
 * its own process against a real broker: a corrupt store found at start-up
 * is quarantined and reported to the fleet; SIGTERM shuts it down cleanly
 * (retained "offline" status with reason shutdown, store closed, exit 0).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialsFile } from '../device/uplink/credentials.js';
import { FakeFleet, startBroker } from './uplink-helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const repo = resolve(import.meta.dirname, '..');

describe('the box process', () => {
  it('quarantines a corrupt store and reports it; SIGTERM shuts down cleanly', async () => {
    const broker = await startBroker();
    cleanups.push(() => broker.close());
    const fleet = await FakeFleet.start(broker.fleetUrl);
    cleanups.push(() => fleet.close());
    const dataDir = mkdtempSync(join(tmpdir(), 'callbox-proc-'));
    await new CredentialsFile(dataDir).save({
      v: 1,
      deviceId: 'proc-box',
      username: 'proc-box',
      password: 'proc-box-password-123',
      caPem: null,
      brokerUrl: null,
      provisionedAt: new Date().toISOString(),
    });
    writeFileSync(join(dataDir, 'box.db'), 'this is not a database, it is what a torn SD card left behind'.repeat(100));
    const configFile = join(dataDir, 'device.yaml');
    writeFileSync(
      configFile,
      [
        'box:',
        '  serial: CB-PROC-0001',
        `  dataDir: ${dataDir}`,
        'mqtt:',
        `  url: ${broker.url}`,
        '  reconnectMinMs: 100',
        '  reconnectMaxMs: 1000',
        'log:',
        '  level: info',
        '',
      ].join('\n'),
    );
    const proc = spawn(process.execPath, ['--import', 'tsx', join(repo, 'device', 'main.ts'), '--config', configFile], {
      cwd: repo,
      env: { ...process.env, CALLBOX_LOG_FORMAT: 'json', CALLBOX_LOG_LEVEL: 'info', NOTIFY_SOCKET: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    cleanups.push(async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });

    await fleet.waitFor(
      () => fleet.statuses.some((s) => s.deviceId === 'proc-box' && s.status.state === 'online'),
      60_000, // a box process starting (tsx, SQLite, MQTT): 20 s was not enough at load 20 on 2 cores
      'box online',
    );
    await fleet.events.waitFor(() => fleet.events.count() >= 1, 10_000);
    const reported = fleet.events.byDevice.get('proc-box')?.[0];
    expect(reported?.type).toBe('store.quarantined');
    expect(JSON.stringify(reported?.body)).toMatch(/box\.db\.corrupt-/);
    expect(readdirSync(dataDir).some((n) => n.startsWith('box.db.corrupt-'))).toBe(true);

    proc.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('hung'), 15_000))]);
    expect(code, out.slice(-2000)).toBe(0);
    await fleet.waitFor(
      () => fleet.statuses.some((s) => s.status.state === 'offline' && s.status.reason === 'shutdown'),
      5000,
      'offline status',
    );
    expect(out).toMatch(/"msg":"box stopped"/);
    // The store was checkpointed and closed: nothing left in the WAL.
    const wal = join(dataDir, 'box.db-wal');
    expect(readdirSync(dataDir).includes('box.db-wal') ? statSync(wal).size : 0).toBe(0);
  }, 40_000);
});
