/**
 * Call figures against an independent computation: a scripted day of calls (every outcome, short and
 * long abandons, repeat callers, follow-up SMS) goes through the store and the figures reader, and the
 * figures must equal what test/helpers/figures.ts computes from the script alone. Then: a replayed event
 * (same id, or the same call event under a new id) counts once; a rebuild equals the incremental result;
 * targets apply on rebuild. On SQLite and PostgreSQL alike.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newEventId } from '../shared/ids.js';
import {
  eventsOf,
  expectedFigures,
  type FiguresRig,
  openFiguresRig,
  type ScriptedCall,
  type StoreKind,
} from './helpers/figures.js';

/** 2026-03-10 (a Tuesday) in New York, after the clocks went forward: UTC-4. */
const at = (hhmmss: string, day = '2026-03-10') => Date.parse(`${day}T${hhmmss}-04:00`);

const SCRIPT: ScriptedCall[] = [
  { startMs: at('08:02:00'), outcome: 'answered', ringS: 3, talkS: 120, number: '+15550000001' },
  { startMs: at('08:15:00'), outcome: 'answered', ringS: 8, talkS: 60, number: '+15550000002' },
  { startMs: at('08:40:00'), outcome: 'abandoned', ringS: 4, number: '+15550000003' },
  { startMs: at('09:01:00'), outcome: 'answered', ringS: 12, talkS: 30, number: '+15550000003' },
  { startMs: at('09:05:00'), outcome: 'answered', ringS: 25, talkS: 200, number: null },
  { startMs: at('09:20:00'), outcome: 'abandoned', ringS: 15, number: '+15550000004' },
  { startMs: at('09:30:00'), outcome: 'missed', ringS: 60, number: '+15550000005', sms: 'sent' },
  { startMs: at('09:45:00'), outcome: 'answered', ringS: 31, talkS: 90, number: '+15550000005' },
  { startMs: at('10:10:00'), outcome: 'answered', ringS: 45, talkS: 40, number: '+15550000006' },
  { startMs: at('10:30:00'), outcome: 'rolled_over', ringS: 20, number: '+15550000007' },
  { startMs: at('11:00:00'), outcome: 'voicemail', ringS: 30, talkS: 25, number: '+15550000008' },
  { startMs: at('11:20:00'), outcome: 'voicemail_failed', ringS: 30, talkS: 5, number: '+15550000009' },
  { startMs: at('12:05:00'), outcome: 'answered', ringS: 70, talkS: 10, number: '5550000001' },
  { startMs: at('13:00:00'), outcome: 'abandoned', ringS: 9, number: '+15550000010' },
  { startMs: at('14:00:00'), outcome: 'missed', ringS: 60, number: '+15550000011', sms: 'failed' },
  { startMs: at('15:30:00'), outcome: 'answered', ringS: 200, talkS: 15, number: '+15550000012' },
  { startMs: at('16:45:00'), outcome: 'answered', ringS: 6, talkS: 33, number: '+15550000002' },
  { startMs: at('23:30:00'), outcome: 'answered', ringS: 10, talkS: 5, number: '+15550000013' },
];

