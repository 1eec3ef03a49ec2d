/**
 * Approval is pushed: a box waiting between claim retries (claimRetryS 30) comes online within about a second
 * of `fleet claims approve`, not at its next retry. And one rule for claim secrets in both programs
 * (shared/claim-secret.ts): the box's configuration and `boxes register --secret` refuse the same secrets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Box } from '../device/box.js';
import { loadDeviceConfig } from '../device/config.js';
import { CLAIM_SECRET_MIN } from '../shared/claim-secret.js';
import { waitFor } from '../shared/wait.js';
import { runFleetCli, startTestFleet, type TestFleet } from './helpers/fleet.js';

describe('claims', () => {
  let tf: TestFleet;
  const dirs: string[] = [];
  const cli = (args: string[]) => runFleetCli(tf.url, args, tf.adminPassword);
  afterAll(async () => {
    await tf?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a waiting box is online within seconds of the approval, not at its next retry', async () => {
    tf = await startTestFleet();
    const dataDir = mkdtempSync(join(tmpdir(), 'claim-push-'));
    dirs.push(dataDir);
    const config = loadDeviceConfig(
      undefined,
      {
        box: { serial: 'CB-PUSH-0001', claimSecret: 'label-secret-push', dataDir },
        mqtt: { url: tf.url, claimRetryS: 30, reconnectMinMs: 100, reconnectMaxMs: 1000 },
      },
      {},
    );
    const box = new Box({ config, softwareVersion: 'test-1' });
    try {
      await box.start();
      await waitFor(async () => (await cli(['--json', 'claims', 'list'])).out.includes('CB-PUSH-0001'), 'the claim', {
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      // The box has its "pending" answer and sleeps 30 s before asking again.
      await waitFor(
        async () => (await tf.fleet.store.getBox('CB-PUSH-0001'))?.lastClaimRequestId != null,
        'the claim request',
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      const r = await cli(['claims', 'approve', 'CB-PUSH-0001']);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/CB-PUSH-0001 approved as cb-cb-push-0001/);
      await waitFor(() => box.state === 'online', 'online', 10_000);
      const ms = Date.now() - t0;
      console.log(`approved box online ${ms} ms after \`claims approve\` (claim retry: 30000 ms)`);
      expect(ms).toBeLessThan(5000);
      expect(box.deviceId).toBe('cb-cb-push-0001');
    } finally {
      await box.stop();
    }
  }, 60_000);

  it('one rule for claim secrets: the box configuration and boxes register refuse the same', async () => {
    const short = 's3cr3t7'.slice(0, CLAIM_SECRET_MIN - 1);
    expect(() => loadDeviceConfig(undefined, { box: { claimSecret: short } }, {})).toThrow(
      /\/box\/claimSecret: got "s3cr3t7".*length >= 8/,
    );
    const reg = await cli(['boxes', 'register', 'CB-SHORT-01', '--secret', short]);
    expect(reg.code).toBe(6);
    expect(reg.err).toMatch(/claimSecret.*8/);
    const ok = 'abcdefgh';
    expect(loadDeviceConfig(undefined, { box: { claimSecret: ok } }, {}).box.claimSecret).toBe(ok);
    expect((await cli(['boxes', 'register', 'CB-EIGHT-01', '--secret', ok])).code).toBe(0);
    expect(loadDeviceConfig(undefined, {}, {}).box.claimSecret).toBe(''); // not claimable, allowed
  });
});
