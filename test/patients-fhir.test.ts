/**
 * Who is calling, through the real fleet: a box (an MQTT client with its
 * own credentials) reports calls; the fleet stores and receipts them at once,
 * then looks the caller up in the clinic's FHIR server (the stand-in from
 * scripts/sim/fhir.ts, a real HTTP server) and shows the match in the call
 * log. Known, unknown, several, wrong token, server down, server slow (the
 * receipt comes before the slow answer); the match is sealed at rest and
 * no patient data reaches the logs; repeat concerns; the call-back list.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PatientsFeature } from '../fleet/patients/feature.js';
import { DEMO_PATIENTS, type FhirStandIn, startFhirStandIn } from '../scripts/sim/fhir.js';
import type { EventBody, EventType } from '../shared/contract/events.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId, newEventId } from '../shared/ids.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { connectClient, provisionBox, runFleetCli, startTestFleet, type TestFleet } from './helpers/fleet.js';

// Every logger the patients feature makes writes here (it is imported after this line, in beforeAll).
const logs = new MemoryLogStream();
setupLogging({ level: 'debug', destination: logs });

const ADA = DEMO_PATIENTS[0]?.phone as string; // +15551230001, Ada Lovelace
const KILBURNS = '+15551230003'; // two patients share it
const UNKNOWN = '+15559870000';
const STREAM = '0193b2a4-1a00-7e65-8d44-0f5b6c7d8e9f';

/** A box reporting events in batches, as its outbox does, and collecting the fleet's receipts. */
class ReportingBox {
  private seq = 0;
  private readonly boot = newBootId();
  readonly receipts: { seq: number; at: number }[] = [];
  constructor(
    readonly client: MqttClient,
    readonly deviceId: string,
  ) {
    client.on('message', (topic, payload) => {
      if (topic === deviceTopics(deviceId).receipt) {
        this.receipts.push({ seq: (JSON.parse(payload.toString()) as { seq: number }).seq, at: Date.now() });
      }
    });
  }
  /** Publish events (each [type, body, at?]); resolves with the last seq once the fleet has receipted them. */
  async report(...events: [EventType, unknown, Date?][]): Promise<number> {
    const after = this.seq;
    const list = events.map(([type, body, at]) => ({
      v: 1,
      id: newEventId(),
      deviceId: this.deviceId,
      bootId: this.boot,
      seq: ++this.seq,
      at: (at ?? new Date()).toISOString(),
      type,
      body,
    }));
    const batch = { v: 1, deviceId: this.deviceId, stream: STREAM, floor: 0, after, events: list };
    await this.client.publishAsync(deviceTopics(this.deviceId).events, JSON.stringify(batch), { qos: 1 });
    const last = this.seq;
    // Stored at the fleet (the receipt comes after the commit), so the call log can be read.
    await waitFor(() => this.receipted(last), `receipt of seq ${last}`);
    return last;
  }
  receipted(seq: number): boolean {
    return this.receipts.some((r) => r.seq >= seq);
  }
}

let n = 0;
function call(number: string | null, outcome?: EventBody<'call.ended'>['outcome']) {
  const callId = `c-test-${++n}`;
  const base = { callId, number, withheld: number === null };
  return {
    callId,
    incoming: ['call.incoming', { ...base, inHours: true, repeatCaller: false, waiting: false }] as [
      EventType,
      unknown,
    ],
    ended: (o = outcome ?? 'answered'): [EventType, unknown] => [
      'call.ended',
      {
        ...base,
        outcome: o,
        rings: 3,
        timeToAnswerMs: o === 'answered' ? 9000 : null,
        durationMs: o === 'answered' ? 60_000 : 0,
        repeatCaller: false,
        inHours: true,
      },
    ],
  };
}

