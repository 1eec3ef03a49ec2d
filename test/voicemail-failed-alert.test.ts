/**
 * A voicemail whose recording fails is not reported as a voicemail: the real
 * box (modem emulator on a pty, the voicemail feature with a capture device
 * that fails mid-recording) ends the call as "voicemail_failed" with the
 * reason, the fleet stores it and its alert engine raises voicemail_failed.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlsaCaptureOptions } from '../device/audio/alsa.js';
import { SimulatedBox } from '../device/sim/box-rig.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { type AlertsFeature, alertsFeature } from '../fleet/alerts/feature.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { startTestFleet, type TestFleet } from './helpers/fleet.js';

setupLogging({ level: 'warn', destination: new MemoryLogStream() });

const SERIAL = 'CB-VMFAIL-0001';
const SECRET = 'label-secret-vmfail-0001';
const CALLER = '+15550007777';

/** A capture device that delivers a little audio, then fails the way a USB sound card pulled out does. */
class FailingCapture extends EventEmitter {
  private readonly timer: NodeJS.Timeout;
  constructor(o: AlsaCaptureOptions = {}) {
    super();
    let periods = 0;
    this.timer = setInterval(() => {
      if (++periods > 5) {
        clearInterval(this.timer);
        this.emit('error', new Error('snd_pcm_readi: No such device'));
        return;
      }
      this.emit('audio', new Uint8Array((o.periodSize ?? 160) * 2));
    }, 20);
  }
  close(): void {
    clearInterval(this.timer);
  }
}

describe('a voicemail whose recording failed', () => {
  let tf: TestFleet;
  let sim: SimulatedBox;
  let feature: AlertsFeature;
  let dataDir: string;
  let clinicId: string;

  beforeAll(async () => {
    tf = await startTestFleet({ alerts: { sweepS: 1 } }, { features: [alertsFeature()] });
    feature = tf.fleet.feature<AlertsFeature>('alerts') as AlertsFeature;
    const clinic = await tf.admin.call('clinics.create', {
      name: 'Vm Clinic',
      timezone: 'Europe/Berlin',
      phoneNumbers: [],
      answeringService: null,
      contacts: [{ name: 'alice', email: 'alice@clinic.test' }],
    });
    clinicId = clinic.id;
    await tf.admin.call('boxes.register', { serial: SERIAL, claimSecret: SECRET, clinicId });
    dataDir = mkdtempSync(join(tmpdir(), 'callbox-vmfail-'));
    sim = await SimulatedBox.start({
      serial: SERIAL,
      claimSecret: SECRET,
      brokerUrl: tf.url,
      dataDir,
      voicemail: { loadCapture: () => FailingCapture as never },
    });
    await sim.waitForState('online');
    const s = defaultSettings();
    const { version } = await tf.admin.call('boxes.setConfig', {
      box: SERIAL,
      settings: {
        ...s,
        clinic: { name: 'Vm Clinic', timezone: 'Europe/Berlin' },
        calls: { ...s.calls, inHours: 'voicemail', afterHours: 'voicemail' },
      },
    });
    await waitFor(() => sim.box.settingsVersion === version || undefined, `settings v${version} applied`, 20_000);
  }, 60_000);

  afterAll(async () => {
    await sim?.stop().catch(() => undefined);
    await tf?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('ends as voicemail_failed with the reason at the fleet, which raises voicemail_failed', async () => {
    const index = sim.emu.incomingCall(CALLER);
    await waitFor(
      () => sim.features.calls.manager.snapshot().inVoicemail || undefined,
      'the box taking a voicemail',
      20_000,
    );
    await new Promise((r) => setTimeout(r, 500)); // the caller speaks; the sound card fails meanwhile
    sim.emu.callerHangsUp(index);
    const ended = await waitFor(
      async () => {
        const list = (await tf.admin.call('events.list', { box: SERIAL, type: 'call.ended' })) as {
          body: Record<string, unknown>;
        }[];
        return list[0];
      },
      'call.ended at the fleet',
      20_000,
    );
    expect(ended.body).toMatchObject({ outcome: 'voicemail_failed', number: CALLER });
    expect(String(ended.body.voicemailError)).toContain('No such device');
    const recorded = await tf.admin.call('events.list', { box: SERIAL, type: 'voicemail.recorded' });
    expect(recorded).toEqual([]);
    const alert = await waitFor(
      () => feature.alerts?.store.getActive(clinicId, 'voicemail_failed'),
      'the alert',
      20_000,
    );
    expect(alert).toMatchObject({ severity: 'warning', state: 'open' });
    expect(alert.text).toContain('No such device');
    // The box shows it as a missed call at the desk.
    expect(sim.features.calls.manager.snapshot().missedCount).toBe(1);
  }, 60_000);
});
