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

import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlsaCaptureOptions } from '../device/audio/alsa.js';
import { SimulatedBox } from '../device/sim/box-rig.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { voicemailFeature } from '../fleet/voicemail/feature.js';
import type { StoredVoicemail } from '../fleet/voicemail/receiver.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
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

/** Stands in for alsa-capture (the capture seam): a tone in 20 ms periods, as the sound card would deliver it. */
class ToneCapture extends EventEmitter {
  private readonly timer: NodeJS.Timeout;
  constructor(o: AlsaCaptureOptions = {}) {
    super();
    const period = o.periodSize ?? 160;
    const rate = o.rate ?? 8000;
    let n = 0;
    this.timer = setInterval(
      () => {
        const b = Buffer.alloc(period * 2);
        for (let i = 0; i < period; i++) b.writeInt16LE(Math.round(8000 * Math.sin(n++ / 5)), i * 2);
        this.emit('audio', new Uint8Array(b));
      },
      (period / rate) * 1000,
    );
  }
  close(): void {
    clearInterval(this.timer);
    this.emit('close');
  }
}

type Stored = { type: string; body: Record<string, unknown>; deviceId: string };

async function stored(tf: TestFleet, type: string): Promise<Stored[]> {
  return (await tf.admin.call('events.list', { box: SERIAL, type: type as never, limit: 100 })) as Stored[];
}

describe('the box with all its features against the fleet', () => {
  it('claims, applies settings, answers every command; calls, a panic press, an SMS and a voicemail reach the fleet', async () => {
    const received: StoredVoicemail[] = [];
    const tf = await startTestFleet({}, { features: [voicemailFeature((v) => void received.push(v))] });
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
      voicemail: { loadCapture: () => ToneCapture },
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
    await waitFor(() => sim.box.settingsVersion === version || undefined, `settings v${version} applied`);
    expect(sim.box.settings.rollover.number).toBe(ANSWERING_SERVICE);
    await waitFor(async () => {
      const b = (await tf.admin.call('boxes.show', { box: SERIAL })).box;
      return b.reportedVersion === version && b.reportedState === 'applied' ? true : undefined;
    }, 'the fleet to see the settings applied');

    // an incoming call, answered at the desk by lifting the handset, then the caller hangs up
    const index = sim.emu.incomingCall(CALLER);
    await waitFor(
      () => sim.features.io.service.indicatorState.call === 'ringing' || undefined,
      'the ring indicator showing the call',
    );
    expect(sim.features.io.service.outputs.leds.ring.kind).toBe('blink');
    expect(sim.features.io.service.outputs.buzzer.pattern).toBe('ring');
    // rings every 300 ms: the third RING is 600 ms after the first
    await waitFor(() => (sim.features.calls.manager.snapshot().calls[0]?.rings ?? 0) >= 3, 'the third RING');
    await sim.liftHandset();
    await waitFor(() => sim.features.calls.manager.snapshot().inCall || undefined, 'the call answered');
    expect(sim.emu.commands).toContain('ATA');
    await waitFor(() => sim.emu.calls[0]?.stat === 'active', 'the call active at the modem');
    sim.emu.callerHangsUp(index);
    const ended = await waitFor(async () => (await stored(tf, 'call.ended'))[0], 'call.ended at the fleet');
    expect(ended.deviceId).toBe(deviceId);
    expect(ended.body).toMatchObject({ outcome: 'answered', number: CALLER, inHours: true });
    expect(ended.body.timeToAnswerMs as number).toBeGreaterThan(500);
    const answered = (await stored(tf, 'call.answered'))[0];
    expect(answered?.body).toMatchObject({ by: 'handset' });
    expect((await stored(tf, 'call.incoming')).length).toBe(1);
    await sim.putDownHandset();

    // a panic press on the virtual board reaches the fleet
    await sim.pressPanic(500);
    const pressed = await waitFor(async () => (await stored(tf, 'panic.pressed'))[0], 'panic.pressed at the fleet');
    expect(pressed.body).toMatchObject({ source: 'gpio' });
    expect(sim.features.io.service.indicatorState.panic).not.toBe('idle');

    // every command the features answer, sent by ops through the fleet
    const command = (method: string, params: unknown) =>
      tf.admin.call('boxes.command', { box: SERIAL, method, params, timeoutMs: 10_000 });
    const panicId = pressed.body.panicId as string;
    expect(await command('panic.ack', { panicId, by: 'ops:test' })).toEqual({ acknowledged: true });
    expect(sim.features.io.service.indicatorState.panic).toBe('acknowledged');
    await waitFor(async () => (await stored(tf, 'panic.acknowledged'))[0], 'panic.acknowledged at the fleet');
    expect(await command('forwarding.set', { enabled: true })).toMatchObject({
      reason: 'unconditional',
      enabled: true,
      number: ANSWERING_SERVICE,
      confirmed: true,
    });
    expect(sim.emu.forwarding.get(0)).toMatchObject({ enabled: true, number: ANSWERING_SERVICE });
    const query = (await command('forwarding.query', {})) as { states: { reason: string; enabled: boolean }[] };
    expect(query.states.find((st) => st.reason === 'unconditional')?.enabled).toBe(true);
    expect(await command('forwarding.set', { enabled: false })).toMatchObject({ enabled: false, confirmed: true });
    expect(sim.emu.forwarding.get(0)?.enabled ?? false).toBe(false); // erased at the network
    const sent = (await command('sms.send', { to: '+15550003333', text: 'Your results are ready' })) as {
      parts: number;
    };
    expect(sent.parts).toBe(1);
    expect(sim.emu.smsSent.at(-1)).toMatchObject({ to: '+15550003333', text: 'Your results are ready' });
    const tested = (await command('indicators.test', { durationMs: 200 })) as { tested: string[] };
    expect(tested.tested).toContain('ring');
    expect(tested.tested).toContain('buzzer');

    // the modem's health reached the fleet too
    const modemStates = await stored(tf, 'modem.state');
    expect(modemStates.map((e) => e.body.state)).toContain('ready');

    // an SMS to the box's number is reported
    sim.emu.receiveSms('+15550004444', 'Running late for my 10:30, sorry');
    const sms = await waitFor(async () => (await stored(tf, 'sms.received'))[0], 'sms.received at the fleet');
    expect(sms.body).toMatchObject({ from: '+15550004444', text: 'Running late for my 10:30, sorry' });

    // closed now: a call goes to voicemail, recorded, uploaded to the fleet and confirmed, then deleted on the box
    const closed = { ...settings, hours: { ...settings.hours, weekly: { ...s.hours.weekly } } };
    const v2 = await tf.admin.call('boxes.setConfig', { box: SERIAL, settings: closed });
    await waitFor(() => sim.box.settingsVersion === v2.version || undefined, 'closed hours applied');
    const vmIndex = sim.emu.incomingCall(CALLER);
    await waitFor(() => sim.features.calls.manager.snapshot().inVoicemail || undefined, 'the box taking a voicemail');
    await new Promise((r) => setTimeout(r, 1000));
    sim.emu.callerHangsUp(vmIndex);
    const recorded = await waitFor(
      async () => (await stored(tf, 'voicemail.recorded'))[0],
      'voicemail.recorded at the fleet',
    );
    expect(recorded.body).toMatchObject({ number: CALLER });
    expect(recorded.body.durationMs as number).toBeGreaterThan(500);
    await waitFor(() => received[0], 'the recording stored at the fleet');
    expect(received[0]).toMatchObject({ deviceId, sha256: recorded.body.sha256, bytes: recorded.body.bytes });
    expect(existsSync(join(tf.dir, 'voicemail', deviceId as string, `${recorded.body.voicemailId}.wav`))).toBe(true);
    await waitFor(
      async () => ((await sim.features.voicemail.vault?.pending())?.length === 0 ? true : undefined),
      'local copy deleted',
    );
    const vmEnded = (await stored(tf, 'call.ended')).find((e) => e.body.outcome === 'voicemail');
    expect(vmEnded?.body).toMatchObject({ inHours: false });
  }, 30_000);
});

