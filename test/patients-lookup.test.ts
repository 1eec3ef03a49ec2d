/**
 * The caller lookup's bounds, against the FHIR stand-in (a real HTTP
 * server): at most `fhirConcurrency` searches in flight however many calls
 * come at once, answers cached per clinic and number for `cacheTtlS` (an
 * error is not cached), and a full line marks the call skipped instead of
 * growing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleetConfig } from '../fleet/config.js';
import { PatientCipher } from '../fleet/crypto/patient-data.js';
import type { PatientsConfig } from '../fleet/patients/config.js';
import { CallerLookup } from '../fleet/patients/lookup.js';
import { PatientStore } from '../fleet/patients/store.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { type FhirStandIn, startFhirStandIn } from '../scripts/sim/fhir.js';

const cipher = PatientCipher.parse(`k1 ${Buffer.alloc(32, 3).toString('base64')}\n`);

describe('caller lookup: concurrency, cache, a full line', () => {
  let fleet: SqliteStore;
  let ps: PatientStore;
  let fhir: FhirStandIn;
  let now = Date.parse('2026-11-26T10:00:00Z');
  const cfg = (o: Partial<PatientsConfig>): PatientsConfig => ({
    ...loadFleetConfig(undefined, {}, {}).patients,
    ...o,
  });

  beforeAll(async () => {
    fleet = await SqliteStore.open(join(mkdtempSync(join(tmpdir(), 'lookup-')), 'fleet.db'));
    await fleet.migrate();
    ps = PatientStore.over(fleet, cipher);
    await ps.migrate();
    fhir = await startFhirStandIn({ token: 't0k' });
    await ps.putFhir('clinic', fhir.url, fhir.token, 'test');
  });
  afterAll(async () => {
    await fhir?.close();
    await fleet?.close();
  });

  const start = async (callId: string, number: string) => {
    await ps.startCall({
      deviceId: 'cb-x',
      callId,
      clinicId: 'clinic',
      number,
      withheld: false,
      inHours: true,
      at: new Date(now).toISOString(),
      lookup: 'pending',
    });
    return { clinicId: 'clinic', deviceId: 'cb-x', callId, number };
  };

  it('holds at most fhirConcurrency searches in flight, and reuses an answer within cacheTtlS', async () => {
    fhir.delayMs = 150;
    const lookup = new CallerLookup(ps, cfg({ fhirConcurrency: 2, cacheTtlS: 60 }), undefined, () => now);
    for (let i = 0; i < 6; i++) lookup.enqueue(await start(`a${i}`, `+1555000100${i}`));
    expect(lookup.pending).toBe(6);
    await lookup.idle();
    expect(fhir.maxInFlight).toBe(2);
    expect(lookup.counters).toMatchObject({ asked: 6, none: 6, cacheHits: 0 });
    fhir.delayMs = 0;
    lookup.enqueue(await start('b1', '+15551230001'));
    lookup.enqueue(await start('b2', '+15551230001'));
    await lookup.idle();
    // b2 may start before b1's answer is cached (2 in flight): at least one search, at most two.
    const asked = lookup.counters.asked;
    lookup.enqueue(await start('b3', '+15551230001'));
    await lookup.idle();
    expect(lookup.counters.asked).toBe(asked);
    expect(lookup.counters.cacheHits).toBeGreaterThanOrEqual(1);
    expect((await ps.getCall('cb-x', 'b3'))?.patient?.name).toBe('Ada Lovelace');
    now += 61_000; // the answer is stale now
    lookup.enqueue(await start('b4', '+15551230001'));
    await lookup.idle();
    expect(lookup.counters.asked).toBe(asked + 1);
  });

  it('does not cache an error, and skips what does not fit in the line', async () => {
    const lookup = new CallerLookup(
      ps,
      cfg({ fhirConcurrency: 1, fhirQueueMax: 2, cacheTtlS: 60 }),
      undefined,
      () => now,
    );
    await fhir.down();
    lookup.enqueue(await start('c1', '+15551230002'));
    await lookup.idle();
    expect((await ps.getCall('cb-x', 'c1'))?.lookup).toBe('error');
    await fhir.up();
    lookup.enqueue(await start('c2', '+15551230002'));
    await lookup.idle();
    expect((await ps.getCall('cb-x', 'c2'))?.patient?.name).toBe('Grace Brewster Hopper');

    fhir.delayMs = 100;
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await start(`d${i}`, `+1555000200${i}`));
    const taken = jobs.map((j) => lookup.enqueue(j));
    // one running at once and two waiting: the fourth does not fit
    expect(taken).toEqual([true, true, true, false]);
    await lookup.idle();
    expect((await ps.getCall('cb-x', 'd3'))?.lookup).toBe('skipped');
    expect((await ps.getCall('cb-x', 'd2'))?.lookup).toBe('none');
    fhir.delayMs = 0;
  });
});
