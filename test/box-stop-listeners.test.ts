/**
 * A stopped box holds nothing of its modules: every feature keeps the
 * removal functions the box gives it (box.handle, box.onSettings,
 * calls.onChange, box.on('state')) and calls them on stop. The real
 * features on stand-ins: no modem on the configured port (the modem feature
 * reports it disconnected), the virtual board, no HID, no audio capture,
 * and a fleet that cannot be reached (the uplink keeps claiming).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Box } from '../device/box.js';
import { loadDeviceConfig } from '../device/config.js';
import { createFeatures } from '../device/features/index.js';
import { VirtualIo } from '../device/sim/virtual-io/virtual-io.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { freePort } from './uplink-helpers.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('box stop: no listeners left', () => {
  it('the modules remove their command handlers, settings listeners and state listeners', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'callbox-stop-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const config = loadDeviceConfig(
      undefined,
      {
        box: { serial: 'CB-STOP-0001', claimSecret: 'label-secret-stop-1', dataDir },
        mqtt: { url: `mqtt://127.0.0.1:${await freePort()}`, claimRetryS: 1 },
        modem: { path: join(dataDir, 'no-such-modem') },
        io: { board: 'virtual' },
      },
      {},
    );
    const features = createFeatures(config, {
      io: { board: { virtualIo: new VirtualIo() }, hidBackend: null },
      voicemail: {
        loadCapture: () => {
          throw new CallboxError(ErrorCode.AudioUnavailable, 'no capture in this test');
        },
      },
    });
    const box = new Box({ config, softwareVersion: 'test' });
    for (const m of features.modules) box.use(m);
    const own = box.commandMethods.sort();
    expect(own).toEqual(['diagnostics.collect', 'reboot']);
    await box.start();
    cleanups.push(() => box.stop());

    // Started: the modules' commands, settings listeners (calls, io, voicemail, survey and the box's telemetry) and
    // state listeners.
    expect(box.commandMethods.sort()).toEqual(
      [
        ...own,
        'forwarding.query',
        'forwarding.set',
        'indicators.test',
        'panic.ack',
        'sms.send',
        'voicemail.heard',
      ].sort(),
    );
    expect(box.settingsListenerCount).toBe(5);
    expect(box.listenerCount('state')).toBe(2);

    await box.stop();
    expect(box.state).toBe('stopped');
    expect(box.commandMethods.sort()).toEqual(own);
    expect(box.settingsListenerCount).toBe(0);
    expect(box.listenerCount('state')).toBe(0);
    expect(box.listenerCount('settings')).toBe(0);
    expect(box.listenerCount('reported')).toBe(0);
  });
});
