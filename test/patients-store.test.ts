/**
 * The patients store on both databases the fleet runs on (SQLite and
 * PostgreSQL on 127.0.0.1:5432): the call log, contacts, call-backs and
 * survey counts read back the same, numbers and matches are sealed in the
 * rows, and the migration goes down and up again.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PatientCipher } from '../fleet/crypto/patient-data.js';
import { PatientStore } from '../fleet/patients/store.js';
import { PostgresStore } from '../fleet/store/postgres.js';
import type { SqlStore } from '../fleet/store/sql-store.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { createTestDatabase } from './helpers/postgres.js';

const cipher = PatientCipher.parse(`k1 ${Buffer.alloc(32, 7).toString('base64')}\n`);
const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const d of drops) await d().catch(() => undefined);
});

const kinds: [string, () => Promise<SqlStore>][] = [
  ['sqlite', () => SqliteStore.open(join(mkdtempSync(join(tmpdir(), 'pat-store-')), 'fleet.db'))],
  [
    'postgres',
    async () => {
      const db = await createTestDatabase();
      const s = await PostgresStore.open(db.url);
      drops.push(async () => {
        await s.close();
        await db.drop();
      });
      return s;
    },
  ],
];

describe.each(kinds)('patients store on %s', (kind, open) => {
  it('keeps the call log, contacts, call-backs and survey counts', async () => {
    const fleet = await open();
    await fleet.migrate();
    const ps = PatientStore.over(fleet, cipher);
    await ps.migrate();
    const base = { deviceId: 'cb-a', clinicId: 'clinic-1', withheld: false, inHours: true };
    expect(
      await ps.startCall({
        ...base,
        callId: 'c1',
        number: '+15551230001',
        at: '2026-11-26T10:00:00.000Z',
        lookup: 'pending',
      }),
    ).toBe(true);
    expect(
      await ps.startCall({
        ...base,
        callId: 'c1',
        number: '+15551230001',
        at: '2026-11-26T10:00:00.000Z',
        lookup: 'pending',
      }),
    ).toBe(false);
    await ps.setLookup('cb-a', 'c1', {
      state: 'found',
      matches: 1,
      patient: { name: 'Ada Lovelace', birthDate: '1985-12-10' },
    });
    await ps.endCall({
      ...base,
      callId: 'c1',
      number: '+15551230001',
      at: '2026-11-26T10:01:00.000Z',
      outcome: 'missed',
      rings: 4,
      durationMs: 0,
    });
    const row = await ps.getCall('cb-a', 'c1');
    expect(row).toMatchObject({
      number: '+15551230001',
      lookup: 'found',
      matches: 1,
      patient: { name: 'Ada Lovelace', birthDate: '1985-12-10' },
      outcome: 'missed',
      rings: 4,
      startedAt: '2026-11-26T10:00:00.000Z',
      inHours: true,
      withheld: false,
    });
    const raw = await fleet.connection().driver.query('SELECT number, patient FROM call_log');
    expect(JSON.stringify(raw)).not.toMatch(/Lovelace|5551230001/);

    await ps.addContact({
      eventId: 'e1',
      clinicId: 'clinic-1',
      number: '+15551230001',
      kind: 'call',
      at: '2026-11-26T10:00:00.000Z',
      callId: 'c1',
      detail: null,
    });
    await ps.addContact({
      eventId: 'e1',
      clinicId: 'clinic-1',
      number: '+15551230001',
      kind: 'call',
      at: '2026-11-26T10:00:00.000Z',
      callId: 'c1',
      detail: null,
    });
    await ps.setContactDetail('clinic-1', 'c1', 'missed');
    expect(await ps.contactsBefore('clinic-1', ps.ix('+15551230001'), '2026-11-27T00:00:00.000Z', 10)).toEqual([
      { kind: 'call', at: '2026-11-26T10:00:00.000Z', callId: 'c1', detail: 'missed' },
    ]);
    expect(await ps.contactsBefore('clinic-1', ps.ix('+15551230001'), '2026-11-27T00:00:00.000Z', 10, 'c1')).toEqual(
      [],
    );

    expect(
      await ps.openCallback({
        ...base,
        callId: 'c1',
        number: '+15551230001',
        reason: 'missed',
        at: '2026-11-26T10:01:00.000Z',
      }),
    ).toBe(true);
    expect((await ps.listCallbacks({ clinicId: 'clinic-1', state: 'open', limit: 10 })).map((c) => c.callId)).toEqual([
      'c1',
    ]);
    const done = await ps.closeCallback('cb-a', 'c1', 'ops:alice', 'rang back', null);
    expect(done).toMatchObject({ state: 'done', doneBy: 'ops:alice', note: 'rang back' });
    expect(await ps.closeCallback('cb-a', 'c1', 'ops:bob', null, null)).toBeUndefined();

    for (const [id, k, score] of [
      ['s1', 'sent', null],
      ['s2', 'sent', null],
      ['r1', 'reply', 4],
      ['r1', 'reply', 4],
    ] as const) {
      await ps.addSurvey({
        eventId: id,
        clinicId: 'clinic-1',
        deviceId: 'cb-a',
        callId: 'c1',
        kind: k,
        score,
        at: '2026-11-26T10:05:00.000Z',
      });
    }
    const counts = await ps.surveyCounts('clinic-1', '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z');
    expect(counts.sort((a, b) => a.kind.localeCompare(b.kind))).toEqual([
      { kind: 'reply', score: 4, n: 1 },
      { kind: 'sent', score: null, n: 2 },
    ]);
    await ps.putFhir('clinic-1', 'https://fhir.example.org/r4', 'tok-123', 'ops:admin');
    expect((await ps.getFhir('clinic-1'))?.token).toBe('tok-123');
    expect(JSON.stringify(await fleet.connection().driver.query('SELECT token FROM patient_fhir'))).not.toContain(
      'tok-123',
    );

    await ps.migrateDown(0);
    await ps.migrate();
    expect(await ps.getCall('cb-a', 'c1')).toBeUndefined();
    if (kind === 'sqlite') await fleet.close();
  });
});
