/**
 * The call figures on a fresh fleet store (SQLite or PostgreSQL), with a
 * scripted day of calls turned into the events a box sends, and the figures
 * that day must give computed here from the script alone (not from the
 * fleet's code): the independent side of test/figures-*.test.ts and
 * bench/figures.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetBus } from '../../fleet/bus.js';
import { numberHasher } from '../../fleet/figures/feature.js';
import { FiguresReader } from '../../fleet/figures/reader.js';
import { FiguresService } from '../../fleet/figures/service.js';
import { FiguresStore } from '../../fleet/figures/store.js';
import { Registry } from '../../fleet/registry.js';
import { PostgresStore } from '../../fleet/store/postgres.js';
import type { SqlStore } from '../../fleet/store/sql-store.js';
import { SqliteStore } from '../../fleet/store/sqlite.js';
import type { Clinic } from '../../fleet/store/types.js';
import type { AnyEvent } from '../../shared/contract/events.js';
import { ANSWER_BUCKETS_S } from '../../shared/contract/figures-ops.js';
import { newBootId, newEventId } from '../../shared/ids.js';
import { getLogger } from '../../shared/log.js';
import { createTestDatabase } from './postgres.js';

export interface FiguresRig {
  store: SqlStore;
  figures: FiguresStore;
  reader: FiguresReader;
  service: FiguresService;
  registry: Registry;
  clinic: Clinic;
  deviceId: string;
  close: () => Promise<void>;
}

export type StoreKind = 'sqlite' | 'postgres';

/** A migrated store with one clinic (`timezone`) and one approved box in it. */
export async function openFiguresRig(kind: StoreKind, timezone = 'America/New_York', batch = 500): Promise<FiguresRig> {
  let store: SqlStore;
  let drop: () => Promise<void>;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-figures-'));
    store = await SqliteStore.open(join(dir, 'fleet.db'));
    drop = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const db = await createTestDatabase();
    store = await PostgresStore.open(db.url);
    drop = db.drop;
  }
  await store.migrate();
  const figures = FiguresStore.over(store);
  await figures.migrate();
  const clinic = await store.createClinic({
    organisationId: null,
    name: 'Main St',
    timezone,
    phoneNumbers: [],
    answeringService: null,
    contacts: [],
  });
  await store.createBox({ serial: 'CB-0001', claimState: 'approved', clinicId: clinic.id });
  const deviceId = 'cb-cb-0001';
  await store.updateBox('CB-0001', { deviceId });
  const reader = new FiguresReader(
    store,
    figures,
    { hashNumber: numberHasher(Buffer.from('test-key')), seal: (n) => n },
    { owner: 'test', batch, leaseS: 60, log: getLogger('test:figures') },
  );
  const registry = new Registry({
    store,
    bus: new FleetBus(),
    sink: { put: () => undefined, revoke: () => undefined },
    mqtt: () => undefined,
    caPem: null,
    publicUrl: null,
  });
  const service = new FiguresService(store, registry, figures, undefined);
  return {
    store,
    figures,
    reader,
    service,
    registry,
    clinic,
    deviceId,
    close: async () => {
      await reader.stop();
      await store.close();
      await drop();
    },
  };
}

export type Outcome = 'answered' | 'abandoned' | 'missed' | 'rolled_over' | 'voicemail' | 'voicemail_failed';

/** One call of a script: when it starts (an instant), what happened and how long each part took. */
export interface ScriptedCall {
  startMs: number;
  outcome: Outcome;
  /** Seconds it rang before it was answered (answered), hung up (abandoned, missed) or left (rolled over, voicemail). */
  ringS: number;
  /** Talk (answered) or recording (voicemail) seconds. */
  talkS?: number;
  number: string | null;
  sms?: 'sent' | 'failed';
}

