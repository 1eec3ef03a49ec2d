/**
 * The after-call survey end to end: the real box with every feature on the
 * modem emulator (a socat pty), against the real fleet with the patients
 * feature. An answered call gets one survey SMS through the modem (AT+CMGS);
 * a second answered call from the same number within the window gets none;
 * a withheld caller never gets one; the caller's reply "4" arrives at the
 * modem (+CMTI) and becomes a survey.reply, counted per clinic at the fleet;
 * a second reply and any other text stay ordinary SMS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedBox } from '../device/sim/box-rig.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { type PatientsFeature, patientsFeature } from '../fleet/patients/feature.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { startTestFleet, type TestFleet } from './helpers/fleet.js';

setupLogging({ level: 'warn', destination: new MemoryLogStream() });

const SERIAL = 'CB-SURVEY-0001';
const SECRET = 'label-secret-survey-0001';
const PATIENT = '+447700900123';
const TEXT = 'How did we do? Reply 1-5';
const allDay = [{ open: '00:00', close: '24:00' }];

describe('the after-call survey through the box and the modem emulator', () => {
  let tf: TestFleet;
  let sim: SimulatedBox;
  let clinicId: string;
  let dataDir: string;

  beforeAll(async () => {
    tf = await startTestFleet({}, { features: [patientsFeature()] });
    clinicId = (
      await tf.admin.call('clinics.create', { name: 'Survey Clinic', timezone: 'UTC', phoneNumbers: [], contacts: [] })
    ).id;
    await tf.admin.call('boxes.register', { serial: SERIAL, claimSecret: SECRET, clinicId });
    dataDir = mkdtempSync(join(tmpdir(), 'callbox-survey-'));
    sim = await SimulatedBox.start({
      serial: SERIAL,
      claimSecret: SECRET,
      brokerUrl: tf.url,
      dataDir,
      ringIntervalMs: 300,
    });
    await sim.waitForState('online');
    const s = defaultSettings();
    const { version } = await tf.admin.call('boxes.setConfig', {
      box: SERIAL,
      settings: {
        ...s,
        clinic: { name: 'Survey Clinic', timezone: 'UTC' },
        hours: {
          ...s.hours,
          weekly: { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay },
        },
        calls: { ...s.calls, ringTimeoutS: 60 },
        rollover: { ...s.rollover, networkForwarding: false },
        survey: { ...s.survey, enabled: true, text: TEXT, delayS: 0, excludeNumbers: ['+1555999'] },
      },
    });
    await waitFor(() => sim.box.settingsVersion === version || undefined, `settings v${version} applied`);
  });

  afterAll(async () => {
    await sim?.stop();
    await tf?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A call rings, is answered with the handset and the caller hangs up. */
  async function answeredCall(number: string | null): Promise<void> {
    const endedBefore = await countAtFleet('call.ended');
    const index = sim.emu.incomingCall(number);
    await waitFor(() => (sim.features.calls.manager.snapshot().calls[0]?.rings ?? 0) >= 2 || undefined, 'ringing');
    await sim.liftHandset();
    await waitFor(() => sim.features.calls.manager.snapshot().inCall || undefined, 'answered');
    await waitFor(() => sim.emu.calls.find((c) => c.index === index)?.stat === 'active' || undefined, 'active');
    sim.emu.callerHangsUp(index);
    await waitFor(async () => (await countAtFleet('call.ended')) > endedBefore || undefined, 'call.ended at the fleet');
    await sim.putDownHandset();
    await sim.features.survey.sender?.idle();
  }

  async function countAtFleet(type: string): Promise<number> {
    return (await tf.admin.call('events.list', { box: SERIAL, type: type as never, limit: 100 })).length;
  }

  const surveysTo = (n: string | null) => sim.emu.smsSent.filter((m) => m.to === n && m.text === TEXT);

  it('sends one survey per number per window, never to a withheld caller, and counts the reply', async () => {
    await answeredCall(PATIENT);
    await waitFor(() => surveysTo(PATIENT).length === 1 || undefined, 'the survey SMS at the modem');
    await waitFor(async () => (await countAtFleet('survey.sent')) === 1 || undefined, 'survey.sent at the fleet');

    await answeredCall(PATIENT); // again within the window: no second survey
    await answeredCall(null); // withheld: never
    expect(sim.emu.smsSent.filter((m) => m.text === TEXT)).toHaveLength(1);

    sim.emu.receiveSms(PATIENT, '4');
    await waitFor(async () => (await countAtFleet('survey.reply')) === 1 || undefined, 'survey.reply at the fleet');
    sim.emu.receiveSms(PATIENT, '5'); // already answered: an ordinary SMS
    sim.emu.receiveSms(PATIENT, 'thanks, all good');
    await waitFor(async () => (await countAtFleet('sms.received')) === 2 || undefined, 'the other SMS as sms.received');
    expect(await countAtFleet('survey.reply')).toBe(1);

    const feature = tf.fleet.feature<PatientsFeature>('patients') as PatientsFeature;
    await feature.settled();
    expect(await tf.admin.call('surveys.summary', { clinicId })).toMatchObject({
      sent: 1,
      replies: 1,
      average: 4,
      distribution: { '1': 0, '2': 0, '3': 0, '4': 1, '5': 0 },
    });
  });
});
