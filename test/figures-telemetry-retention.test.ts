/** Telemetry retention on fake timers: samples older than retentionDays go at start and at every pruning pass. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TelemetryRetention } from '../fleet/figures/retention.js';
import type { TelemetryPoint } from '../fleet/figures/store.js';
import { getLogger } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { type FiguresRig, openFiguresRig } from './helpers/figures.js';

const DAY = 86_400_000;
const point = (at: number): TelemetryPoint => ({
  at: new Date(at).toISOString(),
  receivedAt: new Date(at).toISOString(),
  softwareVersion: '1.0.0',
  uptimeS: 1,
  modemState: 'ready',
  signalDbm: -80,
  registration: 'home',
  operator: null,
  simPresent: true,
  freeDiskBytes: 1,
  outboxDepth: 0,
  voicemailsPending: 0,
  configVersion: null,
});

describe('telemetry retention', () => {
  let rig: FiguresRig;
  beforeEach(async () => {
    rig = await openFiguresRig('sqlite');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'], now: Date.parse('2026-11-26T12:00:00Z') });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await rig.close();
  });

  it('deletes samples received more than retentionDays ago, at start and on its timer', async () => {
    const now = Date.now();
    for (const age of [31, 29.5, 10, 0]) await rig.figures.putTelemetry(rig.deviceId, point(now - age * DAY));
    const retention = new TelemetryRetention(rig.figures, {
      retentionDays: 30,
      everyMs: 3_600_000,
      log: getLogger('test:retention'),
    });
    expect(await retention.start()).toBe(1); // the 31-day-old one
    const count = async () => (await rig.figures.telemetryHistory(rig.deviceId, { limit: 100 })).length;
    expect(await count()).toBe(3);
    // A day later the 29.5-day-old sample is 30.5 days old: gone at the next pass, not before.
    vi.setSystemTime(now + DAY);
    expect(await count()).toBe(3);
    await vi.advanceTimersByTimeAsync(3_600_000);
    await waitFor(async () => (await count()) === 2, 'the next pass deleted the expired sample');
    // The newest sample stays on the box row whatever the history keeps.
    expect((await rig.figures.latestTelemetry(rig.deviceId))?.at).toBe(new Date(now).toISOString());
    await retention.stop();
  });
});