describe('who is calling: FHIR lookup, call log, repeat flags, call-backs', () => {
  let tf: TestFleet;
  let fhir: FhirStandIn;
  let box: ReportingBox;
  let clinicId: string;
  let feature: PatientsFeature;
  const cli = (args: string[]) => runFleetCli(tf.url, args, tf.adminPassword);

  beforeAll(async () => {
    const { patientsFeature } = await import('../fleet/patients/feature.js');
    fhir = await startFhirStandIn({ token: 'fhir-secret-token-1' });
    tf = await startTestFleet({ patients: { fhirTimeoutMs: 1000, cacheTtlS: 0 } }, { features: [patientsFeature()] });
    feature = tf.fleet.feature<PatientsFeature>('patients') as PatientsFeature;
    const c = await tf.admin.call('clinics.create', {
      name: 'Harbour Clinic',
      timezone: 'Europe/London',
      phoneNumbers: [],
      contacts: [],
    });
    clinicId = c.id;
    const creds = await provisionBox(tf, 'PAT-0001');
    await tf.admin.call('boxes.assign', { box: 'PAT-0001', clinicId });
    const client = await connectClient(tf.url, {
      username: creds.username,
      password: creds.password,
      clientId: creds.deviceId,
    });
    await client.subscribeAsync(deviceTopics(creds.deviceId).receipt, { qos: 1 });
    box = new ReportingBox(client, creds.deviceId);
    const tokenFile = join(tf.dir, 'fhir.token');
    writeFileSync(tokenFile, `${fhir.token}\n`);
    const set = await cli(['patients', 'fhir', 'set', clinicId, fhir.url, '--token-file', tokenFile]);
    expect(set.err).toBe('');
    expect(set.out).toContain('(token set)');
  });

  afterAll(async () => {
    await box?.client.endAsync(true);
    await tf?.close();
    await fhir?.close();
  });

  const logged = async (callId: string) => {
    await feature.settled();
    return tf.admin.call('calls.show', { callId });
  };

  it('shows the patient for a known number, nothing for an unknown one, "several" without picking', async () => {
    const known = call(ADA);
    const unknown = call(UNKNOWN);
    const several = call(KILBURNS);
    await box.report(known.incoming, unknown.incoming, several.incoming);
    await waitFor(async () => (await logged(several.callId)).lookup !== 'pending', 'lookups answered');
    const k = await logged(known.callId);
    expect(k).toMatchObject({ lookup: 'found', matches: 1, caller: ADA });
    expect(k.patient).toEqual({ name: 'Ada Lovelace', birthDate: '1985-12-10' });
    expect(await logged(unknown.callId)).toMatchObject({ lookup: 'none', matches: 0, patient: null });
    expect(await logged(several.callId)).toMatchObject({ lookup: 'several', matches: 2, patient: null });
    // The request as FHIR R4 wants it: the number URL-encoded, the token, JSON of FHIR.
    const asked = fhir.requests.find((r) => r.path === `/Patient?phone=${encodeURIComponent(ADA)}`);
    expect(asked).toMatchObject({ authorized: true, accept: 'application/fhir+json' });
    // The official name is shown when a patient has several (Grace Hopper, née Murray).
    const grace = call(DEMO_PATIENTS[1]?.phone as string);
    await box.report(grace.incoming);
    await waitFor(async () => (await logged(grace.callId)).lookup === 'found', 'grace found');
    expect((await logged(grace.callId)).patient?.name).toBe('Grace Brewster Hopper');
    expect(JSON.parse((await cli(['--json', 'call', grace.callId])).out)).toMatchObject({
      callId: grace.callId,
      lookup: 'found',
      patient: { birthDate: '1976-12-09' },
    });
    // The CLI's call log: one line per call, the match on the known number's.
    const out = (await cli(['calls', clinicId])).out;
    expect(out).toMatch(/Ada Lovelace \(1985-12-10\)/);
    expect(out).toMatch(/several patients \(2\)/);
  });

  it('hides numbers and matches from a viewer', async () => {
    const v = await tf.admin.call('users.create', { name: 'vera', role: 'viewer' });
    const out = await runFleetCli(tf.url, ['--user', 'vera', '--json', 'calls', clinicId], v.password);
    const calls = JSON.parse(out.out) as { caller: string | null; patient: unknown }[];
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) {
      expect(c.patient).toBeNull();
      expect(c.caller ?? '').not.toMatch(/\d{5}/);
    }
  });

  it('a wrong token, a server that is down or too slow: the call is stored and receipted, the lookup says why', async () => {
    // Wrong token.
    await tf.admin.call('patients.settings.set', { clinicId, baseUrl: fhir.url, token: 'not-the-token' });
    const refused = call(ADA);
    await box.report(refused.incoming);
    await waitFor(async () => (await logged(refused.callId)).lookup === 'error', 'refused');
    expect((await logged(refused.callId)).lookupDetail).toMatch(/refused the token \(HTTP 401\)/);
    await tf.admin.call('patients.settings.set', { clinicId, baseUrl: fhir.url, token: fhir.token });

    // Down: connection refused.
    await fhir.down();
    const down = call(ADA);
    const seqDown = await box.report(down.incoming, down.ended('answered'));
    await waitFor(() => box.receipted(seqDown), 'receipt while FHIR is down');
    await waitFor(async () => (await logged(down.callId)).lookup === 'error', 'down');
    expect(await logged(down.callId)).toMatchObject({ outcome: 'answered', patient: null });
    expect((await logged(down.callId)).lookupDetail).toMatch(/cannot be reached \(ECONNREFUSED\)/);
    await fhir.up();

    // Slow, but within the timeout: the receipt comes first, the match later.
    fhir.delayMs = 600;
    const answeredBefore = fhir.answered;
    const slow = call(ADA);
    const seqSlow = await box.report(slow.incoming);
    await waitFor(() => box.receipted(seqSlow), 'receipt of the slow call');
    expect(fhir.answered).toBe(answeredBefore); // FHIR has not answered yet
    await waitFor(async () => (await logged(slow.callId)).lookup === 'found', 'slow found');
    expect((await logged(slow.callId)).patient?.name).toBe('Ada Lovelace');

    // Slower than fhirTimeoutMs (1 s): given up.
    fhir.delayMs = 3000;
    const tooSlow = call(ADA);
    const seqTooSlow = await box.report(tooSlow.incoming);
    await waitFor(() => box.receipted(seqTooSlow), 'receipt of the too slow call');
    await waitFor(async () => (await logged(tooSlow.callId)).lookup === 'error', 'timed out');
    expect((await logged(tooSlow.callId)).lookupDetail).toBe('no answer from the FHIR server within 1000 ms');
    fhir.delayMs = 0;
  });

  it('keeps the match and the numbers sealed at rest, and out of the logs', async () => {
    await feature.settled();
    const db = join(tf.dir, 'fleet.db');
    const raw = Buffer.concat([readFileSync(db), ...[`${db}-wal`].map((f) => readFileSync(f, { flag: 'a+' }))]);
    for (const secret of ['Lovelace', '1985-12-10', '5551230001', fhir.token]) {
      expect(raw.includes(Buffer.from(secret)), secret).toBe(false);
    }
    const text = logs.text();
    expect(text).toContain('caller looked up');
    for (const secret of ['Lovelace', 'Ada', '1985-12-10', '5551230001', 'Kilburn', fhir.token]) {
      expect(text.includes(secret), secret).toBe(false);
    }
    // The token is write-only.
    const got = await tf.admin.call('patients.settings.get', { clinicId });
    expect(got).toMatchObject({ baseUrl: fhir.url, tokenSet: true });
    expect(JSON.stringify(got)).not.toContain(fhir.token);
    const shown = await cli(['patients', 'fhir', 'get', clinicId]);
    expect(shown.out.trim()).toBe(`${fhir.url} (token set)`);
    const audit = JSON.stringify(await tf.admin.call('audit.list', { target: `clinic:${clinicId}` }));
    expect(audit).toContain('patients.settings.set');
    expect(audit).not.toContain(fhir.token);
  });

  it('flags repeat concerns: a third call in a week, a call after a voicemail', async () => {
    const number = '+15557770001';
    const day = 86_400_000;
    const t0 = Date.now() - 6 * day;
    const first = call(number);
    const second = call(number);
    const third = call(number);
    await box.report(
      [...first.incoming, new Date(t0)],
      [...first.ended('missed'), new Date(t0 + 60_000)],
      [...second.incoming, new Date(t0 + 2 * day)],
      [...second.ended('missed'), new Date(t0 + 2 * day + 60_000)],
    );
    await feature.settled();
    expect((await logged(second.callId)).repeat).toBeNull();
    await box.report([...third.incoming, new Date(t0 + 5 * day)]);
    await feature.settled();
    expect((await logged(third.callId)).repeat?.reason).toBe('3 calls from this number within 168 h');
    expect((await logged(third.callId)).lastContacts.map((c) => [c.kind, c.detail])).toEqual([
      ['call', 'missed'],
      ['call', 'missed'],
    ]);

    const other = '+15557770002';
    const vmCall = call(other);
    const again = call(other);
    const vmAt = Date.now() - 3 * 3_600_000;
    await box.report(
      [...vmCall.incoming, new Date(vmAt)],
      [
        'voicemail.recorded',
        {
          voicemailId: newEventId(),
          callId: vmCall.callId,
          number: other,
          durationMs: 20_000,
          bytes: 320_000,
          sha256: 'a'.repeat(64),
        },
        new Date(vmAt + 30_000),
      ],
      [...vmCall.ended('voicemail'), new Date(vmAt + 31_000)],
      [...again.incoming, new Date(vmAt + 2 * 3_600_000)],
    );
    await feature.settled();
    expect((await logged(again.callId)).repeat?.reason).toBe('called again 2 h after leaving a voicemail');
  });

  it('lists calls to return until marked done (audited), and a later answered call closes them', async () => {
    const number = '+15557770003';
    const vm = call(number);
    const abandoned = call('+15557770004');
    const withheld = call(null);
    await box.report(vm.incoming, vm.ended('voicemail'), abandoned.incoming, abandoned.ended('abandoned'));
    await box.report(withheld.incoming, withheld.ended('missed'));
    await feature.settled();
    const open = await tf.admin.call('callbacks.list', { clinicId });
    const ids = open.map((c) => c.callId);
    expect(ids).toContain(vm.callId);
    expect(ids).toContain(abandoned.callId);
    expect(ids).not.toContain(withheld.callId); // nobody to call back
    expect(open.find((c) => c.callId === vm.callId)).toMatchObject({
      reason: 'voicemail',
      state: 'open',
      caller: number,
    });

    const done = await cli(['callbacks', clinicId, 'done', vm.callId, '--note', 'rang back']);
    expect(done.err).toBe('');
    expect(done.out).toMatch(new RegExp(`call-back of call ${vm.callId} done by ops:admin at `));
    const again = await cli(['callbacks', clinicId, 'done', vm.callId]);
    expect(again.code).toBe(6);
    expect(again.err).toMatch(/already done \(by ops:admin at /);
    const audit = await tf.admin.call('audit.list', { target: `call:${vm.callId}` });
    expect(audit[0]).toMatchObject({ actor: 'ops:admin', action: 'callbacks.done' });
    expect(JSON.stringify(audit)).not.toContain('rang back'); // the note stays sealed with the call-back

    // The abandoned caller calls again and is answered: its call-back closes by itself.
    const back = call('+15557770004');
    await box.report(back.incoming, back.ended('answered'));
    await feature.settled();
    const list = (await cli(['callbacks', clinicId])).out;
    expect(list).not.toContain(vm.callId);
    expect(list).not.toContain(abandoned.callId);
    const all = await tf.admin.call('callbacks.list', { clinicId, state: 'done' });
    expect(all.find((c) => c.callId === abandoned.callId)).toMatchObject({
      doneBy: 'auto:answered-call',
      closedByCall: back.callId,
    });
    expect((await logged(abandoned.callId)).callback).toMatchObject({ state: 'done', doneBy: 'auto:answered-call' });
  });

  it('counts survey replies per clinic', async () => {
    const sent = (callId: string, status = 'sent') => ['survey.sent', { callId, number: ADA, status, attempts: 1 }];
    const reply = (callId: string, score: number) => [
      'survey.reply',
      { callId, number: ADA, score, sentAt: new Date().toISOString() },
    ];
    await box.report(
      sent('s1') as never,
      sent('s2') as never,
      sent('s3') as never,
      sent('s4', 'failed') as never,
      reply('s1', 5) as never,
      reply('s2', 4) as never,
    );
    await feature.settled();
    const s = await tf.admin.call('surveys.summary', { clinicId });
    expect(s).toMatchObject({
      sent: 3,
      failed: 1,
      replies: 2,
      average: 4.5,
      responseRate: 0.667,
      distribution: { '1': 0, '2': 0, '3': 0, '4': 1, '5': 1 },
    });
    const out = (await cli(['surveys', clinicId])).out;
    expect(out).toContain('3 sent (1 failed), 2 replies (67%)');
    expect(out).toContain('average 4.5 of 5');
  });
});
