/**
 * One conformance suite for every AlertStore implementation (SQLite and
 * PostgreSQL); test/alerts-store-conformance.test.ts runs it against both.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clinicAlertSettings } from '../../fleet/alerts/config.js';
import { ALERT_MIGRATIONS } from '../../fleet/alerts/migrations.js';
import type { AlertStore, NewAlert } from '../../fleet/alerts/types.js';
import { ErrorCode, isCallboxError } from '../../shared/errors.js';

export interface OpenedAlertStore {
  store: AlertStore;
  cleanup: () => Promise<void>;
}

const T0 = '2026-11-26T15:00:00.000Z';
const T1 = '2026-11-26T15:01:00.000Z';
const T2 = '2026-11-26T15:02:00.000Z';

function newAlert(over: Partial<NewAlert> = {}): NewAlert {
  return {
    clinicId: 'clinic-1',
    condition: 'panic',
    severity: 'critical',
    text: 'PANIC at Main St',
    deviceId: 'cb-0001',
    details: { panicId: 'p1' },
    at: T0,
    nextStepAt: T0,
    ...over,
  };
}

export function alertStoreConformance(name: string, open: () => Promise<OpenedAlertStore>): void {
  describe(`alert store conformance: ${name}`, () => {
    let store: AlertStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('migrates down to empty and up again', async () => {
      // The newest alert migration (3: the missed-call window in the store, for several fleet workers).
      const latest = Math.max(...ALERT_MIGRATIONS.migrations.map((m) => m.version));
      expect(latest).toBe(3);
      expect(await store.schemaVersion()).toBe(latest);
      await store.createAlert(newAlert());
      await store.migrateDown(0);
      expect(await store.schemaVersion()).toBe(0);
      await store.migrate();
      expect(await store.listAlerts()).toEqual([]);
    });

    it('keeps one active alert per clinic and condition, and allows a new one after resolve', async () => {
      const a = await store.createAlert(newAlert());
      expect(a).toMatchObject({ state: 'open', occurrences: 1, epoch: 0, nextStep: 0, nextStepAt: T0 });
      expect(a.shortCode).toMatch(/^[1-9]\d{3}$/);
      await expect(store.createAlert(newAlert())).rejects.toSatisfy(
        (e) => isCallboxError(e, ErrorCode.Conflict) && e.details?.existingId === a.id,
      );
      await store.createAlert(newAlert({ condition: 'box_offline' }));
      await store.createAlert(newAlert({ clinicId: 'clinic-2' }));
      expect((await store.getActive('clinic-1', 'panic'))?.id).toBe(a.id);
      expect((await store.getActiveByCode(a.shortCode))?.id).toBe(a.id);
      await store.updateAlert(a.id, { state: 'resolved', resolvedAt: T1, resolvedBy: 'ops:alice' });
      expect(await store.getActive('clinic-1', 'panic')).toBeUndefined();
      expect(await store.getActiveByCode(a.shortCode)).toBeUndefined();
      const b = await store.createAlert(newAlert());
      expect(b.id).not.toBe(a.id);
      expect((await store.listAlerts({ clinicId: 'clinic-1', state: 'active' })).map((x) => x.id).sort()).toHaveLength(
        2,
      );
      expect(await store.listAlerts({ state: 'resolved' })).toHaveLength(1);
    });

    it('counts occurrences and keeps the latest time', async () => {
      const a = await store.createAlert(newAlert());
      await store.addOccurrence(a.id, T2);
      const b = await store.addOccurrence(a.id, T1);
      expect(b).toMatchObject({ occurrences: 3, lastAt: T2, firstAt: T0 });
      await store.updateAlert(a.id, { state: 'resolved' });
      expect(await store.addOccurrence(a.id, T2)).toBeUndefined();
    });

    it('updates only when the expectation holds (compare and set)', async () => {
      const a = await store.createAlert(newAlert());
      expect(await store.updateAlert(a.id, { nextStep: 1 }, { nextStep: 5 })).toBeUndefined();
      expect(await store.updateAlert(a.id, { state: 'acknowledged' }, { state: 'resolved' })).toBeUndefined();
      const b = await store.updateAlert(
        a.id,
        { state: 'acknowledged', ackedBy: 'sms:alice', ackDeadline: T2, details: { x: 1 } },
        { state: ['open', 'acknowledged'], epoch: 0, nextStep: 0 },
      );
      expect(b).toMatchObject({ state: 'acknowledged', ackedBy: 'sms:alice', ackDeadline: T2, details: { x: 1 } });
      expect(await store.updateAlert('nope', { state: 'open' })).toBeUndefined();
    });

    it('leases a step to one owner until the lease runs out', async () => {
      const a = await store.createAlert(newAlert());
      expect(await store.claimStep(a.id, 0, 0, 'fleet-a', T0, T1)).toBe(true);
      expect(await store.claimStep(a.id, 0, 0, 'fleet-b', T0, T1)).toBe(false);
      expect(await store.claimStep(a.id, 0, 0, 'fleet-a', T0, T1)).toBe(true);
      expect(await store.claimStep(a.id, 0, 1, 'fleet-a', T0, T1)).toBe(false);
      expect(await store.claimStep(a.id, 0, 0, 'fleet-b', T1, T2)).toBe(true);
    });

    it('lists due steps and expired acknowledgements, and the next wake time', async () => {
      const a = await store.createAlert(newAlert({ nextStepAt: T1 }));
      const b = await store.createAlert(newAlert({ condition: 'box_offline', nextStepAt: T2 }));
      expect(await store.listDue(T0)).toEqual([]);
      expect((await store.listDue(T1)).map((x) => x.id)).toEqual([a.id]);
      expect(await store.nextWake()).toBe(T1);
      await store.updateAlert(a.id, { state: 'acknowledged', nextStepAt: null, ackDeadline: T0 });
      expect((await store.listAckExpired(T1)).map((x) => x.id)).toEqual([a.id]);
      expect(await store.nextWake()).toBe(T0);
      await store.updateAlert(a.id, { state: 'resolved', ackDeadline: null });
      await store.updateAlert(b.id, { state: 'resolved', nextStepAt: null });
      expect(await store.nextWake()).toBeUndefined();
    });

    it('records deliveries and the log in order', async () => {
      const a = await store.createAlert(newAlert());
      const d = await store.recordDelivery({
        alertId: a.id,
        epoch: 0,
        step: 0,
        channel: 'sms',
        target: 'alice',
        dedupKey: `${a.id}:0:0:sms:alice`,
        attempt: 1,
        status: 'failed',
        error: 'box cb-1: timeout',
        detail: null,
        at: T0,
      });
      expect(d.id).toBeGreaterThan(0);
      await store.recordDelivery({ ...d, attempt: 2, status: 'sent', error: null, detail: 'box cb-2', at: T1 });
      expect((await store.listDeliveries(a.id)).map((x) => [x.attempt, x.status, x.detail])).toEqual([
        [1, 'failed', null],
        [2, 'sent', 'box cb-2'],
      ]);
      await store.appendLog({ alertId: a.id, at: T0, action: 'opened', by: 'engine', detail: null });
      await store.appendLog({ alertId: a.id, at: T1, action: 'acknowledged', by: 'sms:alice', detail: null });
      expect((await store.listLog(a.id)).map((x) => x.action)).toEqual(['opened', 'acknowledged']);
    });

    it('keeps pending conditions, rollovers and clinic settings', async () => {
      await store.putPending({
        key: 'offline:cb-1',
        clinicId: 'c1',
        condition: 'box_offline',
        deviceId: 'cb-1',
        since: T0,
        meta: { graceMs: 1 },
      });
      await store.putPending({
        key: 'offline:cb-1',
        clinicId: 'c1',
        condition: 'box_offline',
        deviceId: 'cb-1',
        since: T0,
        meta: { graceMs: 1, raised: true },
      });
      expect(await store.listPending()).toEqual([
        {
          key: 'offline:cb-1',
          clinicId: 'c1',
          condition: 'box_offline',
          deviceId: 'cb-1',
          since: T0,
          meta: { graceMs: 1, raised: true },
        },
      ]);
      expect(await store.deletePending('offline:cb-1')).toBe(true);
      expect(await store.deletePending('offline:cb-1')).toBe(false);

      const r = {
        clinicId: 'c1',
        active: true,
        number: '+15550009999',
        since: T0,
        reason: '3 missed calls',
        by: 'engine',
        alertId: null,
        backAfter: 'answered' as const,
        backAt: null,
        boxes: [{ deviceId: 'cb-1', confirmed: true }],
        endedAt: null,
        endedBy: null,
      };
      await store.putRollover(r);
      await store.putRollover({ ...r, clinicId: 'c2', active: false });
      expect(await store.getRollover('c1')).toEqual(r);
      expect((await store.listRollovers(true)).map((x) => x.clinicId)).toEqual(['c1']);
      expect(await store.listRollovers()).toHaveLength(2);

      expect(await store.getClinicSettings('c1')).toBeUndefined();
      const s = clinicAlertSettings({ ackTimeoutMin: 15 });
      await store.putClinicSettings('c1', s);
      expect(await store.getClinicSettings('c1')).toEqual(s);
    });

    it('opens or counts an alert once per stored event, even after it was resolved', async () => {
      const e1 = '0193b2a4-5d00-7b32-9a11-000000000001';
      const e2 = '0193b2a4-5d00-7b32-9a11-000000000002';
      const a = await store.createAlert(newAlert({ eventId: e1 }));
      await expect(store.createAlert(newAlert({ eventId: e1 }))).rejects.toSatisfy(
        (e) => isCallboxError(e, ErrorCode.Conflict) && e.details?.existingId === a.id,
      );
      expect((await store.addOccurrence(a.id, T1, e1))?.occurrences).toBe(1); // e1 opened it: not counted again
      expect((await store.addOccurrence(a.id, T1, e2))?.occurrences).toBe(2);
      expect((await store.addOccurrence(a.id, T2, e2))?.occurrences).toBe(2);
      // the same event may count once on another condition
      const other = await store.createAlert(newAlert({ condition: 'missed_calls', eventId: e2 }));
      expect(other.occurrences).toBe(1);
      await store.updateAlert(a.id, { state: 'resolved' });
      // the panic of e1 read again after its alert was resolved opens nothing
      await expect(store.createAlert(newAlert({ eventId: e1 }))).rejects.toSatisfy(
        (e) => isCallboxError(e, ErrorCode.Conflict) && e.details?.alreadyApplied === true,
      );
      expect(await store.getActive('clinic-1', 'panic')).toBeUndefined();
      // after pruning the record is gone (the cursor is far past such events)
      expect(await store.pruneEventEffects('2999-01-01T00:00:00.000Z')).toBe(3);
      expect((await store.createAlert(newAlert({ eventId: e1 }))).state).toBe('open');
    });
  });
}