function suite(kind: StoreKind): void {
  describe(`call figures on ${kind}`, () => {
    let rig: FiguresRig;
    beforeEach(async () => {
      rig = await openFiguresRig(kind, 'America/New_York', 7);
    });
    afterEach(async () => {
      await rig.close();
    });

    const day = () =>
      rig.service.clinicFigures({ clinic: 'Main St', from: '2026-03-10', to: '2026-03-10', bucket: 'day' });

    it('gives the figures the script gives, per day, per hour and in the heatmap', async () => {
      await rig.store.insertEvents(eventsOf(SCRIPT, rig.deviceId));
      await rig.reader.kick();
      const want = expectedFigures(SCRIPT);
      const got = await day();
      expect(got.series).toHaveLength(1);
      const { asaS, ...exact } = want;
      expect(got.totals).toMatchObject(exact);
      expect(got.totals.asaS).toBeCloseTo(asaS ?? Number.NaN, 3);
      expect(got.series[0]).toMatchObject({ start: '2026-03-10T00:00', ...exact });
      // The 09:00 hour on the clinic's clock (13:00 UTC).
      const nine = SCRIPT.filter((c) => c.startMs >= at('09:00:00') && c.startMs < at('10:00:00'));
      const hours = await rig.service.clinicFigures({
        clinic: rig.clinic.id,
        from: '2026-03-10',
        to: '2026-03-10',
        bucket: 'hour',
      });
      expect(hours.series).toHaveLength(24);
      const { asaS: nineAsa, ...nineExact } = expectedFigures(nine);
      // Repeats look back past the hour: compare the hour's own counts.
      expect(hours.series[9]).toMatchObject({ ...nineExact, repeatCalls: expect.any(Number) });
      expect(hours.series[9]?.asaS).toBeCloseTo(nineAsa ?? Number.NaN, 3);
      const heat = await rig.service.heatmap({ clinic: 'Main St', weeks: 1, to: '2026-03-10' });
      expect(heat.offered[1]?.[9]).toBe(nine.length); // Tuesday, 09:00
      expect(heat.offered[1]?.[23]).toBe(1);
      expect(heat.offered.flat().reduce((a, b) => a + b, 0)).toBe(SCRIPT.length);
      const weeks = await rig.service.clinicFigures({
        clinic: 'Main St',
        from: '2026-03-09',
        to: '2026-03-15',
        bucket: 'week',
      });
      expect(weeks.series.map((s) => [s.start, s.offered])).toEqual([['2026-03-09T00:00', SCRIPT.length]]);
    });

    it('counts a replayed event once (same id, or the same call event under a new id), and a rebuild gives the same', async () => {
      const events = eventsOf(SCRIPT, rig.deviceId);
      await rig.store.insertEvents(events.slice(0, 20));
      await rig.reader.kick();
      await rig.store.insertEvents(events); // the first 20 again: ignored by id
      // A box that crashed between sending and saving repeats its call events under new ids.
      const repeated = events
        .filter((e) => e.type === 'call.ended' || e.type === 'call.followup_sms' || e.type === 'call.incoming')
        .map((e, i) => ({ ...e, id: newEventId(), seq: 1000 + i }));
      await rig.store.insertEvents(repeated);
      await rig.reader.kick();
      const incremental = await day();
      const { asaS: _a, ...exact } = expectedFigures(SCRIPT);
      expect(incremental.totals).toMatchObject(exact);
      const rebuilt = await rig.reader.rebuild();
      expect(rebuilt).toMatchObject({ events: events.length + repeated.length, calls: SCRIPT.length });
      expect(await day()).toEqual(incremental);
    });

    it("applies a clinic's new targets to the past on rebuild", async () => {
      await rig.store.insertEvents(eventsOf(SCRIPT, rig.deviceId));
      await rig.reader.kick();
      await rig.service.setTargets('ops:admin', { clinic: 'Main St', serviceLevelTargetS: 20, shortAbandonS: 16 });
      expect((await day()).totals.shortAbandoned).toBe(expectedFigures(SCRIPT).shortAbandoned); // not yet
      await rig.reader.rebuild();
      const t = { serviceLevelTargetS: 20, shortAbandonS: 16, repeatWindowH: 24 };
      const { asaS: _a, ...exact } = expectedFigures(SCRIPT, t);
      expect((await day()).totals).toMatchObject(exact);
      expect((await day()).targets).toEqual(t);
      const audit = await rig.store.listAudit({ target: `clinic:${rig.clinic.id}` });
      expect(audit[0]).toMatchObject({ action: 'figures.targets.set', actor: 'ops:admin', after: t });
    });

    it('keeps telemetry (newest on the box row, history newest first, pruned by receipt time) and migrates down and up', async () => {
      const sample = (at: string, signalDbm: number) => ({
        at,
        receivedAt: at,
        softwareVersion: '1.0.0',
        uptimeS: 1,
        modemState: 'ready',
        signalDbm,
        registration: 'home',
        operator: 'Op, "quoted"',
        simPresent: true,
        freeDiskBytes: 5,
        outboxDepth: 0,
        voicemailsPending: 0,
        configVersion: 2,
      });
      await rig.figures.putTelemetry(rig.deviceId, sample('2026-11-26T10:00:00.000Z', -70));
      await rig.figures.putTelemetry(rig.deviceId, sample('2026-11-26T09:00:00.000Z', -90)); // late, older
      await rig.figures.putTelemetry(rig.deviceId, sample('2026-11-26T09:00:00.000Z', -90)); // again: once
      const history = await rig.figures.telemetryHistory(rig.deviceId, { limit: 10 });
      expect(history.map((p) => p.signalDbm)).toEqual([-70, -90]);
      expect((await rig.store.getBox('CB-0001'))?.telemetry).toMatchObject({
        signalDbm: -70,
        operator: 'Op, "quoted"',
      });
      expect(await rig.figures.pruneTelemetry('2026-11-26T09:30:00.000Z')).toBe(1);
      expect(await rig.figures.telemetryHistory(rig.deviceId, { limit: 10 })).toHaveLength(1);
      await rig.figures.migrateDown(0);
      expect((await rig.store.getBox('CB-0001'))?.telemetry).toBeUndefined();
      await rig.figures.migrate();
      expect(await rig.figures.getTargets(rig.clinic.id)).toEqual({
        serviceLevelTargetS: 30,
        shortAbandonS: 10,
        repeatWindowH: 24,
      });
    });
  });
}

suite('sqlite');
suite('postgres');
