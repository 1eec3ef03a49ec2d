/**
 * Applying stored call events to the rollups, in one transaction with the
 * move of the figures cursor (fleet/figures/reader.ts): a batch is counted
 * completely or not at all, and the cursor says which batches were.
 *
 * Once per call and type, whatever the event ids: a box that crashed
 * between sending and saving repeats an event under a new id
 * (device/calls/README.md), so the call's row in figure_calls records what
 * was counted for it (ended, sms) and a second call.ended or
 * call.followup_sms for the same call changes nothing.
 *
 * A call is counted when it ends (call.ended), in the buckets of its start
 * (its call.incoming; without one, the end less talk and answer time) on
 * its clinic's wall clock, with the clinic and targets of that moment.
 * Ring time of an unanswered call = end - start (null without call.incoming:
 * then never a short abandon).
 *
 * A batch is applied in memory: a few reads first (its calls' rows, the
 * earlier calls of its callers' numbers, the clinics and targets), then
 * multi-row upserts of the changed call rows and of the rollup deltas.
 */

import type { EventBody } from '../../shared/contract/events.js';
import type { Row } from '../store/sql-store.js';
import type { StoredEvent } from '../store/types.js';
import { type Counters, histIndex, localBuckets, zeroCounters, zeroHistogram } from './math.js';
import { COUNTER_COLUMNS, type Counter, HIST_COLUMNS } from './migrations.js';
import { type Targets, targetsOf } from './targets.js';

export type Query = (sql: string, params?: unknown[]) => Promise<Row[]>;

export interface RollupDeps {
  /** The keyed hash of a caller number (repeat calls), never reversible. */
  hashNumber: (number: string) => string;
  /** The number sealed for exports (patient-data key). */
  seal: (number: string) => string;
}

interface ClinicInfo {
  id: string;
  timezone: string;
}

interface Bucket {
  clinicId: string;
  grain: 'hour' | 'day' | 'week';
  bucket: string;
  weekday: number;
  hourOfDay: number;
  counters: Counters;
  hist: number[];
}

const n = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/** One batch's changes to the rollups, summed in memory and written with one upsert per bucket. */
class Deltas {
  private readonly buckets = new Map<string, Bucket>();

  add(clinic: ClinicInfo, startedAt: string, change: Partial<Counters>, histAt?: number): void {
    const b = localBuckets(Date.parse(startedAt), clinic.timezone);
    for (const [grain, bucket] of [
      ['hour', b.hour],
      ['day', b.day],
      ['week', b.week],
    ] as const) {
      const key = `${clinic.id}|${grain}|${bucket}`;
      let d = this.buckets.get(key);
      if (!d) {
        d = {
          clinicId: clinic.id,
          grain,
          bucket,
          weekday: grain === 'hour' ? b.weekday : 0,
          hourOfDay: grain === 'hour' ? b.hourOfDay : 0,
          counters: zeroCounters(),
          hist: zeroHistogram(),
        };
        this.buckets.set(key, d);
      }
      for (const [k, v] of Object.entries(change) as [Counter, number][]) d.counters[k] += v;
      if (histAt !== undefined) d.hist[histAt] = (d.hist[histAt] ?? 0) + 1;
    }
  }

  async write(q: Query): Promise<void> {
    const counterKeys = Object.keys(COUNTER_COLUMNS) as Counter[];
    const cols = [
      'clinic_id',
      'grain',
      'bucket',
      'weekday',
      'hour_of_day',
      ...counterKeys.map((k) => COUNTER_COLUMNS[k]),
      ...HIST_COLUMNS,
    ];
    const sums = [...counterKeys.map((k) => COUNTER_COLUMNS[k]), ...HIST_COLUMNS]
      .map((c) => `${c} = figure_rollups.${c} + excluded.${c}`)
      .join(', ');
    const sql = `INSERT INTO figure_rollups (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})
      ON CONFLICT (clinic_id, grain, bucket) DO UPDATE SET ${sums}`;
    for (const d of this.buckets.values()) {
      await q(sql, [
        d.clinicId,
        d.grain,
        d.bucket,
        d.weekday,
        d.hourOfDay,
        ...counterKeys.map((k) => d.counters[k]),
        ...d.hist,
      ]);
    }
  }
}

/** A call's row of figure_calls, in memory while a batch is applied. */
interface CallRow {
  deviceId: string;
  callId: string;
  clinicId: string | null;
  startedAt: string;
  incomingSeen: boolean;
  ended: boolean;
  outcome: string | null;
  ringMs: number | null;
  answerMs: number | null;
  talkMs: number | null;
  repeat: boolean;
  inHours: boolean | null;
  numberHash: string | null;
  numberSealed: string | null;
  sms: string | null;
}

