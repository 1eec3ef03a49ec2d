/**
 * The whole box against the whole fleet, on real transports: the Box with
 * every feature module (device/features), the modem emulator on a socat
 * pty, the virtual johnny-five board and SQLite in a temp folder, claiming
 * at the real fleet (embedded aedes on an ephemeral port, SQLite).
 *
 * Registered in advance, the box claims and is approved, applies the
 * settings the fleet publishes, and its calls and panic presses end as
 * events stored at the fleet.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedBox } from '../device/sim/box-rig.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { startTestFleet, type TestFleet } from './helpers/fleet.js';

setupLogging({ level: 'warn', destination: new MemoryLogStream() });

const SERIAL = 'CB-INT-0001';
const SECRET = 'label-secret-int-0001';
const CALLER = '+15557654321';
const ANSWERING_SERVICE = '+15550009999';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Stored = { type: string; body: Record<string, unknown>; deviceId: string };

async function stored(tf: TestFleet, type: string): Promise<Stored[]> {
  return (await tf.admin.call('events.list', { box: SERIAL, type: type as never, limit: 100 })) as Stored[];
}

describe('the box with all its features against the fleet', () => {
  it('claims, applies settings, and reports an answered call and a panic press to the fleet', async () => {
    const tf = await startTestFleet();
    cleanups.push(() => tf.close());
    const clinic = await tf.admin.call('clinics.create', {
      name: 'Integration Clinic',
      timezone: 'Europe/Berlin',
      phoneNumbers: [],
      contacts: [],
    });
    await tf.admin.call('boxes.register', { serial: SERIAL, claimSecret: SECRET, clinicId: clinic.id });

    const dataDir = mkdtempSync(join(tmpdir(), 'callbox-int-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const sim = await SimulatedBox.start({
      serial: SERIAL,
      claimSecret: SECRET,
      brokerUrl: tf.url,
      dataDir,
      ringIntervalMs: 300,
      voicemail: {
        loadCapture: () => {
          throw new Error('no audio in this test');
        },
      },
    });
    cleanups.push(() => sim.stop());

    // claim -> approved (registered in advance) -> online as the device
    await sim.waitForState('online');
    const deviceId = sim.box.deviceId;
    expect(deviceId).toBeTruthy();
    const shown = await tf.admin.call('boxes.show', { box: SERIAL });
    expect(shown.box.claimState).toBe('approved');
    expect(shown.box.deviceId).toBe(deviceId);

    // settings from the fleet: open all day, rollover number, short ring timeout, fast panic
    const allDay = [{ open: '00:00', close: '24:00' }];
    const s = defaultSettings();
    const settings = {
      ...s,
      clinic: { name: 'Integration Clinic', timezone: 'Europe/Berlin' },
      hours: {
        ...s.hours,
        weekly: { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay },
      },
      calls: { ...s.calls, ringTimeoutS: 8 },
      rollover: { ...s.rollover, number: ANSWERING_SERVICE, networkForwarding: false },
      panic: { ...s.panic, holdMs: 300, ackTimeoutS: 30 },
    };
    const { version } = await tf.admin.call('boxes.setConfig', { box: SERIAL, settings });
    await until(() => sim.box.settingsVersion === version || undefined, `settings v${version} applied`);
    expect(sim.box.settings.rollover.number).toBe(ANSWERING_SERVICE);
    await until(async () => {
      const b = (await tf.admin.call('boxes.show', { box: SERIAL })).box;
      return b.reportedVersion === version && b.reportedState === 'applied' ? true : undefined;
    }, 'the fleet to see the settings applied');

    // an incoming call, answered at the desk by lifting the handset, then the caller hangs up
    const index = sim.emu.incomingCall(CALLER);
    await until(() => sim.features.calls.manager.snapshot().ringing || undefined, 'the call ringing at the box');
    expect(sim.features.io.service.indicatorState.call).toBe('ringing');
    await new Promise((r) => setTimeout(r, 700));
    await sim.liftHandset();
    await until(() => sim.features.calls.manager.snapshot().inCall || undefined, 'the call answered');
    expect(sim.emu.commands).toContain('ATA');
    await new Promise((r) => setTimeout(r, 300));
    sim.emu.callerHangsUp(index);
    const ended = await until(async () => (await stored(tf, 'call.ended'))[0], 'call.ended at the fleet');
    expect(ended.deviceId).toBe(deviceId);
    expect(ended.body).toMatchObject({ outcome: 'answered', number: CALLER, inHours: true });
    expect(ended.body.timeToAnswerMs as number).toBeGreaterThan(500);
    const answered = (await stored(tf, 'call.answered'))[0];
    expect(answered?.body).toMatchObject({ by: 'handset' });
    expect((await stored(tf, 'call.incoming')).length).toBe(1);
    await sim.putDownHandset();

    // a panic press on the virtual board reaches the fleet
    await sim.pressPanic(500);
    const pressed = await until(async () => (await stored(tf, 'panic.pressed'))[0], 'panic.pressed at the fleet');
    expect(pressed.body).toMatchObject({ source: 'gpio' });
    expect(sim.features.io.service.indicatorState.panic).not.toBe('idle');

    // the modem's health reached the fleet too
    const modemStates = await stored(tf, 'modem.state');
    expect(modemStates.map((e) => e.body.state)).toContain('ready');
  }, 30_000);
});
