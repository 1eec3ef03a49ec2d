/**
 * A clinic carries its boxes' defaults: a box of the clinic gets them (and the clinic's time zone, answering
 * service and contacts) on approval; a box's own settings override them field by field; a change of the
 * clinic's defaults reaches its boxes; the migration adds the columns and takes them away again.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeSettings } from '../fleet/clinic-defaults.js';
import { openStore } from '../fleet/store/index.js';
import { claim, runFleetCli, startTestFleet, type TestFleet } from './helpers/fleet.js';

describe('clinic box defaults', () => {
  let tf: TestFleet;
  let clinicId: string;
  const cli = (args: string[]) => runFleetCli(tf.url, args, tf.adminPassword);
  const settingsOf = async (box: string) =>
    JSON.parse((await cli(['--json', 'boxes', 'config', 'get', box])).out).settings;

  beforeAll(async () => {
    tf = await startTestFleet();
    const c = await tf.admin.call('clinics.create', {
      name: 'Elm St Clinic',
      timezone: 'America/Chicago',
      phoneNumbers: ['+15550001000'],
      answeringService: '+15550009999',
      contacts: [{ name: 'Dr. Ada', phone: '+15550002000' }, { name: 'Front desk' }],
    });
    clinicId = c.id;
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('merges field by field: objects merge, arrays and values replace', () => {
    expect(
      mergeSettings(
        { hours: { weekly: { mon: [1], tue: [2] } }, calls: { inHours: 'a' } },
        { hours: { weekly: { tue: [] } }, panic: { contacts: ['x'] } },
      ),
    ).toEqual({ hours: { weekly: { mon: [1], tue: [] } }, calls: { inHours: 'a' }, panic: { contacts: ['x'] } });
  });

  it('a box of the clinic gets the defaults on approval; its own settings override them per field', async () => {
    const file = join(tf.dir, 'defaults.yaml');
    writeFileSync(
      file,
      [
        'hours:',
        '  weekly:',
        '    mon: [{ open: "08:00", close: "17:00" }]',
        '    fri: [{ open: "08:00", close: "12:00" }]',
        'calls:',
        '  afterHours: rollover',
        '',
      ].join('\n'),
    );
    const set = await cli(['clinics', 'set-defaults', clinicId, file]);
    expect(set.err).toBe('');
    expect(set.out).toMatch(/box defaults set; 0 box\(es\) got new settings/);

    await tf.admin.call('boxes.register', { serial: 'CB-ELM-0001', claimSecret: 'label-elm-0001', clinicId });
    const a = await claim(tf.url, 'CB-ELM-0001', 'label-elm-0001');
    expect(a.state).toBe('approved');
    const s = await settingsOf('CB-ELM-0001');
    expect(s.clinic).toEqual({ name: 'Elm St Clinic', timezone: 'America/Chicago' });
    expect(s.hours.weekly.mon).toEqual([{ open: '08:00', close: '17:00' }]);
    expect(s.hours.weekly.sat).toEqual([]);
    expect(s.calls).toMatchObject({ afterHours: 'rollover', inHours: 'ring-then-rollover', ringTimeoutS: 20 });
    expect(s.rollover.number).toBe('+15550009999');
    expect(s.panic.contacts).toEqual(['+15550002000']);

    // The box's own: Saturday hours and another time zone; Monday and the rest stay the clinic's.
    const own = join(tf.dir, 'own.yaml');
    writeFileSync(
      own,
      'clinic:\n  timezone: America/Denver\nhours:\n  weekly:\n    sat: [{ open: "09:00", close: "12:00" }]\n',
    );
    expect((await cli(['boxes', 'config', 'set', 'CB-ELM-0001', own])).code).toBe(0);
    const s2 = await settingsOf('CB-ELM-0001');
    expect(s2.clinic).toEqual({ name: 'Elm St Clinic', timezone: 'America/Denver' });
    expect(s2.hours.weekly.sat).toEqual([{ open: '09:00', close: '12:00' }]);
    expect(s2.hours.weekly.mon).toEqual([{ open: '08:00', close: '17:00' }]);
    expect(s2.calls.afterHours).toBe('rollover');

    // The clinic changes its Monday: the box gets it, and keeps its own Saturday and time zone.
    writeFileSync(file, 'hours:\n  weekly:\n    mon: [{ open: "07:00", close: "15:00" }]\n');
    const again = await cli(['clinics', 'set-defaults', clinicId, file]);
    expect(again.out).toMatch(/1 box\(es\) got new settings/);
    const s3 = await settingsOf('CB-ELM-0001');
    expect(s3.hours.weekly.mon).toEqual([{ open: '07:00', close: '15:00' }]);
    expect(s3.hours.weekly.sat).toEqual([{ open: '09:00', close: '12:00' }]);
    expect(s3.clinic.timezone).toBe('America/Denver');
    expect(s3.calls.afterHours).toBe('voicemail'); // no longer in the clinic's defaults
  });

  it('refuses defaults the box settings schema refuses, naming the field, and changes nothing', async () => {
    const bad = join(tf.dir, 'bad.yaml');
    writeFileSync(bad, 'calls:\n  ringTimeoutS: 2\n');
    const r = await cli(['clinics', 'set-defaults', clinicId, bad]);
    expect(r.code).toBe(6);
    expect(r.err).toMatch(/\/calls\/ringTimeoutS/);
    const typo = join(tf.dir, 'typo.yaml');
    writeFileSync(typo, 'hourz: {}\n');
    expect((await cli(['clinics', 'set-defaults', clinicId, typo])).err).toMatch(/hourz/);
    const show = JSON.parse((await cli(['--json', 'clinics', 'show', clinicId])).out);
    expect(show.clinic.boxDefaults).toEqual({ hours: { weekly: { mon: [{ open: '07:00', close: '15:00' }] } } });
  });

  it('the migration is reversible', async () => {
    const store = await openStore({ kind: 'sqlite', sqlitePath: join(tf.dir, 'mig.db') } as never);
    try {
      const v = await store.schemaVersion();
      expect(v).toBeGreaterThanOrEqual(5);
      await store.migrateDown(4);
      expect(await store.schemaVersion()).toBe(4);
      await store.migrate();
      const c = await store.createClinic({
        organisationId: null,
        name: 'X',
        timezone: 'UTC',
        phoneNumbers: [],
        answeringService: null,
        contacts: [],
        boxDefaults: { calls: { ringTimeoutS: 30 } },
      });
      expect((await store.getClinic(c.id))?.boxDefaults).toEqual({ calls: { ringTimeoutS: 30 } });
    } finally {
      await store.close();
    }
  });
});