const CALL_COLUMNS = [
  'device_id',
  'call_id',
  'clinic_id',
  'started_at',
  'incoming_seen',
  'ended',
  'outcome',
  'ring_ms',
  'answer_ms',
  'talk_ms',
  'repeat_call',
  'in_hours',
  'number_hash',
  'number_sealed',
  'sms',
] as const;

function toCallRow(r: Row): CallRow {
  const nn = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    deviceId: String(r.device_id),
    callId: String(r.call_id),
    clinicId: r.clinic_id === null || r.clinic_id === undefined ? null : String(r.clinic_id),
    startedAt: String(r.started_at),
    incomingSeen: n(r.incoming_seen) === 1,
    ended: n(r.ended) === 1,
    outcome: r.outcome === null || r.outcome === undefined ? null : String(r.outcome),
    ringMs: nn(r.ring_ms),
    answerMs: nn(r.answer_ms),
    talkMs: nn(r.talk_ms),
    repeat: n(r.repeat_call) === 1,
    inHours: r.in_hours === null || r.in_hours === undefined ? null : n(r.in_hours) === 1,
    numberHash: r.number_hash === null || r.number_hash === undefined ? null : String(r.number_hash),
    numberSealed: r.number_sealed === null || r.number_sealed === undefined ? null : String(r.number_sealed),
    sms: r.sms === null || r.sms === undefined ? null : String(r.sms),
  };
}

function callValues(c: CallRow): unknown[] {
  const b = (v: boolean | null) => (v === null ? null : v ? 1 : 0);
  return [
    c.deviceId,
    c.callId,
    c.clinicId,
    c.startedAt,
    b(c.incomingSeen),
    b(c.ended),
    c.outcome,
    c.ringMs,
    c.answerMs,
    c.talkMs,
    b(c.repeat),
    b(c.inHours),
    c.numberHash,
    c.numberSealed,
    c.sms,
  ];
}

const CALL_EVENTS = new Set(['call.incoming', 'call.ended', 'call.followup_sms']);
const key = (deviceId: string, callId: string) => `${deviceId}|${callId}`;

/**
 * Applies a batch of stored events inside the caller's transaction, in memory: the rows of the batch's
 * calls and the earlier calls of the same numbers (repeat check) are read first with a few queries, the
 * events applied in order, and the changed rows and rollup deltas written back with multi-row upserts.
 */
export class RollupBatch {
  private readonly deltas = new Deltas();
  private readonly boxClinic = new Map<string, ClinicInfo | null>();
  private readonly clinicZone = new Map<string, string | null>();
  private readonly targets = new Map<string, Targets>();
  private readonly rows = new Map<string, CallRow>();
  private readonly dirty = new Set<string>();
  /** Per clinic and number hash: the calls known, by key, with their start. */
  private readonly byNumber = new Map<string, Map<string, Map<string, string>>>();
  private readonly hashes = new Map<string, string>();
  /** Calls counted (call.ended applied) by this batch. */
  calls = 0;

  constructor(
    private readonly q: Query,
    private readonly deps: RollupDeps,
  ) {}

  async apply(events: readonly StoredEvent[]): Promise<void> {
    const calls = events.filter((e) => CALL_EVENTS.has(e.type));
    if (calls.length === 0) return;
    await this.prefetch(calls);
    for (const e of calls) {
      if (e.type === 'call.incoming') await this.incoming(e, e.body as EventBody<'call.incoming'>);
      else if (e.type === 'call.ended') await this.ended(e, e.body as EventBody<'call.ended'>);
      else await this.sms(e, e.body as EventBody<'call.followup_sms'>);
    }
    await this.writeRows();
    await this.deltas.write(this.q);
  }

  private hash(number: string): string {
    let h = this.hashes.get(number);
    if (h === undefined) {
      h = this.deps.hashNumber(number);
      this.hashes.set(number, h);
    }
    return h;
  }

