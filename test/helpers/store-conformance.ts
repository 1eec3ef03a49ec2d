/**
 * One conformance suite for every Store implementation (the idea of MQTT.js's
 * abstract_store test): call storeConformance() from a test file with a
 * function that opens a fresh, migrated store.
 */
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../fleet/store/types.js';
import type { AnyEvent } from '../../shared/contract/events.js';
import { DeviceSettingsSchema } from '../../shared/contract/settings.js';
import { ErrorCode, isCallboxError } from '../../shared/errors.js';
import { newBootId, newEventId } from '../../shared/ids.js';

export interface OpenedStore {
  store: Store;
  cleanup: () => Promise<void>;
  /** Another connection to the same database, as a second fleet instance has (closed by the suite). */
  another: () => Promise<Store>;
}

export function sampleEvent(deviceId: string, seq: number, bootId = newBootId()): AnyEvent {
  return {
    v: 1,
    id: newEventId(),
    deviceId,
    bootId,
    seq,
    at: new Date().toISOString(),
    type: 'panic.pressed',
    body: { panicId: newEventId(), source: 'desk' },
  };
}

export function storeConformance(name: string, open: () => Promise<OpenedStore>): void {
  describe(`store conformance: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let another: () => Promise<Store>;

    beforeEach(async () => {
      ({ store, cleanup, another } = await open());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('migrates up to the latest version and down to empty, and up again', async () => {
      expect(await store.schemaVersion()).toBeGreaterThanOrEqual(2);
      await store.migrateDown(0);
      expect(await store.schemaVersion()).toBe(0);
      await store.migrate();
      expect(await store.schemaVersion()).toBeGreaterThanOrEqual(2);
      expect(await store.countEvents()).toBe(0);
    });

    it('keeps organisations and clinics, and refuses a duplicate organisation name', async () => {
      const org = await store.createOrganisation('Acme Health');
      await expect(store.createOrganisation('Acme Health')).rejects.toSatisfy((e) =>
        isCallboxError(e, ErrorCode.Conflict),
      );
      const clinic = await store.createClinic({
        organisationId: org.id,
        name: 'Main St',
        timezone: 'America/New_York',
        phoneNumbers: ['+15550001000'],
        answeringService: '+15550009999',
        contacts: [{ name: 'Dr Who', phone: '+15550001001' }],
      });
      expect(await store.getClinic(clinic.id)).toEqual(clinic);
      const updated = await store.updateClinic(clinic.id, { name: 'Main Street', answeringService: null });
      expect(updated.name).toBe('Main Street');
      expect(updated.answeringService).toBeNull();
      expect(updated.phoneNumbers).toEqual(['+15550001000']);
      expect((await store.listClinics({ organisationId: org.id })).map((c) => c.id)).toEqual([clinic.id]);
      await expect(store.updateClinic(newEventId(), { name: 'x' })).rejects.toSatisfy((e) =>
        isCallboxError(e, ErrorCode.NotFound),
      );
    });

    it('pages boxes, clinics and organisations from a cursor in key order', async () => {
      for (const serial of ['PG-0003', 'PG-0001', 'PG-0002']) await store.createBox({ serial, claimState: 'pending' });
      const first = await store.listBoxes({ claimState: 'pending', limit: 2 });
      expect(first.map((b) => b.serial)).toEqual(['PG-0001', 'PG-0002']);
      const rest = await store.listBoxes({ claimState: 'pending', limit: 2, after: 'PG-0002' });
      expect(rest.map((b) => b.serial)).toEqual(['PG-0003']);
      const made = [];
      for (const name of ['Same', 'Same', 'Alpha']) {
        made.push(
          await store.createClinic({
            organisationId: null,
            name,
            timezone: 'UTC',
            phoneNumbers: [],
            answeringService: null,
            contacts: [],
          }),
        );
      }
      const all = await store.listClinics();
      const paged = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.listClinics({ limit: 1, ...(after ? { after } : {}) });
        paged.push(...page);
        if (page.length < 1) break;
        after = page[0]?.id;
      }
      expect(paged.map((c) => c.id)).toEqual(all.map((c) => c.id));
      expect(new Set(paged.map((c) => c.id)).size).toBe(all.length);
      for (const name of ['Org B', 'Org A']) await store.createOrganisation(name);
      const orgs = await store.listOrganisations();
      const o1 = await store.listOrganisations({ limit: 1 });
      const o2 = await store.listOrganisations({ limit: 10, after: o1[0]?.id as string });
      expect([...o1, ...o2].map((o) => o.id)).toEqual(orgs.map((o) => o.id));
    });

    it('creates, finds, updates and filters boxes', async () => {
      const b = await store.createBox({ serial: 'CB-0001', claimState: 'registered' });
      expect(b).toMatchObject({ serial: 'CB-0001', deviceId: null, claimState: 'registered', desiredVersion: 0 });
      await expect(store.createBox({ serial: 'CB-0001', claimState: 'pending' })).rejects.toSatisfy((e) =>
        isCallboxError(e, ErrorCode.Conflict),
      );
      await store.createBox({ serial: 'CB-0002', claimState: 'pending', model: 'cb1' });
      const a = await store.updateBox('CB-0001', { deviceId: 'cb-0001', claimState: 'approved', firmware: '1.2.3' });
      expect(a.deviceId).toBe('cb-0001');
      expect((await store.getBoxByDeviceId('cb-0001'))?.serial).toBe('CB-0001');
      expect((await store.listBoxes({ claimState: 'pending' })).map((x) => x.serial)).toEqual(['CB-0002']);
      await expect(store.updateBox('CB-0002', { deviceId: 'cb-0001' })).rejects.toSatisfy((e) =>
        isCallboxError(e, ErrorCode.Conflict),
      );
      await expect(store.updateBox('NOPE', { model: 'x' })).rejects.toSatisfy((e) =>
        isCallboxError(e, ErrorCode.NotFound),
      );
      const seen = new Date(Date.now() - 5000).toISOString();
      await store.updateBox('CB-0002', { deviceId: 'cb-0002', online: true });
      await store.touchBoxes([
        { deviceId: 'cb-0001', lastSeenAt: seen, online: true },
        { deviceId: 'cb-0002', lastSeenAt: seen, online: false },
        { deviceId: 'cb-none', lastSeenAt: seen, online: true },
      ]);
      const t = await store.getBox('CB-0001');
      expect(t?.online).toBe(true);
      expect(t?.lastSeenAt).toBe(seen);
      expect((await store.getBox('CB-0002'))?.online).toBe(false);
    });

    it('stores, replaces and revokes credentials', async () => {
      await store.putCredential({ username: 'cb-1', kind: 'device', subject: 'cb-1', hash: 'h1', mosquittoHash: 'm1' });
      await store.putCredential({ username: 'ops:al', kind: 'ops', subject: 'al', hash: 'h2', mosquittoHash: null });
      expect((await store.listActiveCredentials()).map((c) => c.username)).toEqual(['cb-1', 'ops:al']);
      expect(await store.revokeCredential('cb-1')).toBe(true);
      expect(await store.revokeCredential('cb-1')).toBe(false);
      expect((await store.getCredential('cb-1'))?.revokedAt).not.toBeNull();
      expect((await store.listActiveCredentials()).map((c) => c.username)).toEqual(['ops:al']);
      const again = await store.putCredential({
        username: 'cb-1',
        kind: 'device',
        subject: 'cb-1',
        hash: 'h3',
        mosquittoHash: null,
      });
      expect(again.revokedAt).toBeNull();
      expect(again.hash).toBe('h3');
    });

    it('keeps ops users with roles', async () => {
      await store.createOpsUser({ name: 'alice', role: 'admin' });
      await expect(store.createOpsUser({ name: 'alice', role: 'viewer' })).rejects.toSatisfy((e) =>
        isCallboxError(e, ErrorCode.Conflict),
      );
      expect((await store.getOpsUser('alice'))?.role).toBe('admin');
      expect(await store.getOpsUser('bob')).toBeUndefined();
      expect((await store.listOpsUsers()).length).toBe(1);
    });

    it('versions desired configuration per box', async () => {
      await store.createBox({ serial: 'CB-0001', claimState: 'approved' });
      await store.updateBox('CB-0001', { deviceId: 'cb-0001' });
      const settings = Value.Default(DeviceSettingsSchema, {}) as never;
      const v1 = await store.putDesiredConfig('cb-0001', settings, 'ops:alice');
      const v2 = await store.putDesiredConfig('cb-0001', settings, 'ops:alice');
      expect([v1.version, v2.version]).toEqual([1, 2]);
      expect((await store.getDesiredConfig('cb-0001'))?.version).toBe(2);
      expect((await store.getDesiredConfig('cb-0001', 1))?.settings).toEqual(settings);
      expect((await store.getBox('CB-0001'))?.desiredVersion).toBe(2);
      expect((await store.listLatestDesiredConfigs()).map((c) => [c.deviceId, c.version])).toEqual([['cb-0001', 2]]);
      await expect(store.putDesiredConfig('nobody', settings, 'x')).rejects.toSatisfy((e) =>
        isCallboxError(e, ErrorCode.NotFound),
      );
    });

    it('appends to the audit log with before and after', async () => {
      await store.appendAudit({
        actor: 'ops:alice',
        action: 'clinics.update',
        target: 'clinic:1',
        before: { a: 1 },
        after: { a: 2 },
      });
      await store.appendAudit({
        actor: 'ops:bob',
        action: 'boxes.assign',
        target: 'box:CB-1',
        before: null,
        after: { c: 1 },
      });
      const all = await store.listAudit();
      expect(all.map((e) => e.action)).toEqual(['boxes.assign', 'clinics.update']);
      const one = await store.listAudit({ target: 'clinic:1' });
      expect(one[0]).toMatchObject({ actor: 'ops:alice', before: { a: 1 }, after: { a: 2 } });
      expect(Date.parse(one[0]?.at ?? '')).not.toBeNaN();
    });

    it('stores events once by id, in one batch, and returns only the new ids', async () => {
      const boot = newBootId();
      const batch = [1, 2, 3].map((s) => sampleEvent('cb-0001', s, boot));
      expect((await store.insertEvents(batch)).sort()).toEqual(batch.map((e) => e.id).sort());
      const again = [...batch, sampleEvent('cb-0001', 4, boot)];
      const fresh = await store.insertEvents(again);
      expect(fresh).toEqual([again[3]?.id]);
      expect(await store.countEvents()).toBe(4);
      expect(await store.countEvents({ deviceId: 'cb-0001' })).toBe(4);
      const listed = await store.listEvents({ deviceId: 'cb-0001', order: 'asc' });
      expect(listed.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      expect(listed[0]).toMatchObject({ type: 'panic.pressed', bootId: boot, body: batch[0]?.body });
      expect((await store.listEvents({ limit: 2 })).length).toBe(2);
      expect(await store.maxSeq('cb-0001')).toBe(4);
      expect(await store.maxSeq('cb-none')).toBe(0);
      // a duplicate inside one batch is stored once
      const e = sampleEvent('cb-0002', 1);
      expect(await store.insertEvents([e, e])).toEqual([e.id]);
    });

    it('finds sequence gaps from the stored events', async () => {
      const boot = newBootId();
      await store.insertEvents([1, 2, 5, 6, 9].map((s) => sampleEvent('cb-0001', s, boot)));
      await store.insertEvents([3, 4].map((s) => sampleEvent('cb-0002', s, boot)));
      expect(await store.findGaps('cb-0001')).toEqual([
        { deviceId: 'cb-0001', fromSeq: 3, toSeq: 4 },
        { deviceId: 'cb-0001', fromSeq: 7, toSeq: 8 },
      ]);
      expect(await store.findGaps()).toContainEqual({ deviceId: 'cb-0002', fromSeq: 1, toSeq: 2 });
      await store.insertEvents([3, 4, 7, 8].map((s) => sampleEvent('cb-0001', s, boot)));
      expect(await store.findGaps('cb-0001')).toEqual([]);
    });

    it('inserts a large batch in one statement', async () => {
      const boot = newBootId();
      const batch = Array.from({ length: 1000 }, (_, i) =>
        sampleEvent(`cb-${String(i % 50).padStart(4, '0')}`, i + 1, boot),
      );
      expect((await store.insertEvents(batch)).length).toBe(1000);
      expect(await store.countEvents()).toBe(1000);
    });

    it('gives events positions in the order they were stored, whatever their ids', async () => {
      const boot = newBootId();
      const older = sampleEvent('cb-0001', 1, boot);
      const newer = sampleEvent('cb-0001', 2, boot);
      // The box's backlog arrives after a newer event of another box: stored later, so read later.
      await store.insertEvents([newer]);
      await store.insertEvents([older, newer]);
      const third = sampleEvent('cb-0002', 1);
      await store.insertEvents([third]);
      const all = await store.readEventsAfter(0);
      expect(all.map((e) => e.id)).toEqual([newer.id, older.id, third.id]);
      expect(all[0]).toMatchObject({ deviceId: 'cb-0001', seq: 2, type: 'panic.pressed', body: newer.body });
      const [p1, p2, p3] = all.map((e) => e.pos) as [number, number, number];
      expect(p1 < p2 && p2 < p3).toBe(true);
      expect((await store.readEventsAfter(p1)).map((e) => e.id)).toEqual([older.id, third.id]);
      expect((await store.readEventsAfter(p1, 1)).map((e) => e.id)).toEqual([older.id]);
      expect(await store.readEventsAfter(p3)).toEqual([]);
      expect(await store.eventsHead()).toBe(p3);
    });

    it('keeps a cursor: one owner under a lease, moved only from where it was read', async () => {
      const t0 = '2026-11-26T15:00:00.000Z';
      const t1 = '2026-11-26T15:00:30.000Z';
      const t2 = '2026-11-26T15:01:30.000Z';
      const a = await store.claimCursor('test', 'fleet-a', t0, '2026-11-26T15:01:00.000Z');
      expect(a).toMatchObject({ name: 'test', pos: 0, owner: 'fleet-a' });
      expect(await store.claimCursor('test', 'fleet-b', t1, t2)).toBeUndefined(); // held
      expect(await store.advanceCursor('test', { owner: 'fleet-b', from: 0, to: 5, now: t1, until: t2 })).toBe(false);
      expect(await store.advanceCursor('test', { owner: 'fleet-a', from: 3, to: 5, now: t1, until: t2 })).toBe(false);
      expect(await store.advanceCursor('test', { owner: 'fleet-a', from: 0, to: 5, now: t1, until: t2 })).toBe(true);
      expect(await store.getCursor('test')).toMatchObject({ pos: 5, owner: 'fleet-a' });
      // fleet-a died: its lease runs out and fleet-b takes the cursor where it was.
      const b = await store.claimCursor('test', 'fleet-b', '2026-11-26T15:02:00.000Z', '2026-11-26T15:03:00.000Z');
      expect(b).toMatchObject({ pos: 5, owner: 'fleet-b' });
      expect(await store.advanceCursor('test', { owner: 'fleet-a', from: 5, to: 9, now: t2, until: t2 })).toBe(false);
      await store.releaseCursor('test', 'fleet-b');
      expect(await store.claimCursor('test', 'fleet-a', t0, t1)).toMatchObject({ pos: 5, owner: 'fleet-a' });
      expect(await store.getCursor('nothing')).toBeUndefined();
    });

    it("starts the alert engine's cursor at the end of the events stored before the upgrade", async () => {
      await store.migrateDown(2);
      await store.insertEvents([1, 2, 3].map((s) => sampleEvent('cb-0001', s)));
      await store.migrate();
      const head = await store.eventsHead();
      expect((await store.readEventsAfter(0)).map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(await store.getCursor('alerts')).toMatchObject({ pos: head, owner: null });
      await store.insertEvents([sampleEvent('cb-0001', 4)]);
      expect((await store.readEventsAfter(head)).map((e) => e.seq)).toEqual([4]);
    });

    it('lets a reader following the positions see every event once while two writers insert', async () => {
      const other = await another();
      try {
        const writers = [store, other].map(async (s, w) => {
          for (let b = 0; b < 40; b++) {
            await s.insertEvents([0, 1, 2, 3, 4].map((i) => sampleEvent(`cb-w${w}`, b * 5 + i + 1)));
          }
        });
        let done = false;
        const all = Promise.all(writers).then(() => {
          done = true;
        });
        const seen: string[] = [];
        let pos = 0;
        for (;;) {
          const finished = done; // read once more after the writers finished
          const got = await other.readEventsAfter(pos, 7);
          for (const e of got) seen.push(e.id);
          pos = got.at(-1)?.pos ?? pos;
          if (finished && got.length === 0) break;
        }
        await all;
        expect(seen.length).toBe(400);
        expect(new Set(seen).size).toBe(400);
      } finally {
        await other.close();
      }
    });

    it('keeps releases, rollouts and each box’s progress (over-the-air updates)', async () => {
      const at = new Date().toISOString();
      const release = {
        version: '1.2.0',
        program: 'device',
        arch: 'arm64',
        keyId: '0123456789abcdef',
        manifest: '{"version":"1.2.0"}',
        signature: 'c2ln',
        sha256: 'a'.repeat(64),
        totalBytes: 3_000_000_000,
        receivedBytes: 0,
        state: 'uploading' as const,
        createdBy: 'ops:alice',
        createdAt: at,
      };
      await store.putRelease(release);
      await store.putRelease({ ...release, receivedBytes: 3_000_000_000, state: 'ready' });
      expect(await store.getRelease('1.2.0')).toEqual({ ...release, receivedBytes: 3_000_000_000, state: 'ready' });
      expect((await store.listReleases()).map((r) => r.version)).toEqual(['1.2.0']);
      const rollout = {
        id: newEventId(),
        version: '1.2.0',
        stages: [10, 50, 100],
        stage: 0,
        state: 'running' as const,
        pausedReason: null,
        failureMaxCount: 2,
        failureMaxShare: 0.25,
        createdBy: 'ops:alice',
        createdAt: at,
        updatedAt: at,
      };
      await store.createRollout(rollout, [
        { deviceId: 'cb-b', rank: 1 },
        { deviceId: 'cb-a', rank: 0 },
      ]);
      expect(await store.getRollout(rollout.id)).toEqual(rollout);
      expect((await store.listRolloutBoxes(rollout.id)).map((b) => [b.deviceId, b.rank, b.state])).toEqual([
        ['cb-a', 0, null],
        ['cb-b', 1, null],
      ]);
      expect(await store.setRolloutBox(rollout.id, 'cb-a', { state: 'downloading', bytes: 2_500_000_000 })).toBe(true);
      expect(await store.setRolloutBox(rollout.id, 'cb-zz', { state: 'failed' })).toBe(false);
      await store.setRolloutBox(rollout.id, 'cb-a', { state: 'rolled_back', running: '1.1.0', reason: 'health' });
      expect((await store.listRolloutBoxes(rollout.id))[0]).toMatchObject({
        state: 'rolled_back',
        running: '1.1.0',
        bytes: 2_500_000_000,
        reason: 'health',
      });
      const paused = await store.updateRollout(rollout.id, { state: 'paused', pausedReason: 'too many failures' });
      expect(paused).toMatchObject({ state: 'paused', pausedReason: 'too many failures', stage: 0 });
      expect(await store.listRollouts({ state: 'running' })).toEqual([]);
      expect((await store.listRollouts({ state: 'paused' })).map((r) => r.id)).toEqual([rollout.id]);
      const resumed = await store.updateRollout(rollout.id, { state: 'running', pausedReason: null, stage: 1 });
      expect(resumed).toMatchObject({ state: 'running', pausedReason: null, stage: 1 });
    });
  });
}
