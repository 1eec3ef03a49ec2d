/**
 * The demo's scenario (scripts/demo/demo.ts sets up logging, then runs this):
 * the real fleet (embedded broker on a free port, SQLite, the alert engine,
 * the call log with caller lookup in a FHIR stand-in holding a few
 * patients: scripts/sim/fhir.ts) and one simulated box (modem emulator on a
 * pty, virtual panel, the real Box with every feature module), driven
 * through a short clinic morning and narrated in plain language on the
 * console: it ends with the call log (who called), the call-back list and
 * the survey figure. Logs go to a file.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SimulatedBox } from '../../device/sim/box-rig.js';
import { defaultSettings } from '../../device/uplink/settings.js';
import { clinicAlertSettings } from '../../fleet/alerts/config.js';
import { type AlertsFeature, alertsFeature } from '../../fleet/alerts/feature.js';
import { loadFleetConfig } from '../../fleet/config.js';
import { figuresFeature } from '../../fleet/figures/feature.js';
import { Fleet } from '../../fleet/fleet.js';
import { OpsClient } from '../../fleet/ops-client.js';
import { type PatientsFeature, patientsFeature } from '../../fleet/patients/feature.js';
import { voicemailFeature } from '../../fleet/voicemail/feature.js';
import type { StoredVoicemail } from '../../fleet/voicemail/receiver.js';
import { type WebFeature, webFeature } from '../../fleet/web/server.js';
import { describeError } from '../../shared/errors.js';
import { getLogger, maskInText, maskNumber } from '../../shared/log.js';
import { DEMO_PATIENTS, type FhirStandIn, startFhirStandIn } from '../sim/fhir.js';

export interface DemoOptions {
  /** Temp folder for the fleet's and the box's data and the log file. */
  dir: string;
  logFile: string;
  keepRunning: boolean;
  /** The asoundrc defining the "caller" ALSA file PCM was written (ALSA_CONFIG_PATH is set). */
  callerAudio: boolean;
  /** Narration goes here (default: stdout). */
  out?: (line: string) => void;
}

const SERIAL = 'CB-DEMO-0001';
const LABEL_SECRET = 'label-CB-DEMO-0001-7f3a9c';
const ANSWERING_SERVICE = '+15550009999';
const ON_CALL = '+15550001001';
const CALLER_1 = '+15551230001';
const CALLER_2 = '+15551230002';
const CALLER_3 = '+15551230003';
const RING_TIMEOUT_S = 6;
const ALL_DAY = [{ open: '00:00', close: '24:00' }];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What rollover.start / rollover.stop answer (the parts the demo reads). */
interface Rollover {
  active: boolean;
  boxes: { deviceId: string; confirmed: boolean; error?: string }[];
}

/** A free TCP port on loopback (for the fleet's HTTP server, whose address goes into the alert links). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A step that did not happen in time: the demo stops with this. */
class DemoStepFailed extends Error {}

async function until<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new DemoStepFailed(`${what} did not happen within ${ms / 1000} s`);
    await sleep(50);
  }
}

interface StoredEvent {
  seq: number;
  type: string;
  at: string;
  body: Record<string, unknown>;
}

const clip = (text: string, n: number) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
const secs = (ms: unknown) => (typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : '-');
const who = (n: unknown) => (typeof n === 'string' && n ? maskNumber(n) : 'withheld');