/** The events a box sends for these calls, in the order it sends them (by time). */
export function eventsOf(calls: readonly ScriptedCall[], deviceId: string): AnyEvent[] {
  const bootId = newBootId();
  const timed: { at: number; type: AnyEvent['type']; body: Record<string, unknown> }[] = [];
  calls.forEach((c, i) => {
    const callId = `call-${i}-${c.startMs}`;
    const base = { callId, number: c.number, withheld: c.number === null };
    const ringMs = c.ringS * 1000;
    const talkMs = (c.talkS ?? 0) * 1000;
    timed.push({
      at: c.startMs,
      type: 'call.incoming',
      body: { ...base, inHours: true, repeatCaller: false, waiting: false },
    });
    if (c.outcome === 'answered') {
      timed.push({
        at: c.startMs + ringMs,
        type: 'call.answered',
        body: { ...base, by: 'handset', rings: Math.ceil(c.ringS / 5), timeToAnswerMs: ringMs },
      });
    }
    if (c.outcome === 'rolled_over') {
      timed.push({
        at: c.startMs + ringMs,
        type: 'call.rolled_over',
        body: { ...base, to: '+15550009999', how: 'deflect', rings: 2 },
      });
    }
    const endAt = c.startMs + ringMs + talkMs;
    timed.push({
      at: endAt,
      type: 'call.ended',
      body: {
        ...base,
        outcome: c.outcome,
        rings: Math.ceil(c.ringS / 5),
        timeToAnswerMs: c.outcome === 'answered' ? ringMs : null,
        durationMs: c.outcome === 'answered' || c.outcome.startsWith('voicemail') ? talkMs : 0,
        repeatCaller: false,
        inHours: true,
      },
    });
    if (c.sms && c.number) {
      timed.push({
        at: endAt + 1000,
        type: 'call.followup_sms',
        body: { callId, number: c.number, status: c.sms },
      });
    }
  });
  timed.sort((a, b) => a.at - b.at);
  return timed.map((t, i) => ({
    v: 1,
    id: newEventId(),
    deviceId,
    bootId,
    seq: i + 1,
    at: new Date(t.at).toISOString(),
    type: t.type,
    body: t.body,
  })) as AnyEvent[];
}

export interface ExpectedFigures {
  offered: number;
  answered: number;
  abandoned: number;
  shortAbandoned: number;
  missed: number;
  rolledOver: number;
  voicemail: number;
  voicemailFailed: number;
  answeredInTarget: number;
  repeatCalls: number;
  followupSmsSent: number;
  asaS: number | null;
  p90AnswerS: number | null;
  serviceLevel: number | null;
  abandonRate: number | null;
}

/**
 * The figures of a script by the definitions of docs/FIGURES.md, from the raw call list: ASA the mean
 * answer time; p90 the nearest-rank 90th percentile of the raw answer times, read as the histogram bucket
 * that holds it (the smallest bound of ANSWER_BUCKETS_S at or above it); service level and abandonment
 * over the calls offered less the short abandons; a repeat call is one whose number called within the
 * window before it.
 */
export function expectedFigures(
  calls: readonly ScriptedCall[],
  t = { serviceLevelTargetS: 30, shortAbandonS: 10, repeatWindowH: 24 },
): ExpectedFigures {
  const answeredTimes = calls.filter((c) => c.outcome === 'answered').map((c) => c.ringS);
  const sorted = [...answeredTimes].sort((a, b) => a - b);
  const raw90 = sorted.length ? sorted[Math.ceil(0.9 * sorted.length) - 1] : undefined;
  const p90 =
    raw90 === undefined
      ? null
      : (ANSWER_BUCKETS_S.find((b) => raw90 <= b) ?? ANSWER_BUCKETS_S[ANSWER_BUCKETS_S.length - 1]);
  const count = (o: Outcome) => calls.filter((c) => c.outcome === o).length;
  const short = calls.filter((c) => c.outcome === 'abandoned' && c.ringS < t.shortAbandonS).length;
  const inTarget = answeredTimes.filter((s) => s <= t.serviceLevelTargetS).length;
  // The same line: the same last 9 digits (a national form and its E.164 form are one caller).
  const line = (n: string | null) => (n === null ? null : n.replace(/\D/g, '').slice(-9));
  const repeats = calls.filter((c) =>
    calls.some(
      (o) =>
        o !== c &&
        c.number !== null &&
        line(o.number) === line(c.number) &&
        o.startMs < c.startMs &&
        o.startMs >= c.startMs - t.repeatWindowH * 3_600_000,
    ),
  ).length;
  const base = calls.length - short;
  return {
    offered: calls.length,
    answered: answeredTimes.length,
    abandoned: count('abandoned'),
    shortAbandoned: short,
    missed: count('missed'),
    rolledOver: count('rolled_over'),
    voicemail: count('voicemail') + count('voicemail_failed'),
    voicemailFailed: count('voicemail_failed'),
    answeredInTarget: inTarget,
    repeatCalls: repeats,
    followupSmsSent: calls.filter((c) => c.sms === 'sent' && c.number).length,
    asaS: answeredTimes.length ? answeredTimes.reduce((a, b) => a + b, 0) / answeredTimes.length : null,
    p90AnswerS: p90 ?? null,
    serviceLevel: base > 0 ? inTarget / base : null,
    abandonRate: base > 0 ? (count('abandoned') - short) / base : null,
  };
}
