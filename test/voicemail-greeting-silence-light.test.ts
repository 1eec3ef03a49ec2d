/**
 * The caller's side of voicemail through the real box (modem emulator on a
 * pty, the real alsa-capture binding and aplay on ALSA file PCMs defined in
 * an asoundrc) and a real fleet over MQTT:
 *  - after hours the modem speaks the after-hours greeting (AT+CTTS, played
 *    to the caller after AT+CDTAM=1) and sends the tone (AT+VTS), then the
 *    message ends on trailing silence and the box hangs up;
 *  - a message of silence only is kept and marked empty; one that reaches
 *    voicemail.maxLengthS ends there;
 *  - at lunch a WAV greeting is played through aplay into the playback PCM;
 *  - a caller who hangs up during the greeting leaves no recording (call
 *    abandoned) and the box goes on;
 *  - the voicemail light is on while voicemails are unheard, stays on across
 *    a restart of the box, and goes out once the fleet's voicemail.heard
 *    (ops) reached the box for each of them, also those heard while the box
 *    was offline (queued in its persistent session).
 * The capture PCM is made in the test (tone, then silence); ALSA's file
 * plugin delivers it faster than real time, so durations measured on the
 * PCM (4 s of silence, 10 s of maximum) take milliseconds of wall time.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedBox } from '../device/sim/box-rig.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { wavOf } from '../device/voicemail/vault.js';
import { alertsFeature } from '../fleet/alerts/feature.js';
import type { DeviceSettings } from '../shared/contract/settings.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { startTestFleet, type TestFleet } from './helpers/fleet.js';

setupLogging({ level: 'warn', destination: new MemoryLogStream() });

const SERIAL = 'CB-GREET-0001';
const SECRET = 'label-secret-greet-0001';
const CALLER = '+15550004444';
const RATE = 8000;
const AFTER_HOURS_TEXT = 'We are closed now. Please leave your name and number after the tone.';

function tone(ms: number, amplitude = 8000): Buffer {
  const n = Math.round((RATE * ms) / 1000);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * 440 * i) / RATE)), i * 2);
  return b;
}
const silence = (ms: number) => Buffer.alloc(Math.round((RATE * ms) / 1000) * 2);

interface Ev {
  body: Record<string, unknown>;
}

describe('greeting, silence and the voicemail light', () => {
  let tf: TestFleet;
  let sim: SimulatedBox;
  let dir: string;
  let captureFile: string;
  let playedFile: string;
  let greetingWav: string;
  let greetingPcm: Buffer;
  const recorded: string[] = [];

  const start = () =>
    SimulatedBox.start({
      serial: SERIAL,
      claimSecret: SECRET,
      brokerUrl: tf.url,
      dataDir: join(dir, 'box'),
      ringIntervalMs: 300,
      config: { audio: { captureDevice: 'vmcap', playbackDevice: 'modemout' } },
    });

  async function configure(change: (s: DeviceSettings) => void): Promise<void> {
    const s = defaultSettings();
    s.clinic = { name: 'Greeting Clinic', timezone: 'UTC' };
    s.calls = { ...s.calls, inHours: 'voicemail', afterHours: 'voicemail' };
    change(s);
    const { version } = await tf.admin.call('boxes.setConfig', { box: SERIAL, settings: s });
    await waitFor(() => sim.box.settingsVersion === version || undefined, `settings v${version} applied`, 20_000);
  }

  const events = async (type: 'voicemail.recorded' | 'call.ended') =>
    (await tf.admin.call('events.list', { box: SERIAL, type })) as Ev[];

  /** A call answered for voicemail; resolves with its call id once the box took it. */
  async function call(): Promise<{ index: number; callId: string }> {
    const index = sim.emu.incomingCall(CALLER);
    const callId = await waitFor(
      () => sim.features.calls.manager.snapshot().calls.find((c) => c.phase === 'voicemail')?.callId,
      'the box answering for voicemail',
      20_000,
    );
    return { index, callId };
  }

  async function recordedAtFleet(callId: string): Promise<Record<string, unknown>> {
    const e = await waitFor(
      async () => (await events('voicemail.recorded')).find((x) => x.body.callId === callId),
      `voicemail.recorded of ${callId} at the fleet`,
      20_000,
    );
    recorded.push(e.body.voicemailId as string);
    return e.body;
  }

  const light = () => sim.vio.level(sim.pinmap.signals['led.voicemail'].gpio);
  const lineFree = () => waitFor(() => sim.emu.calls.length === 0, 'the box hanging up', 20_000);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'callbox-greet-'));
    captureFile = join(dir, 'capture.raw');
    playedFile = join(dir, 'played.raw');
    greetingWav = join(dir, 'lunch.wav');
    greetingPcm = tone(300, 5000);
    writeFileSync(greetingWav, wavOf(greetingPcm, RATE));
    writeFileSync(captureFile, silence(100));
    writeFileSync(
      join(dir, 'asound.conf'),
      [
        '</usr/share/alsa/alsa.conf>',
        `pcm.vmcap {\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "${captureFile}"\n format "raw"\n}`,
        `pcm.modemout {\n type file\n slave.pcm "null"\n file "${playedFile}"\n format "raw"\n}`,
        '',
      ].join('\n'),
    );
    process.env.ALSA_CONFIG_PATH = join(dir, 'asound.conf');
    tf = await startTestFleet({ alerts: { sweepS: 1 } }, { features: [alertsFeature()] });
    const clinic = await tf.admin.call('clinics.create', {
      name: 'Greeting Clinic',
      timezone: 'UTC',
      phoneNumbers: [],
      answeringService: null,
      contacts: [{ name: 'alice', email: 'alice@clinic.test' }],
    });
    await tf.admin.call('boxes.register', { serial: SERIAL, claimSecret: SECRET, clinicId: clinic.id });
    sim = await start();
    await sim.waitForState('online');
    sim.emu.ttsMsPerChar = 2;
  }, 60_000);

  afterAll(async () => {
    await sim?.stop().catch(() => undefined);
    await tf?.close();
    delete process.env.ALSA_CONFIG_PATH;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('after hours: the modem speaks the after-hours greeting, the message ends on silence, the box hangs up', async () => {
    await configure((s) => {
      s.voicemail.greeting.afterHours = { mode: 'tts', text: AFTER_HOURS_TEXT, file: null };
    });
    writeFileSync(captureFile, Buffer.concat([tone(1000), silence(6000)]));
    const { callId } = await call();
    const body = await recordedAtFleet(callId);
    expect(sim.emu.spoken).toEqual([{ text: AFTER_HOURS_TEXT, command: 'AT+CTTS', remote: true }]);
    const cmds = sim.emu.commands;
    expect(cmds.indexOf('AT+CDTAM=1')).toBeGreaterThan(cmds.indexOf('ATA'));
    expect(cmds.indexOf(`AT+CTTS=2,"${AFTER_HOURS_TEXT}"`)).toBeGreaterThan(cmds.indexOf('AT+CDTAM=1'));
    // then the tone that marks the start of the recording
    expect(cmds.indexOf('AT+VTS=1,5')).toBeGreaterThan(cmds.indexOf(`AT+CTTS=2,"${AFTER_HOURS_TEXT}"`));
    expect(sim.emu.tones).toEqual([{ dtmf: '1', durationMs: 500 }]);
    // 1 s of tone, then the 4 s of silence (voicemail.silenceEndS) that ended it
    expect(body).toMatchObject({ endedBy: 'silence', empty: false, durationMs: 5000, number: CALLER });
    await lineFree();
    const ended = await waitFor(
      async () => (await events('call.ended')).find((x) => x.body.callId === callId),
      'call.ended',
      20_000,
    );
    expect(ended.body.outcome).toBe('voicemail');
    await waitFor(() => light() > 0, 'the voicemail light on');
    expect(sim.features.voicemail.unheard).toBe(1);
  }, 60_000);

  it('a message of silence only is kept and marked empty', async () => {
    writeFileSync(captureFile, silence(8000));
    const { callId } = await call();
    expect(await recordedAtFleet(callId)).toMatchObject({ endedBy: 'silence', empty: true, durationMs: 4000 });
    await lineFree();
    expect(sim.features.voicemail.unheard).toBe(2);
  }, 60_000);

  it('a message that reaches voicemail.maxLengthS ends there', async () => {
    await configure((s) => {
      s.voicemail.maxLengthS = 10;
    });
    writeFileSync(captureFile, tone(12_000));
    const { callId } = await call();
    expect(await recordedAtFleet(callId)).toMatchObject({ endedBy: 'max', empty: false, durationMs: 10_000 });
    await lineFree();
  }, 60_000);

  it('at lunch a WAV greeting is played into the modem audio device through aplay', async () => {
    await configure((s) => {
      const open = [{ open: '00:00', close: '23:59' }];
      s.hours.weekly = { mon: open, tue: open, wed: open, thu: open, fri: open, sat: open, sun: open };
      s.hours.lunch = { start: '00:00', end: '23:59' };
      s.voicemail.greeting.lunch = { mode: 'wav', text: 'unused', file: greetingWav };
    });
    writeFileSync(captureFile, Buffer.concat([tone(500), silence(5000)]));
    const greeted = new Promise((resolve) => sim.features.voicemail.once('greeting', resolve));
    const { callId } = await call();
    expect(await greeted).toMatchObject({ callId, situation: 'lunch', mode: 'wav', result: 'played' });
    expect(readFileSync(playedFile).subarray(0, greetingPcm.length).equals(greetingPcm)).toBe(true);
    expect(sim.emu.tones).toHaveLength(2); // the tone after the WAV greeting too
    expect(await recordedAtFleet(callId)).toMatchObject({ endedBy: 'silence', empty: false });
    await lineFree();
  }, 60_000);

  it('a caller who hangs up during the greeting leaves no recording, and the box goes on', async () => {
    await configure((s) => {
      s.voicemail.greeting.afterHours = { mode: 'tts', text: AFTER_HOURS_TEXT, file: null };
    });
    sim.emu.ttsMsPerChar = 1000; // a greeting of a minute: the caller will not wait
    const spoken = sim.emu.spoken.length;
    const tonesBefore = sim.emu.tones.length;
    const { index, callId } = await call();
    await waitFor(() => sim.emu.spoken.length > spoken, 'the greeting playing');
    sim.emu.callerHangsUp(index);
    const ended = await waitFor(
      async () => (await events('call.ended')).find((x) => x.body.callId === callId),
      'call.ended',
      20_000,
    );
    expect(ended.body.outcome).toBe('abandoned');
    expect(ended.body.voicemailError).toBeUndefined();
    expect(sim.emu.tones).toHaveLength(tonesBefore); // no tone: the greeting never finished
    expect((await events('voicemail.recorded')).some((x) => x.body.callId === callId)).toBe(false);
    expect(sim.emu.commands).toContain('AT+CTTS=0'); // the box stopped its greeting
    sim.emu.ttsMsPerChar = 2;
    // The next caller gets the whole thing.
    writeFileSync(captureFile, Buffer.concat([tone(300), silence(5000)]));
    const next = await call();
    expect(await recordedAtFleet(next.callId)).toMatchObject({ endedBy: 'silence' });
    await lineFree();
  }, 60_000);

  it('the light survives a restart; voicemail.heard reaches a box that was offline, and the light goes out', async () => {
    expect(recorded).toHaveLength(5);
    await waitFor(() => sim.features.voicemail.unheard === 5, 'five unheard at the box');
    await sim.stop();
    // Heard while the box is off: the commands wait in its persistent session at the broker.
    for (const voicemailId of recorded.slice(0, -1)) await tf.admin.call('voicemail.heard', { voicemailId });
    sim = await start();
    await sim.waitForState('online');
    await waitFor(() => sim.features.voicemail.unheard === 1, 'the queued voicemail.heard commands applied');
    await waitFor(() => light() > 0, 'the voicemail light on after the restart (one still unheard)');
    await tf.admin.call('voicemail.heard', { voicemailId: recorded.at(-1) as string });
    await waitFor(() => sim.features.voicemail.unheard === 0, 'all heard at the box');
    await waitFor(() => light() === 0, 'the voicemail light off');
  }, 60_000);
});
