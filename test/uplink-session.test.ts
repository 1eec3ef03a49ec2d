/**
 * The uplink session supervisor (device/uplink/session.ts) against a real
 * aedes broker that refuses the box's credentials, over and over: the
 * refusal backoff must not leave an abort listener behind per refusal (it
 * did: one per wait, for the life of the box), and stop() ends it at once.
 */
import { getEventListeners } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDeviceConfig } from '../device/config.js';
import { Store } from '../device/store/store.js';
import { CommandCache } from '../device/uplink/command-cache.js';
import { CredentialsFile } from '../device/uplink/credentials.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { UplinkSession, type UplinkState } from '../device/uplink/session.js';
import { Settings } from '../device/uplink/settings.js';
import { newBootId } from '../shared/ids.js';
import { getLogger, MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { startBroker } from './uplink-helpers.js';

const logs = new MemoryLogStream();
setupLogging({ level: 'warn', destination: logs });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('uplink session: refusals', () => {
  it('many refusals in a row leave no abort listener behind, and stop() ends the backoff at once', async () => {
    const broker = await startBroker();
    cleanups.push(() => broker.close());
    broker.accounts = new Map([['someone-else', 'x']]); // the box's device credentials are refused (CONNACK 4)
    const dataDir = mkdtempSync(join(tmpdir(), 'callbox-session-'));
    const loaded = loadDeviceConfig(
      undefined,
      { box: { serial: 'CB-SESSION-1', claimSecret: 'label-secret-1234', dataDir }, mqtt: { url: broker.url } },
      {},
    );
    // Waits far below the configurable minimum, so that many refusals take little time.
    const config = { ...loaded, mqtt: { ...loaded.mqtt, reconnectMinMs: 1, reconnectMaxMs: 4 } };
    const credentials = new CredentialsFile(dataDir);
    await credentials.save({
      v: 1,
      provisionedAt: new Date().toISOString(),
      deviceId: 'clinic-refused',
      username: 'clinic-refused',
      password: 'refused-password-0123456789',
      caPem: null,
      brokerUrl: null,
    });
    const store = await Store.open({ file: join(dataDir, 'box.db'), migrations: { uplink: UPLINK_MIGRATIONS } });
    cleanups.push(() => store.close());
    const outbox = new Outbox(store, { bootId: newBootId(), maxEvents: 100, publishBatch: 10, minFreeBytes: 1 });
    await outbox.open();
    const settings = new Settings(dataDir);
    await settings.load();
    const log = getLogger('test:session');
    const states: UplinkState[] = [];
    const session = new UplinkSession({
      config,
      bootId: newBootId(),
      softwareVersion: () => 'test-1',
      credentials,
      outbox,
      handlers: {},
      commands: new CommandCache(() => store, log),
      settings,
      onState: (s) => states.push(s),
      onReport: () => undefined,
      random: () => 0,
      revokeAfterRefusals: 1_000_000,
      log,
    });
    const refusals = () => logs.lines.filter((l) => l.msg === 'the broker refused the device credentials').length;
    session.start();
    cleanups.push(() => session.stop());
    let most = 0;
    await waitFor(
      () => {
        most = Math.max(most, getEventListeners(session.signal, 'abort').length);
        return refusals() >= 25;
      },
      '25 refusals',
      20_000,
    );
    // A backoff wait holds one listener while it runs (claim and config retries hold none here).
    expect(most).toBeLessThanOrEqual(1);
    expect(getEventListeners(session.signal, 'abort').length).toBeLessThanOrEqual(1);
    expect(states).not.toContain('revoked');
    expect(states).not.toContain('online');
    const t0 = Date.now();
    await session.stop();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(getEventListeners(session.signal, 'abort')).toHaveLength(0);
    expect(session.link).toBeUndefined();
  });
});
