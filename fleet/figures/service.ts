/**
 * What the figures ops methods answer (ops.ts maps them; the HTTP API maps
 * the same methods): a clinic's figures over a range, the weekday x hour
 * heatmap, targets, telemetry history and the CSV exports.
 */
import type { Static } from '@sinclair/typebox';
import { wallClock } from '../../shared/clinic-hours.js';
import type { FIGURES_OPS_METHODS, FigureBucket } from '../../shared/contract/figures-ops.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { maskInText, maskNumber, maskPhoneNumbers } from '../../shared/log.js';
import type { PatientCipher } from '../crypto/patient-data.js';
import type { Registry } from '../registry.js';
import type { Clinic, Store } from '../store/types.js';
import { csvDocument } from './csv.js';
import {
  addDays,
  bucketStarts,
  deriveFigures,
  localDate,
  startOfLocalDate,
  zeroCounters,
  zeroHistogram,
} from './math.js';
import type { FiguresStore } from './store.js';
import type { Targets } from './targets.js';

type M = typeof FIGURES_OPS_METHODS;
type Params<K extends keyof M> = Static<M[K]['params']>;
type Result<K extends keyof M> = Static<M[K]['result']>;

/** The longest range per grain (hour: 93 days of 24 buckets; day: 10 years; week: 20 years). */
const MAX_DAYS: Record<FigureBucket, number> = { hour: 93, day: 3660, week: 7320 };
const DEFAULT_EXPORT_ROWS = 2000;

