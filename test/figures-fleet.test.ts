/**
 * The figures in a running fleet: call events a box publishes reach the rollups and the CLI shows them
 * for a clinic named by name; an ambiguous or unknown name gets an error listing the candidates; the
 * box's telemetry is stored with the newest on the box row; CSV exports give numbers in clear to an
 * admin and masked to a viewer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FiguresFeature, figuresFeature } from '../fleet/figures/feature.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { waitFor } from '../shared/wait.js';
import { eventsOf, expectedFigures, type ScriptedCall } from './helpers/figures.js';
import { connectClient, provisionBox, runFleetCli, startTestFleet, type TestFleet } from './helpers/fleet.js';

const at = (hhmmss: string) => Date.parse(`2026-11-24T${hhmmss}+01:00`); // Berlin, winter
const CALLS: ScriptedCall[] = [
  { startMs: at('09:00:00'), outcome: 'answered', ringS: 7, talkS: 60, number: '+4930123456' },
  { startMs: at('09:10:00'), outcome: 'abandoned', ringS: 3, number: '+4930999999' },
  { startMs: at('10:00:00'), outcome: 'missed', ringS: 40, number: '+4930123456', sms: 'sent' },
  { startMs: at('11:00:00'), outcome: 'answered', ringS: 40, talkS: 10, number: null },
];

describe('figures in the fleet', () => {
  let tf: TestFleet;
  let viewerPassword: string;
  let deviceId: string;
  const cli = (args: string[], password = tf.adminPassword) => runFleetCli(tf.url, args, password);

  beforeAll(async () => {
    tf = await startTestFleet({}, { features: [figuresFeature()] });
    const clinic = await tf.admin.call('clinics.create', {
      name: 'Main St',
      timezone: 'Europe/Berlin',
      phoneNumbers: [],
      contacts: [],
    });
    for (const tz of ['Europe/Paris', 'Europe/Rome']) {
      await tf.admin.call('clinics.create', { name: 'Twin', timezone: tz, phoneNumbers: [], contacts: [] });
    }
    const box = await provisionBox(tf, 'FG-0001');
    deviceId = box.deviceId;
    await tf.admin.call('boxes.assign', { box: 'FG-0001', clinicId: clinic.id });
    viewerPassword = (await tf.admin.call('users.create', { name: 'vera', role: 'viewer' })).password;
    const c = await connectClient(tf.url, box);
    for (const e of eventsOf(CALLS, deviceId)) {
      await c.publishAsync(deviceTopics(deviceId).events, JSON.stringify(e), { qos: 1 });
    }
    const telemetry = (atIso: string, signalDbm: number) => ({
      v: 1,
      at: atIso,
      bootId: newBootId(),
      uptimeS: 10,
      softwareVersion: '1.2.3',
      modem: {
        state: 'ready',
        signalDbm,
        registration: 'home',
        operator: 'Telekom.de',
        model: null,
        firmware: null,
        simPresent: true,
      },
      freeDiskBytes: 1000,
      outboxDepth: 2,
      voicemailsPending: 0,
      configVersion: null,
    });
    await c.publishAsync(deviceTopics(deviceId).telemetry, JSON.stringify(telemetry(new Date().toISOString(), -70)));
    await c.publishAsync(
      deviceTopics(deviceId).telemetry,
      JSON.stringify(telemetry(new Date(Date.now() - 60_000).toISOString(), -90)),
    );
    await c.endAsync(); // graceful: the QoS 0 telemetry is out before the socket closes
    const feature = tf.fleet.feature<FiguresFeature>('figures') as FiguresFeature;
    await waitFor(async () => {
      await feature.settle();
      return (await tf.admin.call('telemetry.history', { box: 'FG-0001' })).length === 2;
    }, 'both telemetry samples stored');
    await waitFor(async () => {
      await feature.settle();
      const f = await tf.admin.call('figures.clinic', { clinic: 'Main St', from: '2026-11-24', to: '2026-11-24' });
      return f.totals.offered === CALLS.length;
    }, 'every call counted');
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('shows the figures of a clinic named by name in the CLI', async () => {
    const r = await cli(['--json', 'figures', 'Main St', '--from', '2026-11-24', '--to', '2026-11-24']);
    expect(r.err).toBe('');
    const { asaS, ...exact } = expectedFigures(CALLS);
    const got = JSON.parse(r.out);
    expect(got.totals).toMatchObject(exact);
    expect(got.totals.asaS).toBeCloseTo(asaS ?? Number.NaN, 3);
    const table = await cli(['figures', 'Main St', '--from', '2026-11-24', '--to', '2026-11-24']);
    expect(table.out).toMatch(/^2026-11-24T00:00\s+4\s+2\s+1\s+1\s+1\s+0\s+0\s+23\.5s\s+40s/m);
    const heat = JSON.parse(
      (await cli(['--json', 'figures', 'Main St', '--heatmap', '--weeks', '1', '--to', '2026-11-24'])).out,
    );
    expect(heat.offered[1].slice(9, 12)).toEqual([2, 1, 1]); // Tuesday 09..11 on the Berlin clock
  });

  it('refuses an ambiguous clinic name listing the candidates, and suggests for an unknown one', async () => {
    const twin = await cli(['figures', 'Twin']);
    expect(twin.code).toBe(6);
    expect(twin.err).toMatch(
      /clinic name "Twin" is ambiguous: 2 clinics have it \(\S+ in Europe\/Paris; \S+ in Europe\/Rome\)/,
    );
    const shown = JSON.parse((await cli(['--json', 'clinics', 'show', 'Main St'])).out);
    expect(shown.clinic.name).toBe('Main St');
    expect(shown.boxes.map((b: { serial: string }) => b.serial)).toEqual(['FG-0001']);
    const typo = await cli(['figures', 'Main']);
    expect(typo.code).toBe(3);
    expect(typo.err).toMatch(/no clinic "Main" \(by id or exact name\); did you mean "Main St" \(\S+\)\?/);
  });

  it('keeps telemetry with the newest on the box row', async () => {
    const history = await tf.admin.call('telemetry.history', { box: 'FG-0001' });
    expect(history.map((p) => p.signalDbm)).toEqual([-70, -90]); // newest first
    const shown = await tf.admin.call('boxes.show', { box: 'FG-0001' });
    expect(shown.box.telemetry).toMatchObject({ signalDbm: -70, operator: 'Telekom.de', outboxDepth: 2 });
    const r = await cli(['telemetry', 'FG-0001']);
    expect(r.out).toMatch(/-70\s+Telekom\.de\s+ready\s+2\s+1000\s+1\.2\.3/);
  });

  it('exports calls as CSV: numbers in clear for an admin, masked for a viewer', async () => {
    const admin = await cli(['export', 'calls', '--clinic', 'Main St', '--from', '2026-11-24', '--to', '2026-11-24']);
    expect(admin.err).toBe('');
    const lines = admin.out.split('\r\n');
    expect(lines[0]).toBe(
      'call_id,clinic,box,started_at,local_time,outcome,ring_s,answer_s,talk_s,repeat,in_hours,followup_sms,number',
    );
    expect(lines).toHaveLength(CALLS.length + 2); // header, rows, the empty string after the last CRLF
    expect(lines[1]).toMatch(
      /^call-0-\d+,Main St,FG-0001,2026-11-24T08:00:00\.000Z,2026-11-24 09:00:00,answered,7,7,60,no,yes,,\+4930123456$/,
    );
    expect(lines[3]).toMatch(/,missed,40,,0,yes,yes,sent,\+4930123456$/);
    const viewer = await cli(
      [
        '--user',
        'vera',
        'export',
        'calls',
        '--clinic',
        'Main St',
        '--from',
        '2026-11-24',
        '--to',
        '2026-11-24',
        '--page',
        '1',
      ],
      viewerPassword,
    );
    expect(viewer.err).toBe('');
    expect(viewer.out.split('\r\n')).toHaveLength(CALLS.length + 2); // paged one row at a time, one header
    expect(viewer.out).not.toContain('4930123456');
    expect(viewer.out).toContain(',+******3456');
    const events = await cli(
      ['--user', 'vera', 'export', 'events', '--clinic', 'Main St', '--from', '2026-11-24', '--to', '2026-11-24'],
      viewerPassword,
    );
    expect(events.out.split('\r\n')[0]).toBe('id,at,received_at,box,device_id,seq,type,body');
    expect(events.out).not.toContain('4930123456');
    expect(events.out).toContain('""callId""'); // the JSON body, quoted as RFC 4180 says
  });
});
