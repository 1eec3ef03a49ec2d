/**
 * Triage results and clinics' urgent phrases, in the fleet's database
 * (tables of fleet store migration 6), on the fleet store's connection
 * (SQLite) or pool (PostgreSQL), like the alert store. Written once in SQL
 * both accept.
 *
 * A row is made `pending` when a voicemail's checksum is confirmed (before
 * the box is told), and is filled in by the queue: `done` (urgent or
 * routine) or `unavailable` (the tools or the model are missing, or the
 * audio could not be read: needs attention, never routine). Pending rows are
 * what a restarted fleet triages again.
 */
import type { Dialect } from '../store/migrate.js';
import type { Driver, Row } from '../store/sql-store.js';
import type { Store } from '../store/types.js';
import type { UrgentPhrase } from './phrases.js';
import type { Detection } from './spotter.js';
import type { VoiceStats } from './stress.js';

export type TriageState = 'pending' | 'done' | 'unavailable';

export interface TriageRecord {
  voicemailId: string;
  deviceId: string;
  clinicId: string | null;
  sha256: string;
  bytes: number;
  state: TriageState;
  attempts: number;
  /** null while pending. */
  urgent: boolean | null;
  /** Urgent, or triage unavailable: someone should listen soon. */
  attention: boolean;
  phrases: Detection[];
  stressScore: number | null;
  reasons: string[];
  /** The voice figures of the message (the caller's stress baseline next time). */
  voice: VoiceStats | null;
  /** Keyed hash of the caller's number (never the number), or null (withheld, or not reported yet). */
  callerKey: string | null;
  model: string | null;
  durationMs: number | null;
  triageMs: number | null;
  error: string | null;
  /** The alert raised for it, once raised. */
  alertId: string | null;
  storedAt: string;
  triagedAt: string | null;
}

export type TriageDone = Pick<
  TriageRecord,
  | 'state'
  | 'urgent'
  | 'attention'
  | 'phrases'
  | 'stressScore'
  | 'reasons'
  | 'voice'
  | 'callerKey'
  | 'model'
  | 'durationMs'
  | 'triageMs'
  | 'error'
  | 'clinicId'
>;

export interface TriageFilter {
  clinicId?: string;
  deviceId?: string;
  /** Only those needing attention (urgent or unavailable). */
  attention?: boolean;
  /** Only stored before this voicemail (paging newest first). */
  before?: string;
  limit?: number;
}

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : String(v);
}
function isoOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : iso(v);
}
function json<T>(v: unknown, empty: T): T {
  if (v === null || v === undefined) return empty;
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}
function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}
function boolOrNull(v: unknown): boolean | null {
  return v === null || v === undefined ? null : Boolean(v);
}

function toRecord(r: Row): TriageRecord {
  return {
    voicemailId: String(r.voicemail_id),
    deviceId: String(r.device_id),
    clinicId: (r.clinic_id as string | null) ?? null,
    sha256: String(r.sha256),
    bytes: Number(r.bytes),
    state: r.state as TriageState,
    attempts: Number(r.attempts),
    urgent: boolOrNull(r.urgent),
    attention: Boolean(r.attention),
    phrases: json<Detection[]>(r.phrases, []),
    stressScore: numOrNull(r.stress_score),
    reasons: json<string[]>(r.reasons, []),
    voice: json<VoiceStats | null>(r.voice, null),
    callerKey: (r.caller_key as string | null) ?? null,
    model: (r.model as string | null) ?? null,
    durationMs: numOrNull(r.duration_ms),
    triageMs: numOrNull(r.triage_ms),
    error: (r.error as string | null) ?? null,
    alertId: (r.alert_id as string | null) ?? null,
    storedAt: iso(r.stored_at),
    triagedAt: isoOrNull(r.triaged_at),
  };
}

export class TriageStore {
  private constructor(
    private readonly db: Driver,
    readonly dialect: Dialect,
  ) {}

  /** On the fleet store's connection (its migrations made the tables). */
  static over(store: Store): TriageStore {
    const c = (store as unknown as { connection?: () => { driver: Driver; dialect: Dialect } }).connection?.();
    if (!c) throw new Error('triage needs the SQL fleet store (SQLite or PostgreSQL)');
    return new TriageStore(c.driver, c.dialect);
  }

  /** A voicemail whose checksum was confirmed: pending triage. Idempotent (a stored voicemail confirmed again). */
  async addPending(v: {
    voicemailId: string;
    deviceId: string;
    clinicId: string | null;
    sha256: string;
    bytes: number;
    at: string;
  }): Promise<boolean> {
    const rows = await this.db.query(
      `INSERT INTO voicemail_triage (voicemail_id, device_id, clinic_id, sha256, bytes, state, attempts, attention, stored_at)
       VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7) ON CONFLICT (voicemail_id) DO NOTHING RETURNING voicemail_id`,
      [v.voicemailId, v.deviceId, v.clinicId, v.sha256, v.bytes, false, v.at],
    );
    return rows.length > 0;
  }

