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

/** Applies a batch of stored events inside the caller's transaction. */
export class RollupBatch {
  private readonly deltas = new Deltas();
  private readonly boxClinic = new Map<string, ClinicInfo | null>();
  private readonly clinicZone = new Map<string, string | null>();
  private readonly targets = new Map<string, Targets>();
  /** Calls counted (call.ended applied) by this batch. */
  calls = 0;

  constructor(
    private readonly q: Query,
    private readonly deps: RollupDeps,
  ) {}

  async apply(events: readonly StoredEvent[]): Promise<void> {
    for (const e of events) {
      if (e.type === 'call.incoming') await this.incoming(e, e.body as EventBody<'call.incoming'>);
      else if (e.type === 'call.ended') await this.ended(e, e.body as EventBody<'call.ended'>);
      else if (e.type === 'call.followup_sms') await this.sms(e, e.body as EventBody<'call.followup_sms'>);
    }
    await this.deltas.write(this.q);
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

  private async row(deviceId: string, callId: string): Promise<Row | undefined> {
    return (await this.q('SELECT * FROM figure_calls WHERE device_id = $1 AND call_id = $2', [deviceId, callId]))[0];
  }

  private async incoming(e: StoredEvent, body: EventBody<'call.incoming'>): Promise<void> {
    const row = await this.row(e.deviceId, body.callId);
    if (!row) {
      const clinic = await this.clinicOfBox(e.deviceId);
      await this.q(
        `INSERT INTO figure_calls (device_id, call_id, clinic_id, started_at, incoming_seen, ended, repeat_call)
         VALUES ($1, $2, $3, $4, 1, 0, 0)`,
        [e.deviceId, body.callId, clinic?.id ?? null, e.at],
      );
    } else if (n(row.incoming_seen) === 0 && n(row.ended) === 0) {
      await this.q('UPDATE figure_calls SET started_at = $1, incoming_seen = 1 WHERE device_id = $2 AND call_id = $3', [
        e.at,
        e.deviceId,
        body.callId,
      ]);
    }
  }

  private async ended(e: StoredEvent, body: EventBody<'call.ended'>): Promise<void> {
    const row = await this.row(e.deviceId, body.callId);
    if (row && n(row.ended) === 1) return; // this call was counted: a repeated call.ended
    const clinic = await this.clinicOfBox(e.deviceId);
    const endMs = Date.parse(e.at);
    const seen = row !== undefined && n(row.incoming_seen) === 1;
    const tta = body.timeToAnswerMs;
    const startMs = seen ? Date.parse(String(row.started_at)) : endMs - body.durationMs - (tta ?? 0);
    const startedAt = new Date(startMs).toISOString();
    const answered = body.outcome === 'answered';
    const answerMs = answered ? (tta ?? Math.max(0, endMs - startMs - body.durationMs)) : null;
    const ringMs = answered ? answerMs : seen ? Math.max(0, endMs - startMs) : null;
    const number = body.withheld ? null : body.number;
    const hash = number ? this.deps.hashNumber(number) : null;
    let repeat = false;
    if (clinic && hash) {
      const t = await this.targetsOf(clinic.id);
      const since = new Date(startMs - t.repeatWindowH * 3_600_000).toISOString();
      const prior = await this.q(
        `SELECT 1 AS x FROM figure_calls WHERE clinic_id = $1 AND number_hash = $2 AND started_at >= $3
           AND started_at < $4 AND NOT (device_id = $5 AND call_id = $6) LIMIT 1`,
        [clinic.id, hash, since, startedAt, e.deviceId, body.callId],
      );
      repeat = prior.length > 0;
    }
    const values = [
      clinic?.id ?? null,
      startedAt,
      body.outcome,
      ringMs,
      answerMs,
      body.durationMs,
      repeat ? 1 : 0,
      body.inHours ? 1 : 0,
      hash,
      number ? this.deps.seal(number) : null,
      e.deviceId,
      body.callId,
    ];
    if (row) {
      await this.q(
        `UPDATE figure_calls SET clinic_id = $1, started_at = $2, ended = 1, outcome = $3, ring_ms = $4, answer_ms = $5,
           talk_ms = $6, repeat_call = $7, in_hours = $8, number_hash = $9, number_sealed = $10
         WHERE device_id = $11 AND call_id = $12`,
        values,
      );
    } else {
      await this.q(
        `INSERT INTO figure_calls (clinic_id, started_at, outcome, ring_ms, answer_ms, talk_ms, repeat_call, in_hours,
           number_hash, number_sealed, device_id, call_id, incoming_seen, ended)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 1)`,
        values,
      );
    }
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
    const row = await this.row(e.deviceId, body.callId);
    const was = row?.sms === null || row?.sms === undefined ? null : String(row.sms);
    if (was === body.status || was === 'sent') return; // counted already (a failure then a success moves it)
    let clinic: ClinicInfo | null;
    let startedAt: string;
    if (row) {
      clinic = await this.clinicById(row.clinic_id === null ? null : String(row.clinic_id));
      startedAt = String(row.started_at);
      await this.q('UPDATE figure_calls SET sms = $1 WHERE device_id = $2 AND call_id = $3', [
        body.status,
        e.deviceId,
        body.callId,
      ]);
    } else {
      clinic = await this.clinicOfBox(e.deviceId);
      startedAt = e.at;
      await this.q(
        `INSERT INTO figure_calls (device_id, call_id, clinic_id, started_at, incoming_seen, ended, repeat_call, sms)
         VALUES ($1, $2, $3, $4, 0, 0, 0, $5)`,
        [e.deviceId, body.callId, clinic?.id ?? null, startedAt, body.status],
      );
    }
    if (!clinic) return;
    const c: Partial<Counters> = body.status === 'sent' ? { followupSmsSent: 1 } : { followupSmsFailed: 1 };
    if (was === 'failed') c.followupSmsFailed = -1;
    this.deltas.add(clinic, startedAt, c);
  }
}