describe('a box whose modem is missing', () => {
  it('still claims, reports the modem disconnected and gets a panic press to the fleet', async () => {
    const tf = await startTestFleet();
    cleanups.push(() => tf.close());
    const serial = 'CB-INT-0002';
    const secret = 'label-secret-int-0002';
    await tf.admin.call('boxes.register', { serial, claimSecret: secret });
    const dataDir = mkdtempSync(join(tmpdir(), 'callbox-int-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const sim = await SimulatedBox.start({
      serial,
      claimSecret: secret,
      brokerUrl: tf.url,
      dataDir,
      modem: { path: join(dataDir, 'no-such-modem') },
      voicemail: { loadCapture: () => ToneCapture },
    });
    cleanups.push(() => sim.stop());
    await sim.waitForState('online');
    const modem = await waitFor(async () => {
      const list = (await tf.admin.call('events.list', { box: serial, type: 'modem.state' })) as Stored[];
      return list[0];
    }, 'modem.state at the fleet');
    expect(modem.body.state).toBe('disconnected');
    expect(sim.features.io.service.indicatorState.phoneLine).toBe('modem_missing');
    await sim.pressPanic(1300);
    const pressed = await waitFor(async () => {
      const list = (await tf.admin.call('events.list', { box: serial, type: 'panic.pressed' })) as Stored[];
      return list[0];
    }, 'panic.pressed at the fleet');
    expect(pressed.body).toMatchObject({ source: 'gpio' });
  }, 30_000);
});