  async get(voicemailId: string): Promise<TriageRecord | undefined> {
    const rows = await this.db.query('SELECT * FROM voicemail_triage WHERE voicemail_id = $1', [voicemailId]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** Pending triage, oldest first (what a restarted fleet picks up again). */
  async listPending(limit = 1000): Promise<TriageRecord[]> {
    const rows = await this.db.query(
      "SELECT * FROM voicemail_triage WHERE state = 'pending' ORDER BY stored_at, voicemail_id LIMIT $1",
      [limit],
    );
    return rows.map(toRecord);
  }

  /** Needing attention with no alert raised yet (a crash between the result and the alert). */
  async listUnalerted(limit = 1000): Promise<TriageRecord[]> {
    const rows = await this.db.query(
      `SELECT * FROM voicemail_triage WHERE state <> 'pending' AND attention = $1 AND alert_id IS NULL
       ORDER BY stored_at LIMIT $2`,
      [true, limit],
    );
    return rows.map(toRecord);
  }

  async countAttempt(voicemailId: string): Promise<number> {
    const rows = await this.db.query(
      'UPDATE voicemail_triage SET attempts = attempts + 1 WHERE voicemail_id = $1 RETURNING attempts',
      [voicemailId],
    );
    return Number(rows[0]?.attempts ?? 0);
  }

  /** The result: pending -> done or unavailable (once; false when it was no longer pending). */
  async finish(voicemailId: string, r: TriageDone, at: string): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE voicemail_triage SET state = $2, urgent = $3, attention = $4, phrases = $5, stress_score = $6,
         reasons = $7, voice = $8, caller_key = $9, model = $10, duration_ms = $11, triage_ms = $12, error = $13,
         clinic_id = COALESCE($14, clinic_id), triaged_at = $15
       WHERE voicemail_id = $1 AND state = 'pending' RETURNING voicemail_id`,
      [
        voicemailId,
        r.state,
        r.urgent,
        r.attention,
        JSON.stringify(r.phrases),
        r.stressScore,
        JSON.stringify(r.reasons),
        r.voice ? JSON.stringify(r.voice) : null,
        r.callerKey,
        r.model,
        r.durationMs,
        r.triageMs,
        r.error,
        r.clinicId,
        at,
      ],
    );
    return rows.length > 0;
  }

  async setAlert(voicemailId: string, alertId: string): Promise<void> {
    await this.db.query('UPDATE voicemail_triage SET alert_id = $2 WHERE voicemail_id = $1', [voicemailId, alertId]);
  }

  /** The voice figures of the caller's earlier triaged messages, newest first. */
  async callerHistory(callerKey: string, before: string, limit: number): Promise<VoiceStats[]> {
    if (limit <= 0) return [];
    const rows = await this.db.query(
      `SELECT voice FROM voicemail_triage WHERE caller_key = $1 AND state = 'done' AND voice IS NOT NULL
         AND voicemail_id <> $2 ORDER BY stored_at DESC LIMIT $3`,
      [callerKey, before, limit],
    );
    return rows.map((r) => json<VoiceStats | null>(r.voice, null)).filter((v): v is VoiceStats => v !== null);
  }

  /** Newest first. */
  async list(f: TriageFilter = {}): Promise<TriageRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.clinicId) add('clinic_id = ?', f.clinicId);
    if (f.deviceId) add('device_id = ?', f.deviceId);
    if (f.attention !== undefined) add('attention = ?', f.attention);
    if (f.before) add('voicemail_id < ?', f.before);
    params.push(Math.min(f.limit ?? 100, 1000));
    const rows = await this.db.query(
      `SELECT * FROM voicemail_triage ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY voicemail_id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toRecord);
  }

  /** A clinic's own urgent phrases, or undefined (it uses the defaults). */
  async getPhrases(
    clinicId: string,
  ): Promise<{ phrases: UrgentPhrase[]; updatedBy: string; updatedAt: string } | undefined> {
    const rows = await this.db.query('SELECT * FROM triage_phrases WHERE clinic_id = $1', [clinicId]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      phrases: json<UrgentPhrase[]>(r.phrases, []),
      updatedBy: String(r.updated_by),
      updatedAt: iso(r.updated_at),
    };
  }

  /** Replace a clinic's phrases (null: back to the defaults). */
  async putPhrases(clinicId: string, phrases: UrgentPhrase[] | null, by: string, at: string): Promise<void> {
    if (phrases === null) {
      await this.db.query('DELETE FROM triage_phrases WHERE clinic_id = $1', [clinicId]);
      return;
    }
    await this.db.query(
      `INSERT INTO triage_phrases (clinic_id, phrases, updated_by, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (clinic_id) DO UPDATE SET phrases = $2, updated_by = $3, updated_at = $4`,
      [clinicId, JSON.stringify(phrases), by, at],
    );
  }

  /**
   * The `voicemail.recorded` event of a voicemail as stored (patient fields sealed: open them with the fleet's
   * PatientCipher), if the box reported it yet.
   */
  async recordedEvent(
    deviceId: string,
    voicemailId: string,
  ): Promise<{ id: string; at: string; body: unknown } | undefined> {
    const field = this.dialect === 'postgres' ? "body->>'voicemailId'" : "json_extract(body, '$.voicemailId')";
    const rows = await this.db.query(
      `SELECT id, at, body FROM events WHERE device_id = $1 AND type = 'voicemail.recorded' AND ${field} = $2 LIMIT 1`,
      [deviceId, voicemailId],
    );
    const r = rows[0];
    return r ? { id: String(r.id), at: iso(r.at), body: json<unknown>(r.body, {}) } : undefined;
  }
}