function summary(e: StoredEvent): string {
  const b = e.body;
  switch (e.type) {
    case 'call.incoming':
      return `from ${who(b.number)}, ${b.inHours ? 'in hours' : 'after hours'}${b.repeatCaller ? ', repeat caller' : ''}`;
    case 'call.answered':
      return `by ${b.by} after ${b.rings} rings, ${secs(b.timeToAnswerMs)}`;
    case 'call.rolled_over':
      return `to ${who(b.to)} (${b.how}) after ${b.rings} rings`;
    case 'call.ended':
      return `${b.outcome}; rings ${b.rings}, answer ${secs(b.timeToAnswerMs)}, talk ${secs(b.durationMs)}`;
    case 'panic.pressed':
      return `button ${b.source}`;
    case 'panic.acknowledged':
      return `by ${b.by}`;
    case 'panic.sms':
      return `${b.status} to ${who(b.to)}`;
    case 'modem.state':
      return `${b.state}${b.detail ? ` (${b.detail})` : ''}`;
    case 'forwarding.state':
      return `${b.reason} ${b.enabled ? `on to ${who(b.number)}` : 'off'}${b.confirmed ? ', confirmed by AT+CCFC query' : ', NOT confirmed'}`;
    case 'voicemail.recorded':
      return `from ${who(b.number)}, ${secs(b.durationMs)}, ${b.bytes} bytes, sha256 ${String(b.sha256).slice(0, 12)}…`;
    case 'sms.received':
      return `from ${who(b.from)}`;
    default:
      return maskInText(JSON.stringify(b)).slice(0, 60);
  }
}

let running: (() => Promise<void>) | undefined;