  /** The batch's call rows, and the calls of its numbers that may make one a repeat. */
  private async prefetch(calls: readonly StoredEvent[]): Promise<void> {
    const callIds = [...new Set(calls.map((e) => (e.body as { callId: string }).callId))];
    for (let i = 0; i < callIds.length; i += 500) {
      const chunk = callIds.slice(i, i + 500);
      const rows = await this.q(
        `SELECT * FROM figure_calls WHERE call_id IN (${chunk.map((_, j) => `$${j + 1}`).join(', ')})`,
        chunk,
      );
      for (const r of rows) {
        const c = toCallRow(r);
        this.rows.set(key(c.deviceId, c.callId), c);
      }
    }
    // Earlier calls of the numbers that end in this batch, per clinic, as far back as any start minus the window.
    const wanted = new Map<string, { hashes: Set<string>; from: number }>();
    for (const e of calls) {
      if (e.type !== 'call.ended') continue;
      const b = e.body as EventBody<'call.ended'>;
      if (b.withheld || !b.number) continue;
      const clinic = await this.clinicOfBox(e.deviceId);
      if (!clinic) continue;
      const t = await this.targetsOf(clinic.id);
      const row = this.rows.get(key(e.deviceId, b.callId));
      const earliest = Math.min(
        Date.parse(calls[0]?.at ?? e.at),
        Date.parse(e.at) - b.durationMs - (b.timeToAnswerMs ?? 0),
        row ? Date.parse(row.startedAt) : Number.POSITIVE_INFINITY,
      );
      const w = wanted.get(clinic.id) ?? { hashes: new Set<string>(), from: Number.POSITIVE_INFINITY };
      w.hashes.add(this.hash(b.number));
      w.from = Math.min(w.from, earliest - t.repeatWindowH * 3_600_000);
      wanted.set(clinic.id, w);
    }
    for (const [clinicId, w] of wanted) {
      const hashes = [...w.hashes];
      for (let i = 0; i < hashes.length; i += 500) {
        const chunk = hashes.slice(i, i + 500);
        const rows = await this.q(
          `SELECT device_id, call_id, number_hash, started_at FROM figure_calls
           WHERE clinic_id = $1 AND started_at >= $2 AND number_hash IN (${chunk.map((_, j) => `$${j + 3}`).join(', ')})`,
          [clinicId, new Date(w.from).toISOString(), ...chunk],
        );
        for (const r of rows) {
          this.noteNumber(
            clinicId,
            String(r.number_hash),
            key(String(r.device_id), String(r.call_id)),
            String(r.started_at),
          );
        }
      }
    }
  }

  private noteNumber(clinicId: string, hash: string, k: string, startedAt: string): void {
    let perClinic = this.byNumber.get(clinicId);
    if (!perClinic) {
      perClinic = new Map();
      this.byNumber.set(clinicId, perClinic);
    }
    let calls = perClinic.get(hash);
    if (!calls) {
      calls = new Map();
      perClinic.set(hash, calls);
    }
    calls.set(k, startedAt);
  }

  private isRepeat(clinicId: string, hash: string, k: string, startedAt: string, windowH: number): boolean {
    const since = new Date(Date.parse(startedAt) - windowH * 3_600_000).toISOString();
    for (const [other, at] of this.byNumber.get(clinicId)?.get(hash) ?? []) {
      if (other !== k && at >= since && at < startedAt) return true;
    }
    return false;
  }

  private async writeRows(): Promise<void> {
    const rows = [...this.dirty].map((k) => this.rows.get(k)).filter((r): r is CallRow => r !== undefined);
    const set = CALL_COLUMNS.filter((c) => c !== 'device_id' && c !== 'call_id')
      .map((c) => `${c} = excluded.${c}`)
      .join(', ');
    for (let i = 0; i < rows.length; i += 100) {
      const chunk = rows.slice(i, i + 100);
      const params: unknown[] = [];
      const values = chunk.map((r) => {
        const base = params.length;
        params.push(...callValues(r));
        return `(${CALL_COLUMNS.map((_, j) => `$${base + j + 1}`).join(', ')})`;
      });
      await this.q(
        `INSERT INTO figure_calls (${CALL_COLUMNS.join(', ')}) VALUES ${values.join(', ')}
         ON CONFLICT (device_id, call_id) DO UPDATE SET ${set}`,
        params,
      );
    }
  }

  private async clinicOfBox(deviceId: string): Promise<ClinicInfo | null> {
    if (!this.boxClinic.has(deviceId)) {
      const rows = await this.q(
        'SELECT c.id, c.timezone FROM boxes b JOIN clinics c ON c.id = b.clinic_id WHERE b.device_id = $1',
        [deviceId],
      );
      const r = rows[0];
      this.boxClinic.set(deviceId, r ? { id: String(r.id), timezone: String(r.timezone) } : null);
    }
    return this.boxClinic.get(deviceId) ?? null;
  }

  private async clinicById(id: string | null): Promise<ClinicInfo | null> {
    if (!id) return null;
    if (!this.clinicZone.has(id)) {
      const rows = await this.q('SELECT timezone FROM clinics WHERE id = $1', [id]);
      this.clinicZone.set(id, rows[0] ? String(rows[0].timezone) : null);
    }
    const tz = this.clinicZone.get(id);
    return tz ? { id, timezone: tz } : null;
  }

  private async targetsOf(clinicId: string): Promise<Targets> {
    let t = this.targets.get(clinicId);
    if (!t) {
      const rows = await this.q('SELECT * FROM figure_targets WHERE clinic_id = $1', [clinicId]);
      t = targetsOf(rows[0]);
      this.targets.set(clinicId, t);
    }
    return t;
  }

  private put(row: CallRow): void {
    const k = key(row.deviceId, row.callId);
    this.rows.set(k, row);
    this.dirty.add(k);
  }

