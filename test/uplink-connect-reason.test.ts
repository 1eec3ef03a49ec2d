/**
 * The box says why it cannot reach the fleet: each failed connection's reason is logged once per change, at warn
 * (not at every retry, not only at debug); a claiming box with the fleet down says so within a few seconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Box } from '../device/box.js';
import { loadDeviceConfig } from '../device/config.js';
import { Link } from '../device/uplink/link.js';
import { newBootId } from '../shared/ids.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';

const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });

async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('connection failures', () => {
  it('a link logs the reason once per change, at warn, while it keeps retrying', async () => {
    const port = await deadPort();
    const url = `mqtt://127.0.0.1:${port}`;
    const link = new Link({
      url,
      caPem: null,
      identity: { kind: 'device', id: 'x-box', username: 'x-box', password: 'p' },
      keepaliveS: 5,
      connectTimeoutMs: 1000,
      reconnectMinMs: 50,
      reconnectMaxMs: 100,
      bootId: newBootId(),
      softwareVersion: 't',
    });
    let attempts = 0;
    link.on('state', (s) => {
      if (s === 'connecting') attempts++;
    });
    const from = logs.lines.length;
    link.start();
    try {
      await waitFor(() => attempts >= 6, 'six attempts', 15_000);
      const warns = logs.lines
        .slice(from)
        .filter((l) => String(l.msg).startsWith('cannot connect to the fleet broker'));
      expect(warns).toHaveLength(1);
      expect(warns[0]).toMatchObject({ level: 'warn', url });
      expect(String(warns[0]?.reason)).toMatch(/ECONNREFUSED/);
      expect(String(warns[0]?.msg)).toContain(`127.0.0.1:${port}`); // the address, not masked
    } finally {
      await link.kill();
    }
  });

  it('a claiming box with the fleet down says so within a few seconds', async () => {
    const port = await deadPort();
    const dataDir = mkdtempSync(join(tmpdir(), 'connect-reason-'));
    dirs.push(dataDir);
    const config = loadDeviceConfig(
      undefined,
      {
        box: { serial: 'CB-DOWN-0001', claimSecret: 'label-secret-down', dataDir },
        mqtt: { url: `mqtt://127.0.0.1:${port}` },
      },
      {},
    );
    const box = new Box({ config, softwareVersion: 't' });
    const from = logs.lines.length;
    const t0 = Date.now();
    await box.start();
    try {
      await waitFor(
        () => logs.lines.slice(from).some((l) => String(l.msg).startsWith('cannot connect to the fleet broker')),
        'the reason logged',
        10_000,
      );
      const ms = Date.now() - t0;
      console.log(`claiming box, fleet down: reason logged after ${ms} ms`);
      expect(ms).toBeLessThan(5000);
    } finally {
      await box.stop();
    }
  });
});