function checkDate(field: string, v: string): void {
  const [y, m, d] = v.split('-').map(Number);
  const t = new Date(Date.UTC(y ?? 0, (m ?? 1) - 1, d ?? 1));
  if (Number.isNaN(t.getTime()) || t.toISOString().slice(0, 10) !== v) {
    throw new CallboxError(ErrorCode.ValidationFailed, `${field}: "${v}" is not a calendar date (YYYY-MM-DD)`);
  }
}

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** Export range: a date is on the clinic's wall clock (UTC without a clinic), `to` through its end. */
function exportRange(p: { from: string; to: string }, tz: string): { from: string; to: string } {
  const at = (field: string, v: string, end: boolean): number => {
    if (v.length === 10) {
      checkDate(field, v);
      return startOfLocalDate(end ? addDays(v, 1) : v, tz);
    }
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new CallboxError(ErrorCode.ValidationFailed, `${field}: "${v}" is not a time`);
    return t;
  };
  const from = at('from', p.from, false);
  const to = at('to', p.to, true);
  if (to <= from) {
    throw new CallboxError(ErrorCode.ValidationFailed, `to (${p.to}) must be after from (${p.from})`);
  }
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

/** "2026-11-24 09:00:00" on the clinic's wall clock. */
function localTime(atMs: number, timeZone: string): string {
  const w = wallClock(atMs, timeZone);
  const hh = String(Math.floor(w.minute / 60)).padStart(2, '0');
  const mm = String(w.minute % 60).padStart(2, '0');
  const ss = String(Math.floor((atMs % 60_000) / 1000)).padStart(2, '0');
  return `${w.date} ${hh}:${mm}:${ss}`;
}

const brief = (c: Clinic) => ({ id: c.id, name: c.name, timezone: c.timezone });

export class FiguresService {
  constructor(
    private readonly store: Store,
    private readonly registry: Pick<Registry, 'resolveClinic' | 'resolveBox'>,
    readonly figures: FiguresStore,
    private readonly patient: PatientCipher | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async clinicFigures(p: Params<'figures.clinic'>): Promise<Result<'figures.clinic'>> {
    const clinic = await this.registry.resolveClinic(p.clinic);
    const bucket = p.bucket ?? 'day';
    checkDate('from', p.from);
    checkDate('to', p.to);
    const days = daysBetween(p.from, p.to) + 1;
    if (days < 1) throw new CallboxError(ErrorCode.ValidationFailed, `to (${p.to}) is before from (${p.from})`);
    if (days > MAX_DAYS[bucket]) {
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        `from ${p.from} to ${p.to} is ${days} days: by ${bucket} at most ${MAX_DAYS[bucket]} days (ask by day or week)`,
      );
    }
    const starts = bucketStarts(bucket, p.from, p.to);
    const end = `${addDays(p.to, 1)}T00:00`;
    // Side by side (PostgreSQL runs them on separate pool connections; SQLite one after another).
    const [rows, totals, targets] = await Promise.all([
      this.figures.rollups(clinic.id, bucket, starts[0] ?? `${p.from}T00:00`, end),
      this.figures.totals(clinic.id, `${p.from}T00:00`, end),
      this.figures.getTargets(clinic.id),
    ]);
    const byStart = new Map(rows.map((r) => [r.bucket, r]));
    const series = starts.map((start) => {
      const r = byStart.get(start);
      return { start, ...deriveFigures(r?.counters ?? zeroCounters(), r?.hist ?? zeroHistogram()) };
    });
    return {
      clinic: brief(clinic),
      bucket,
      from: p.from,
      to: p.to,
      targets,
      series,
      totals: deriveFigures(totals.counters, totals.hist),
    };
  }

  async heatmap(p: Params<'figures.heatmap'>): Promise<Result<'figures.heatmap'>> {
    const clinic = await this.registry.resolveClinic(p.clinic);
    const weeks = p.weeks ?? 8;
    const to = p.to ?? localDate(this.now(), clinic.timezone);
    checkDate('to', to);
    const from = addDays(to, -7 * weeks + 1);
    const cells = await this.figures.heatmap(clinic.id, `${from}T00:00`, `${addDays(to, 1)}T00:00`);
    const grid = () => Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => 0));
    const offered = grid();
    const answered = grid();
    let max = 0;
    for (const c of cells) {
      const o = offered[c.weekday];
      const a = answered[c.weekday];
      if (!o || !a || c.hour < 0 || c.hour > 23) continue;
      o[c.hour] = c.offered;
      a[c.hour] = c.answered;
      max = Math.max(max, c.offered);
    }
    return { clinic: brief(clinic), from, to, weeks, offered, answered, max };
  }

  async targets(ref: string): Promise<Targets> {
    const clinic = await this.registry.resolveClinic(ref);
    return this.figures.getTargets(clinic.id);
  }

  async setTargets(actor: string, p: Params<'figures.targets.set'>): Promise<Targets> {
    const clinic = await this.registry.resolveClinic(p.clinic);
    const before = await this.figures.getTargets(clinic.id);
    const after: Targets = {
      serviceLevelTargetS: p.serviceLevelTargetS ?? before.serviceLevelTargetS,
      shortAbandonS: p.shortAbandonS ?? before.shortAbandonS,
      repeatWindowH: p.repeatWindowH ?? before.repeatWindowH,
    };
    await this.figures.putTargets(clinic.id, after, actor);
    await this.store.appendAudit({
      actor,
      action: 'figures.targets.set',
      target: `clinic:${clinic.id}`,
      before,
      after,
    });
    return after;
  }

  async telemetryHistory(p: Params<'telemetry.history'>): Promise<Result<'telemetry.history'>> {
    const box = await this.registry.resolveBox(p.box);
    if (!box.deviceId) return [];
    return this.figures.telemetryHistory(box.deviceId, {
      ...(p.from ? { from: p.from } : {}),
      ...(p.to ? { to: p.to } : {}),
      limit: p.limit ?? 500,
    });
  }

  private async scope(ref: string | undefined): Promise<{ clinic: Clinic | null; tz: string }> {
    if (!ref) return { clinic: null, tz: 'UTC' };
    const clinic = await this.registry.resolveClinic(ref);
    return { clinic, tz: clinic.timezone };
  }

  private open(sealed: unknown): string | null {
    if (sealed === null || sealed === undefined) return null;
    const s = String(sealed);
    return this.patient ? this.patient.openText(s) : s;
  }

  private async names(): Promise<{ serial: (deviceId: string) => string; clinic: (id: string) => Promise<string> }> {
    const boxes = new Map<string, string>();
    for (const b of await this.store.listBoxes()) if (b.deviceId) boxes.set(b.deviceId, b.serial);
    const clinics = new Map<string, string>();
    return {
      serial: (id) => boxes.get(id) ?? id,
      clinic: async (id) => {
        if (!clinics.has(id)) clinics.set(id, (await this.store.getClinic(id))?.name ?? id);
        return clinics.get(id) ?? id;
      },
    };
  }

  async exportCalls(p: Params<'export.calls'>, clear: boolean): Promise<Result<'export.calls'>> {
    const { clinic, tz } = await this.scope(p.clinic);
    const range = exportRange(p, tz);
    const limit = p.limit ?? DEFAULT_EXPORT_ROWS;
    const rows = await this.figures.exportCalls({
      clinicIds: clinic ? [clinic.id] : null,
      ...range,
      after: p.after ?? null,
      limit,
    });
    const names = await this.names();
    const zones = new Map<string, string>();
    const out: unknown[][] = [];
    for (const r of rows) {
      const clinicId = String(r.clinic_id);
      if (!zones.has(clinicId)) zones.set(clinicId, (await this.store.getClinic(clinicId))?.timezone ?? 'UTC');
      const startedAt = String(r.started_at);
      const wall = localTime(Date.parse(startedAt), zones.get(clinicId) ?? 'UTC');
      const number = this.open(r.number_sealed);
      const secs = (v: unknown) => (v === null || v === undefined ? null : Number(v) / 1000);
      out.push([
        r.call_id,
        await names.clinic(clinicId),
        names.serial(String(r.device_id)),
        startedAt,
        wall,
        r.outcome,
        secs(r.ring_ms),
        secs(r.answer_ms),
        secs(r.talk_ms),
        Number(r.repeat_call) === 1 ? 'yes' : 'no',
        r.in_hours === null ? null : Number(r.in_hours) === 1 ? 'yes' : 'no',
        r.sms ?? null,
        number === null ? null : clear ? number : maskNumber(number),
      ]);
    }
    const last = rows[rows.length - 1];
    return {
      csv: csvDocument(
        [
          'call_id',
          'clinic',
          'box',
          'started_at',
          'local_time',
          'outcome',
          'ring_s',
          'answer_s',
          'talk_s',
          'repeat',
          'in_hours',
          'followup_sms',
          'number',
        ],
        out,
      ),
      rows: out.length,
      next: rows.length === limit && last ? `${last.started_at}|${last.device_id}|${last.call_id}` : null,
      numbers: clear ? 'clear' : 'masked',
    };
  }

  async exportEvents(p: Params<'export.events'>, clear: boolean): Promise<Result<'export.events'>> {
    const { clinic, tz } = await this.scope(p.clinic);
    const range = exportRange(p, tz);
    const limit = p.limit ?? DEFAULT_EXPORT_ROWS;
    let after: number | null = null;
    if (p.after !== undefined) {
      after = Number(p.after);
      if (!Number.isInteger(after) || after < 0) {
        throw new CallboxError(ErrorCode.ValidationFailed, `after: "${p.after}" is not a cursor of export.events`);
      }
    }
    const deviceIds = clinic
      ? (await this.store.listBoxes({ clinicId: clinic.id })).flatMap((b) => (b.deviceId ? [b.deviceId] : []))
      : null;
    const rows = await this.figures.exportEvents({ deviceIds, ...range, after, limit });
    const names = await this.names();
    const out = rows.map((r) => {
      const raw = typeof r.body === 'string' ? JSON.parse(r.body) : r.body;
      const body = this.patient ? this.patient.openFields(raw) : raw;
      const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
      return [
        r.id,
        iso(r.at),
        iso(r.received_at),
        names.serial(String(r.device_id)),
        r.device_id,
        Number(r.seq),
        r.type,
        JSON.stringify(clear ? body : maskPhoneNumbers(body)),
      ];
    });
    const last = rows[rows.length - 1];
    return {
      csv: csvDocument(['id', 'at', 'received_at', 'box', 'device_id', 'seq', 'type', 'body'], out),
      rows: out.length,
      next: rows.length === limit && last ? String(last.pos) : null,
      numbers: clear ? 'clear' : 'masked',
    };
  }

  async exportAlerts(p: Params<'export.alerts'>, clear: boolean): Promise<Result<'export.alerts'>> {
    const { clinic, tz } = await this.scope(p.clinic);
    const range = exportRange(p, tz);
    const limit = p.limit ?? DEFAULT_EXPORT_ROWS;
    const rows = await this.figures.exportAlerts({
      clinicIds: clinic ? [clinic.id] : null,
      ...range,
      after: p.after ?? null,
      limit,
    });
    const names = await this.names();
    const out: unknown[][] = [];
    for (const r of rows) {
      out.push([
        r.id,
        await names.clinic(String(r.clinic_id)),
        r.condition,
        r.severity,
        r.state,
        r.short_code,
        r.first_at,
        r.last_at,
        Number(r.occurrences),
        r.acked_at,
        r.acked_by,
        r.resolved_at,
        r.resolved_by,
        clear ? r.text : maskInText(String(r.text)),
      ]);
    }
    const last = rows[rows.length - 1];
    return {
      csv: csvDocument(
        [
          'id',
          'clinic',
          'condition',
          'severity',
          'state',
          'short_code',
          'first_at',
          'last_at',
          'occurrences',
          'acked_at',
          'acked_by',
          'resolved_at',
          'resolved_by',
          'text',
        ],
        out,
      ),
      rows: out.length,
      next: rows.length === limit && last ? `${last.first_at}|${last.id}` : null,
      numbers: clear ? 'clear' : 'masked',
    };
  }
}