  private blank(deviceId: string, callId: string, clinicId: string | null, startedAt: string): CallRow {
    return {
      deviceId,
      callId,
      clinicId,
      startedAt,
      incomingSeen: false,
      ended: false,
      outcome: null,
      ringMs: null,
      answerMs: null,
      talkMs: null,
      repeat: false,
      inHours: null,
      numberHash: null,
      numberSealed: null,
      sms: null,
    };
  }

  private async incoming(e: StoredEvent, body: EventBody<'call.incoming'>): Promise<void> {
    const row = this.rows.get(key(e.deviceId, body.callId));
    if (!row) {
      const clinic = await this.clinicOfBox(e.deviceId);
      this.put({ ...this.blank(e.deviceId, body.callId, clinic?.id ?? null, e.at), incomingSeen: true });
    } else if (!row.incomingSeen && !row.ended) {
      this.put({ ...row, startedAt: e.at, incomingSeen: true });
    }
  }

  private async ended(e: StoredEvent, body: EventBody<'call.ended'>): Promise<void> {
    const k = key(e.deviceId, body.callId);
    const row = this.rows.get(k);
    if (row?.ended) return; // this call was counted: a repeated call.ended
    const clinic = await this.clinicOfBox(e.deviceId);
    const endMs = Date.parse(e.at);
    const seen = row?.incomingSeen === true;
    const tta = body.timeToAnswerMs;
    const startMs = seen ? Date.parse(row.startedAt) : endMs - body.durationMs - (tta ?? 0);
    const startedAt = new Date(startMs).toISOString();
    const answered = body.outcome === 'answered';
    const answerMs = answered ? (tta ?? Math.max(0, endMs - startMs - body.durationMs)) : null;
    const ringMs = answered ? answerMs : seen ? Math.max(0, endMs - startMs) : null;
    const number = body.withheld ? null : body.number;
    const hash = number ? this.hash(number) : null;
    let repeat = false;
    if (clinic && hash) {
      const t = await this.targetsOf(clinic.id);
      repeat = this.isRepeat(clinic.id, hash, k, startedAt, t.repeatWindowH);
      this.noteNumber(clinic.id, hash, k, startedAt);
    }
    this.put({
      ...(row ?? this.blank(e.deviceId, body.callId, null, startedAt)),
      clinicId: clinic?.id ?? null,
      startedAt,
      ended: true,
      outcome: body.outcome,
      ringMs,
      answerMs,
      talkMs: body.durationMs,
      repeat,
      inHours: body.inHours,
      numberHash: hash,
      numberSealed: number ? this.deps.seal(number) : null,
    });
    if (!clinic) return; // a box of no clinic: kept, counted nowhere
    this.calls++;
    const t = await this.targetsOf(clinic.id);
    const c: Partial<Counters> = { offered: 1 };
    if (repeat) c.repeatCalls = 1;
    let histAt: number | undefined;
    switch (body.outcome) {
      case 'answered':
        c.answered = 1;
        c.answerMsSum = answerMs ?? 0;
        if ((answerMs ?? 0) <= t.serviceLevelTargetS * 1000) c.answeredInTarget = 1;
        histAt = histIndex(answerMs ?? 0);
        break;
      case 'abandoned':
        c.abandoned = 1;
        if (ringMs !== null && ringMs < t.shortAbandonS * 1000) c.shortAbandoned = 1;
        break;
      case 'missed':
        c.missed = 1;
        break;
      case 'rolled_over':
        c.rolledOver = 1;
        break;
      case 'voicemail':
        c.voicemail = 1;
        break;
      case 'voicemail_failed':
        c.voicemail = 1;
        c.voicemailFailed = 1;
        break;
    }
    this.deltas.add(clinic, startedAt, c, histAt);
  }

  private async sms(e: StoredEvent, body: EventBody<'call.followup_sms'>): Promise<void> {
    const row = this.rows.get(key(e.deviceId, body.callId));
    const was = row?.sms ?? null;
    if (was === body.status || was === 'sent') return; // counted already (a failure then a success moves it)
    let clinic: ClinicInfo | null;
    let startedAt: string;
    if (row) {
      clinic = await this.clinicById(row.clinicId);
      startedAt = row.startedAt;
      this.put({ ...row, sms: body.status });
    } else {
      clinic = await this.clinicOfBox(e.deviceId);
      startedAt = e.at;
      this.put({ ...this.blank(e.deviceId, body.callId, clinic?.id ?? null, startedAt), sms: body.status });
    }
    if (!clinic) return;
    const c: Partial<Counters> = body.status === 'sent' ? { followupSmsSent: 1 } : { followupSmsFailed: 1 };
    if (was === 'failed') c.followupSmsFailed = -1;
    this.deltas.add(clinic, startedAt, c);
  }
}