/** Stop whatever the running demo started (the watchdog and signals use it); resolves when stopped. */
export async function stopDemo(): Promise<void> {
  await running?.();
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const out = o.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const log = getLogger('demo');
  const t0 = Date.now();
  const say = (text: string) => out(`  [${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${text}`);
  const step = (n: number, title: string) => out(`\n${n}. ${title}`);

  let fleet: Fleet | undefined;
  let admin: OpsClient | undefined;
  let sim: SimulatedBox | undefined;
  let fhir: FhirStandIn | undefined;
  let stage = 'starting';
  let cleaned: Promise<void> | undefined;
  const cleanup = () => {
    cleaned ??= stopAll();
    return cleaned;
  };
  running = cleanup;
  const stopAll = async () => {
    await sim?.stop().catch((e) => log.error({ err: e }, 'box stop failed'));
    await admin?.close().catch(() => undefined);
    await fleet?.stop().catch((e) => log.error({ err: e }, 'fleet stop failed'));
    await fhir?.close().catch(() => undefined);
  };

  out('Callbox demo: one clinic, one call box and the fleet, all on this machine.');
  out(`Logs (JSON, one line per entry): ${o.logFile}`);
  try {
    // ---- 1. the fleet -----------------------------------------------------------------
    stage = 'starting the fleet';
    step(1, 'The fleet');
    const httpPort = await freePort();
    const config = loadFleetConfig(
      undefined,
      {
        mqtt: { port: 0, host: '127.0.0.1', reconnectMs: 200 },
        store: { sqlitePath: join(o.dir, 'fleet.db') },
        ingest: { flushMs: 5 },
        ops: { commandTimeoutMs: 15_000 },
        http: { host: '127.0.0.1', port: httpPort },
        alerts: {
          publicUrl: `http://127.0.0.1:${httpPort}`,
          sweepS: 1,
          smsTimeoutMs: 10_000,
          forwardingTimeoutMs: 15_000,
        },
        voicemail: { dir: join(o.dir, 'fleet-voicemail') },
      },
      {},
    );
    let adminPassword = '';
    const voicemailsStored: StoredVoicemail[] = [];
    fleet = await Fleet.start(config, {
      features: [
        webFeature(),
        alertsFeature(),
        voicemailFeature((v) => {
          voicemailsStored.push(v);
        }),
        patientsFeature(),
        figuresFeature(),
      ],
      onBootstrapAdmin: (_user, password) => {
        adminPassword = password;
      },
    });
    const alerts = fleet.feature<AlertsFeature>('alerts')?.alerts;
    if (!alerts) throw new DemoStepFailed('the fleet started without its alerts feature');
    const port = fleet.broker?.ports?.tcp;
    const url = fleet.brokerUrl;
    writeFileSync(join(o.dir, 'admin.secret'), `${adminPassword}\n`, { mode: 0o600 });
    say(`fleet running with its embedded MQTT broker on 127.0.0.1:${port} (a free port; 1883 stays the machine's)`);
    admin = await OpsClient.connect(url, 'admin', adminPassword);
    say(
      `with its alert engine (panic -> critical alert -> SMS to the on-call person, through the box; links on 127.0.0.1:${httpPort}) and voicemail store`,
    );

    stage = 'registering the clinic and the box';
    const clinic = await admin.call('clinics.create', {
      name: 'Riverside Family Clinic',
      timezone: 'Europe/London',
      phoneNumbers: [],
      answeringService: ANSWERING_SERVICE,
      contacts: [{ name: 'Dr Alice', role: 'on call', phone: ON_CALL }],
    });
    await admin.call('alerts.settings.set', {
      clinicId: clinic.id,
      settings: clinicAlertSettings({
        hours: { mon: ALL_DAY, tue: ALL_DAY, wed: ALL_DAY, thu: ALL_DAY, fri: ALL_DAY, sat: ALL_DAY, sun: ALL_DAY },
      }),
    });
    fhir = await startFhirStandIn({ token: 'demo-fhir-token', patients: DEMO_PATIENTS });
    await admin.call('patients.settings.set', { clinicId: clinic.id, baseUrl: fhir.url, token: fhir.token });
    say(
      `the clinic's patient records: a FHIR R4 stand-in on ${fhir.url} with ${DEMO_PATIENTS.length} patients; the fleet looks every caller up there (bearer token kept encrypted)`,
    );
    say(
      `ops created the clinic "${clinic.name}" (answering service ${maskNumber(ANSWERING_SERVICE)}, on call: Dr Alice ${maskNumber(ON_CALL)})`,
    );
    await admin.call('boxes.register', { serial: SERIAL, claimSecret: LABEL_SECRET, clinicId: clinic.id });
    say(`ops registered box ${SERIAL} in advance, with the claim secret printed on its label`);

    // ---- 2. the box ---------------------------------------------------------------------
    stage = 'starting the box';
    step(2, 'The box joins the fleet');
    sim = await SimulatedBox.start({
      serial: SERIAL,
      claimSecret: LABEL_SECRET,
      brokerUrl: url,
      dataDir: join(o.dir, 'box'),
      ringIntervalMs: 1000,
      softwareVersion: 'demo',
      // The ALSA file PCM the demo's asoundrc defines (scripts/demo/demo.ts): the caller's voice.
      config: { audio: { captureDevice: 'caller', sampleRate: 8000 } },
    });
    const box = sim;
    say(`box started: GSM modem emulator (SIM7600) on the pty ${box.emu.path}, virtual LED/button panel`);
    box.emu.on('command', (line: string) => {
      if (/^AT\+(CTFR|CHUP)|^ATA$|^ATH|^AT\+CCFC=0,[0-4]/.test(line)) say(`    modem <- ${maskInText(line)}`);
    });
    box.emu.on('sms-sent', (sms: { to: string; text: string }) =>
      say(`    the box's modem sent an SMS to ${maskNumber(sms.to)}: "${clip(maskInText(sms.text), 110)}"`),
    );
    await box.waitForState('online', 20_000);
    say(`claimed with its label secret, approved (registered in advance): device id ${box.box.deviceId}, online`);

    stage = 'applying the settings';
    const s = defaultSettings();
    const settings = {
      ...s,
      clinic: { name: clinic.name, timezone: 'Europe/London' },
      hours: {
        ...s.hours,
        weekly: { mon: ALL_DAY, tue: ALL_DAY, wed: ALL_DAY, thu: ALL_DAY, fri: ALL_DAY, sat: ALL_DAY, sun: ALL_DAY },
      },
      calls: { ...s.calls, inHours: 'ring-then-rollover' as const, ringTimeoutS: RING_TIMEOUT_S },
      rollover: { ...s.rollover, number: ANSWERING_SERVICE, networkForwarding: false },
      panic: { ...s.panic, holdMs: 800 },
      survey: { ...s.survey, enabled: true, delayS: 0, text: 'How did we do today? Reply 1-5 (5 = very good).' },
    };
    const { version } = await admin.call('boxes.setConfig', { box: SERIAL, settings });
    say(
      `ops set the box's settings v${version}: open all day, ring ${RING_TIMEOUT_S} s, then roll over to ${maskNumber(ANSWERING_SERVICE)}`,
    );
    await until(async () => {
      const b = (await admin?.call('boxes.show', { box: SERIAL }))?.box;
      return b?.reportedVersion === version && b.reportedState === 'applied';
    }, `the box reporting settings v${version} applied`);
    say(`the box applied settings v${version} and reported it back to the fleet`);

    // ---- 3. an answered call -------------------------------------------------------------
    stage = 'the answered call';
    step(3, 'A call answered at the desk');
    const calls = box.features.calls.manager;
    const io = box.features.io.service;
    const idx1 = box.emu.incomingCall(CALLER_1);
    say(`the phone rings: a patient calls from ${maskNumber(CALLER_1)}`);
    await until(() => io.indicatorState.call === 'ringing', 'the box showing the call ringing');
    say(`ring LED ${io.outputs.leds.ring.kind}, buzzer "${io.outputs.buzzer.pattern}"`);
    await until(() => (calls.snapshot().calls[0]?.rings ?? 0) >= 2, 'two rings');
    say('the receptionist lifts the handset (hook switch on the virtual panel)');
    await box.liftHandset();
    await until(() => calls.snapshot().inCall, 'the call being answered');
    say('the box answered (ATA): patient and receptionist are talking');
    await sleep(2000);
    say('the receptionist puts the handset down');
    await box.putDownHandset();
    await until(() => !calls.snapshot().inCall && !box.emu.calls.some((c) => c.index === idx1), 'the call ending');
    say('call over');
    await until(() => box.emu.smsSent.some((m) => m.to === CALLER_1), 'the survey SMS after the answered call');
    box.emu.receiveSms(CALLER_1, '5');
    say(`the patient answers the survey: "5"`);

    // ---- 4. a call nobody answers ------------------------------------------------------------
    stage = 'the unanswered call';
    step(4, 'A call nobody answers rolls over to the answering service');
    box.emu.incomingCall(CALLER_2);
    say(`the phone rings again: ${maskNumber(CALLER_2)}; the desk is busy, nobody picks up`);
    await until(() => box.emu.deflections.length > 0, 'the box deflecting the call', (RING_TIMEOUT_S + 10) * 1000);
    const d = box.emu.deflections[0];
    say(
      `after ${RING_TIMEOUT_S} s of ringing the box sent the call on (AT+CTFR) to the answering service ${maskNumber(d?.to ?? '')}`,
    );
    await until(() => calls.snapshot().calls.length === 0, 'the rolled-over call ending');

    // ---- 5. panic ---------------------------------------------------------------------------
    stage = 'the panic button';
    step(5, 'The panic button');
    say('someone presses and holds the panic button under the desk');
    const held = box.pressPanic(1200);
    await until(() => io.indicatorState.panic !== 'idle', 'the box confirming the panic');
    say(`panic confirmed at the box after ${settings.panic.holdMs} ms held: panic LED ${io.outputs.leds.panic.kind}`);
    await held;
    const alert = await until(
      async () => (await alerts.store.getActive(clinic.id, 'panic')) ?? undefined,
      'the fleet raising a panic alert',
    );
    say(`fleet: ${alert.severity.toUpperCase()} alert raised: "${maskInText(alert.text)}"`);
    const alertSms = await until(
      () => box.emu.smsSent.find((m) => m.to === ON_CALL),
      'the alert SMS to the on-call person',
    );
    await sleep(1000);
    const link = /https?:\/\/\S+/.exec(alertSms.text)?.[0];
    if (link) {
      const res = await fetch(link, { method: 'POST' });
      if (!res.ok) throw new DemoStepFailed(`the acknowledgement link answered HTTP ${res.status}`);
      say('Dr Alice opens the link in her SMS and presses "Acknowledge" (HTTP POST to the fleet)');
    } else {
      await admin.call('alerts.ack', { id: alert.id });
      say('Dr Alice acknowledges the alert (ops: alerts.ack)');
    }
    await until(() => io.indicatorState.panic === 'acknowledged', 'the box receiving the acknowledgement');
    say(`the fleet told the box (panic.ack): panic LED now ${io.outputs.leds.panic.kind}: help is on the way`);

    // ---- 6. rollover by command -------------------------------------------------------------
    stage = 'rollover on and off';
    step(6, 'Rollover switched on and off by the fleet');
    say('ops: "roll all calls over to the answering service" (staff meeting)');
    const on = (await admin.call('rollover.start', { clinicId: clinic.id, reason: 'staff meeting' })) as Rollover;
    const onBox = on.boxes[0];
    if (!on.active) throw new DemoStepFailed(`rollover was not confirmed: ${onBox?.error ?? 'no box answered'}`);
    const fwd = box.emu.forwarding.get(0);
    say(
      `the box set unconditional forwarding and read it back (AT+CCFC query): on, to ${maskNumber(fwd?.number ?? '')}; the fleet marks the rollover active`,
    );
    await sleep(1000);
    say('ops: "calls back to the clinic"');
    const off = (await admin.call('rollover.stop', { clinicId: clinic.id })) as Rollover;
    if (off.active || box.emu.forwarding.get(0)?.enabled)
      throw new DemoStepFailed('rollover off was not confirmed by the box');
    say('the box cleared forwarding and confirmed it off (AT+CCFC query); the rollover alert is resolved');

    // ---- 7. after hours: voicemail ------------------------------------------------------------
    stage = 'the after-hours voicemail';
    step(7, 'After hours: voicemail');
    let voicemails = 0;
    if (!o.callerAudio) {
      say('skipped: this machine has no ALSA configuration (/usr/share/alsa/alsa.conf) for the caller stand-in');
    } else if (!box.features.voicemail.recording) {
      say(
        `skipped: voicemail recording is off on this machine (${box.features.voicemail.unavailable ?? 'no audio capture'})`,
      );
    } else {
      const closed = {
        ...settings,
        hours: { ...settings.hours, weekly: s.hours.weekly },
        voicemail: { ...s.voicemail, maxLengthS: 10 },
      };
      const v2 = await admin.call('boxes.setConfig', { box: SERIAL, settings: closed });
      await until(() => box.box.settingsVersion === v2.version, `settings v${v2.version} applied`);
      say(`ops closed the clinic for the day (settings v${v2.version}): calls now go to voicemail`);
      const idx3 = box.emu.incomingCall(CALLER_3);
      say(`a patient calls at night from ${maskNumber(CALLER_3)}`);
      await until(() => calls.snapshot().inVoicemail, 'the box answering for voicemail');
      say('the box answered at once and records the message through alsa-capture');
      const vm = await until(() => voicemailsStored[0], 'the voicemail reaching the fleet', 20_000);
      const lengthS = (vm.bytes - 44) / 2 / box.config.audio.sampleRate;
      say(
        `recorded ${lengthS.toFixed(1)} s (the ALSA file PCM stand-in plays the caller's message faster than real time)`,
      );
      say(
        `uploaded in chunks: the fleet stored ${(vm.bytes / 1024).toFixed(0)} KB and confirmed checksum ${vm.sha256.slice(0, 12)}…`,
      );
      await until(
        async () => (await box.features.voicemail.vault?.pending())?.length === 0,
        'the box deleting its copy',
      );
      say('the box deleted its encrypted copy only after that confirmation');
      box.emu.callerHangsUp(idx3);
      await until(() => calls.snapshot().calls.length === 0, 'the voicemail call ending');
      voicemails = 1;
    }

    // ---- 8. what the fleet stored -------------------------------------------------------------
    stage = 'reading the events at the fleet';
    step(8, 'What the fleet stored');
    const wanted = ['call.ended', 'panic.acknowledged', 'forwarding.state'];
    const events = await until(async () => {
      const list = (await admin?.call('events.list', { box: SERIAL, limit: 500 })) as StoredEvent[] | undefined;
      if (!list) return undefined;
      const endedCalls = list.filter((e) => e.type === 'call.ended').length;
      const offAgain = list.some(
        (e) => e.type === 'forwarding.state' && e.body.reason === 'unconditional' && e.body.enabled === false,
      );
      return endedCalls >= 2 + voicemails && offAgain && wanted.every((t) => list.some((e) => e.type === t))
        ? list
        : undefined;
    }, 'every event reaching the fleet');
    events.sort((a, b) => a.seq - b.seq);
    const time = (iso: string) => new Date(iso).toISOString().slice(11, 19);
    out(`  ${'seq'.padStart(4)}  ${'UTC'.padEnd(8)}  ${'event'.padEnd(20)}  details`);
    for (const e of events) out(`  ${String(e.seq).padStart(4)}  ${time(e.at)}  ${e.type.padEnd(20)}  ${summary(e)}`);

    out('\n  Calls:');
    out(`  ${'caller'.padEnd(14)}  ${'outcome'.padEnd(12)}  ${'rings'.padStart(5)}  ${'to answer'.padStart(9)}  talk`);
    const ended = events.filter((e) => e.type === 'call.ended');
    for (const e of ended) {
      const b = e.body;
      out(
        `  ${who(b.number).padEnd(14)}  ${String(b.outcome).padEnd(12)}  ${String(b.rings).padStart(5)}  ${secs(b.timeToAnswerMs).padStart(9)}  ${secs(b.durationMs)}`,
      );
    }
    const answered = ended.filter((e) => e.body.outcome === 'answered');
    const rolled = ended.filter((e) => e.body.outcome === 'rolled_over');
    const toVoicemail = ended.filter((e) => e.body.outcome === 'voicemail');
    const mean = answered.reduce((sum, e) => sum + (e.body.timeToAnswerMs as number), 0) / Math.max(1, answered.length);
    out(
      `  ${ended.length} calls: ${answered.length} answered (mean time to answer ${secs(mean)}), ${rolled.length} rolled over to the answering service, ${toVoicemail.length} to voicemail`,
    );
    const pressed = events.find((e) => e.type === 'panic.pressed');
    const acked = events.find((e) => e.type === 'panic.acknowledged');
    if (pressed && acked) {
      out(
        `  panic: acknowledged by ${acked.body.by} ${secs(Date.parse(acked.at) - Date.parse(pressed.at))} after the press`,
      );
    }

    // ---- 9. who called, who to call back, how we did -------------------------------------------
    stage = 'reading the call log';
    step(9, 'Who called, who to call back, how we did');
    const patients = fleet.feature<PatientsFeature>('patients');
    const clinicId = clinic.id;
    const log9 = await until(async () => {
      await patients?.settled();
      const list = await admin?.call('calls.list', { clinicId, limit: 50 });
      return list && list.length >= ended.length && list.every((c) => c.outcome && c.lookup !== 'pending')
        ? list
        : undefined;
    }, 'the call log with every caller looked up');
    out(`  ${'started'.padEnd(8)}  ${'caller'.padEnd(14)}  ${'outcome'.padEnd(12)}  patient record (FHIR)`);
    for (const c of [...log9].reverse()) {
      const p = c.patient
        ? `${c.patient.name} (born ${c.patient.birthDate})`
        : c.lookup === 'several'
          ? `several patients share this number (${c.matches}): none picked`
          : c.lookup === 'none'
            ? 'no patient with this number'
            : c.lookup;
      out(
        `  ${time(c.startedAt)}  ${who(c.caller).padEnd(14)}  ${String(c.outcome).padEnd(12)}  ${p}${c.repeat ? `  [repeat: ${c.repeat.reason}]` : ''}`,
      );
    }
    const callbacks = (await admin.call('callbacks.list', { clinicId })) ?? [];
    out(
      `  call-back list: ${callbacks.length} to return (${callbacks.map((c) => `${who(c.caller)} ${c.reason}`).join(', ') || 'none'})`,
    );
    const survey = await until(async () => {
      await patients?.settled();
      const r = await admin?.call('surveys.summary', { clinicId });
      return r && r.replies > 0 ? r : undefined;
    }, 'the survey reply counted');
    out(`  satisfaction: ${survey.sent} survey sent, ${survey.replies} reply, average ${survey.average} of 5`);

    if (o.keepRunning) {
      // A demo sign-in for the dashboard (an admin user of this throw-away fleet; its password shown once here).
      const demoUser = await admin.call('users.create', { name: 'demo', role: 'admin' });
      const dashboard = fleet.feature<WebFeature>('web')?.url;
      out(`\nDashboard: ${dashboard ?? `http://127.0.0.1:${httpPort}`}/`);
      out(`  sign in as ${demoUser.name} with password ${demoUser.password}`);
      out('\nStill running (--keep-running). Try, in another terminal:');
      out(
        `  npm run fleet -- --url mqtt://127.0.0.1:${port} --password-file ${join(o.dir, 'admin.secret')} boxes show ${SERIAL}`,
      );
      out(
        `  npm run fleet -- --url mqtt://127.0.0.1:${port} --password-file ${join(o.dir, 'admin.secret')} events --box ${SERIAL}`,
      );
      out('Type here to drive the box: ring [number] | lift | down | hangup | panic | sms <from> <text> | quit');
      out('Press Ctrl-C (or type quit) to stop.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
        const rl = createInterface({ input: process.stdin });
        rl.on('line', (line) => {
          const [cmd, ...args] = line.trim().split(/\s+/);
          const act = async () => {
            switch (cmd) {
              case 'ring':
                box.emu.incomingCall(args[0] ?? CALLER_1);
                return 'ringing';
              case 'lift':
                await box.liftHandset();
                return 'handset lifted';
              case 'down':
                await box.putDownHandset();
                return 'handset down';
              case 'hangup':
                box.emu.callerHangsUp();
                return 'the caller hung up';
              case 'panic':
                await box.pressPanic(1200);
                return 'panic button held 1.2 s';
              case 'sms':
                if (!args[0] || args.length < 2) return 'usage: sms <from> <text>';
                box.emu.receiveSms(args[0], args.slice(1).join(' '));
                return 'SMS delivered to the box';
              case 'quit':
                rl.close();
                resolve();
                return 'stopping';
              case '':
              case undefined:
                return '';
              default:
                return `unknown command "${cmd}"`;
            }
          };
          act().then(
            (msg) => msg && say(msg),
            (e) => say(`failed: ${describeError(e)}`),
          );
        });
      });
    }
    stage = 'stopping';
    await cleanup();
    out(`\nDemo finished in ${((Date.now() - t0) / 1000).toFixed(0)} s; everything stopped. Logs: ${o.logFile}`);
    return 0;
  } catch (e) {
    log.error({ err: e, stage }, 'demo failed');
    out(`\nDEMO FAILED while ${stage}: ${describeError(e)}`);
    out(`See the log: ${o.logFile}`);
    await cleanup();
    return 1;
  }
}
