/**
 * The triage store on both fleet databases (migration 6 of the fleet store): a pending row made once, the result
 * written once, pending rows found again, the caller's history by keyed hash, a clinic's phrases, and the box's
 * voicemail.recorded event found by its voicemail id (a JSON field, read per dialect).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TriageStore } from '../fleet/triage/store.js';
import { type AlertFixture, alertFixture, boxEvent } from './helpers/alerts.js';

describe.each(['sqlite', 'postgres'] as const)('triage store (%s)', (dialect) => {
  let fx: AlertFixture;
  let store: TriageStore;
  beforeEach(async () => {
    fx = await alertFixture({ dialect });
    store = TriageStore.over(fx.store);
  });
  afterEach(async () => {
    await fx.close();
  });

  const pending = (voicemailId: string, at: string) => ({
    voicemailId,
    deviceId: fx.boxes.main,
    clinicId: fx.clinic.id,
    sha256: 'a'.repeat(64),
    bytes: 1000,
    at,
  });
  const voice = { pitchHz: 120, pitchSpreadSt: 2, levelDb: -20, voicedS: 3 };
  const done = (urgent: boolean) => ({
    state: 'done' as const,
    urgent,
    attention: urgent,
    phrases: urgent ? [{ phrase: 'chest pain', startS: 2.1, endS: 2.6, score: 0.8 }] : [],
    stressScore: 0.1,
    reasons: ['r'],
    voice,
    callerKey: 'caller-1',
    model: 'pocketsphinx-kws en-us',
    durationMs: 6000,
    triageMs: 900,
    error: null,
    clinicId: null,
  });

  it('pending once, finished once, found again, listed, with the caller history', async () => {
    const a = '0193b2a4-5d00-7b32-9a11-000000000001';
    const b = '0193b2a4-5d00-7b32-9a11-000000000002';
    expect(await store.addPending(pending(a, '2026-12-01T10:00:00.000Z'))).toBe(true);
    expect(await store.addPending(pending(a, '2026-12-01T10:00:00.000Z'))).toBe(false);
    expect(await store.addPending(pending(b, '2026-12-01T11:00:00.000Z'))).toBe(true);
    expect((await store.listPending()).map((r) => r.voicemailId)).toEqual([a, b]);
    expect(await store.countAttempt(a)).toBe(1);
    expect(await store.finish(a, done(true), '2026-12-01T10:00:05.000Z')).toBe(true);
    expect(await store.finish(a, done(false), '2026-12-01T10:00:06.000Z')).toBe(false);
    const got = await store.get(a);
    expect(got).toMatchObject({ state: 'done', urgent: true, attention: true, clinicId: fx.clinic.id, alertId: null });
    expect(got?.phrases[0]).toEqual({ phrase: 'chest pain', startS: 2.1, endS: 2.6, score: 0.8 });
    expect(got?.triagedAt).toBe('2026-12-01T10:00:05.000Z');
    expect((await store.listPending()).map((r) => r.voicemailId)).toEqual([b]);
    expect((await store.listUnalerted()).map((r) => r.voicemailId)).toEqual([a]);
    await store.setAlert(a, 'alert-1');
    expect(await store.listUnalerted()).toEqual([]);
    expect(await store.callerHistory('caller-1', b, 5)).toEqual([voice]);
    expect(await store.callerHistory('caller-1', a, 5)).toEqual([]);
    expect((await store.list({ attention: true })).map((r) => r.voicemailId)).toEqual([a]);
    expect((await store.list({ clinicId: fx.clinic.id })).map((r) => r.voicemailId)).toEqual([b, a]);
  });

  it("a clinic's phrases, and the box's event of a voicemail", async () => {
    expect(await store.getPhrases(fx.clinic.id)).toBeUndefined();
    await store.putPhrases(
      fx.clinic.id,
      [{ phrase: 'chest pain', threshold: 1e-20 }],
      'ops:a',
      '2026-12-01T10:00:00.000Z',
    );
    await store.putPhrases(fx.clinic.id, [{ phrase: 'stroke', threshold: 1e-2 }], 'ops:b', '2026-12-01T11:00:00.000Z');
    expect(await store.getPhrases(fx.clinic.id)).toEqual({
      phrases: [{ phrase: 'stroke', threshold: 1e-2 }],
      updatedBy: 'ops:b',
      updatedAt: '2026-12-01T11:00:00.000Z',
    });
    await store.putPhrases(fx.clinic.id, null, 'ops:b', '2026-12-01T12:00:00.000Z');
    expect(await store.getPhrases(fx.clinic.id)).toBeUndefined();

    const voicemailId = '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6c';
    const e = boxEvent(fx.boxes.main, 'voicemail.recorded', {
      voicemailId,
      callId: 'c1',
      number: '+15551234567',
      durationMs: 6000,
      bytes: 1000,
      sha256: 'a'.repeat(64),
    });
    await fx.store.insertEvents([e]);
    const found = await store.recordedEvent(fx.boxes.main, voicemailId);
    expect(found?.id).toBe(e.id);
    expect((found?.body as { number?: string } | undefined)?.number).toBe('+15551234567');
    expect(await store.recordedEvent(fx.boxes.second, voicemailId)).toBeUndefined();
  });
});
