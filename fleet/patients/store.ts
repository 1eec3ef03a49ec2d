/**
 * The patients store: the call log, the number's contacts, the call-back list,
 * survey figures and each clinic's FHIR server, in the fleet's database on
 * its connection (PatientStore.over(fleetStore)), in SQL that SQLite and
 * PostgreSQL both accept. Numbers, matches, notes and the FHIR token are
 * sealed with the fleet's PatientCipher before they are written and opened
 * as they are read; rows are found by a number's blind index.
 *
 * Every write is idempotent (keyed by event id or by box and call id), so
 * applying a stored event a second time (the projector reads at least once)
 * changes nothing.
 */

import type { PatientCipher } from '../crypto/patient-data.js';
import type { Dialect } from '../store/migrate.js';
import { MigrationRunner } from '../store/migrate.js';
import type { Driver, Row, SqlStore } from '../store/sql-store.js';
import type { PatientMatch } from './fhir.js';
import { PATIENT_MIGRATIONS } from './migrations.js';

export type LookupState = 'pending' | 'found' | 'none' | 'several' | 'error' | 'skipped' | 'off' | 'withheld';
export type ContactKind = 'call' | 'voicemail' | 'sms';

export interface CallRow {
  deviceId: string;
  callId: string;
  clinicId: string | null;
  number: string | null;
  numberIx: string | null;
  withheld: boolean;
  inHours: boolean | null;
  startedAt: string;
  answeredAt: string | null;
  endedAt: string | null;
  outcome: string | null;
  rings: number | null;
  durationMs: number | null;
  lookup: LookupState;
  lookupDetail: string | null;
  matches: number;
  patient: PatientMatch | null;
  repeatReason: string | null;
}

export interface CallbackRow {
  deviceId: string;
  callId: string;
  clinicId: string | null;
  number: string | null;
  numberIx: string | null;
  reason: string;
  createdAt: string;
  state: 'open' | 'done';
  doneAt: string | null;
  doneBy: string | null;
  note: string | null;
  closedByCall: string | null;
}

export interface ContactRow {
  kind: ContactKind;
  at: string;
  callId: string | null;
  detail: string | null;
}

export interface FhirSettings {
  clinicId: string;
  baseUrl: string;
  token: string;
  updatedBy: string;
  updatedAt: string;
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const now = () => new Date().toISOString();

export class PatientStore {
  private readonly migrations: MigrationRunner;

  private constructor(
    private readonly db: Driver,
    readonly kind: Dialect,
    private readonly cipher: PatientCipher,
  ) {
    this.migrations = new MigrationRunner(db, kind, PATIENT_MIGRATIONS);
  }

  /** On the fleet store's connection (closed by the fleet store). */
  static over(store: SqlStore, cipher: PatientCipher): PatientStore {
    const { driver, dialect } = store.connection();
    return new PatientStore(driver, dialect, cipher);
  }

  async migrate(): Promise<void> {
    await this.migrations.up();
  }

  async migrateDown(version: number): Promise<void> {
    await this.migrations.down(version);
  }

  /** The blind index of a number (rows are found by it). */
  ix(number: string): string {
    return this.cipher.blindIndex(number.trim());
  }

  private seal(v: string | null): string | null {
    return v === null ? null : this.cipher.sealText(v);
  }

  /** A call_log row's first eight columns, device_id to started_at (the number sealed, its blind index beside). */
  private callRow(c: {
    deviceId: string;
    callId: string;
    clinicId: string | null;
    number: string | null;
    withheld: boolean;
    inHours: boolean;
    at: string;
  }): unknown[] {
    return [
      c.deviceId,
      c.callId,
      c.clinicId,
      this.seal(c.number),
      c.number ? this.ix(c.number) : null,
      c.withheld ? 1 : 0,
      c.inHours ? 1 : 0,
      c.at,
    ];
  }

  private open(v: unknown): string | null {
    return v === null || v === undefined ? null : this.cipher.openText(String(v));
  }

  private q(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.db.query(sql, params);
  }

  // ---- FHIR settings -----------------------------------------------------------

  async getFhir(clinicId: string): Promise<FhirSettings | undefined> {
    const r = (await this.q('SELECT * FROM patient_fhir WHERE clinic_id = $1', [clinicId]))[0];
    if (!r) return undefined;
    return {
      clinicId,
      baseUrl: String(r.base_url),
      token: this.open(r.token) ?? '',
      updatedBy: String(r.updated_by),
      updatedAt: String(r.updated_at),
    };
  }

  async putFhir(clinicId: string, baseUrl: string, token: string, by: string): Promise<void> {
    await this.q(
      `INSERT INTO patient_fhir (clinic_id, base_url, token, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (clinic_id) DO UPDATE SET base_url = $2, token = $3, updated_by = $4, updated_at = $5`,
      [clinicId, baseUrl, this.cipher.sealText(token), by, now()],
    );
  }

  async deleteFhir(clinicId: string): Promise<void> {
    await this.q('DELETE FROM patient_fhir WHERE clinic_id = $1', [clinicId]);
  }

  // ---- the call log ------------------------------------------------------------

  /** The call's row from its call.incoming; returns false if it was there already. */
  async startCall(c: {
    deviceId: string;
    callId: string;
    clinicId: string | null;
    number: string | null;
    withheld: boolean;
    inHours: boolean;
    at: string;
    lookup: LookupState;
  }): Promise<boolean> {
    const rows = await this.q(
      `INSERT INTO call_log (device_id, call_id, clinic_id, number, number_ix, withheld, in_hours, started_at, lookup, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (device_id, call_id) DO NOTHING RETURNING call_id`,
      [...this.callRow(c), c.lookup, now()],
    );
    return rows.length > 0;
  }

  async answerCall(deviceId: string, callId: string, at: string): Promise<void> {
    await this.q('UPDATE call_log SET answered_at = $3, updated_at = $4 WHERE device_id = $1 AND call_id = $2', [
      deviceId,
      callId,
      at,
      now(),
    ]);
  }

  /** The call's end (a call.ended without its call.incoming, e.g. after a box restart, makes the row). */
  async endCall(c: {
    deviceId: string;
    callId: string;
    clinicId: string | null;
    number: string | null;
    withheld: boolean;
    inHours: boolean;
    at: string;
    outcome: string;
    rings: number;
    durationMs: number;
  }): Promise<void> {
    await this.q(
      `INSERT INTO call_log (device_id, call_id, clinic_id, number, number_ix, withheld, in_hours, started_at, lookup,
         updated_at, ended_at, outcome, rings, duration_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'skipped', $9, $8, $10, $11, $12)
       ON CONFLICT (device_id, call_id) DO UPDATE SET ended_at = $8, outcome = $10, rings = $11, duration_ms = $12, updated_at = $9`,
      [...this.callRow(c), now(), c.outcome, c.rings, c.durationMs],
    );
  }

  async setLookup(
    deviceId: string,
    callId: string,
    r: { state: LookupState; detail?: string | null; matches?: number; patient?: PatientMatch | null },
  ): Promise<void> {
    await this.q(
      `UPDATE call_log SET lookup = $3, lookup_detail = $4, matches = $5, patient = $6, updated_at = $7
       WHERE device_id = $1 AND call_id = $2`,
      [
        deviceId,
        callId,
        r.state,
        r.detail ?? null,
        r.matches ?? 0,
        r.patient ? this.cipher.sealText(JSON.stringify(r.patient)) : null,
        now(),
      ],
    );
  }

  async setRepeat(deviceId: string, callId: string, reason: string | null): Promise<void> {
    await this.q('UPDATE call_log SET repeat_reason = $3 WHERE device_id = $1 AND call_id = $2', [
      deviceId,
      callId,
      reason,
    ]);
  }

  private toCall(r: Row): CallRow {
    const patient = this.open(r.patient);
    return {
      deviceId: String(r.device_id),
      callId: String(r.call_id),
      clinicId: str(r.clinic_id),
      number: this.open(r.number),
      numberIx: str(r.number_ix),
      withheld: num(r.withheld) === 1,
      inHours: r.in_hours === null || r.in_hours === undefined ? null : num(r.in_hours) === 1,
      startedAt: String(r.started_at),
      answeredAt: str(r.answered_at),
      endedAt: str(r.ended_at),
      outcome: str(r.outcome),
      rings: numOrNull(r.rings),
      durationMs: numOrNull(r.duration_ms),
      lookup: String(r.lookup) as LookupState,
      lookupDetail: str(r.lookup_detail),
      matches: num(r.matches ?? 0),
      patient: patient ? (JSON.parse(patient) as PatientMatch) : null,
      repeatReason: str(r.repeat_reason),
    };
  }

  async getCall(deviceId: string, callId: string): Promise<CallRow | undefined> {
    const r = (await this.q('SELECT * FROM call_log WHERE device_id = $1 AND call_id = $2', [deviceId, callId]))[0];
    return r ? this.toCall(r) : undefined;
  }

  /** A call by its id alone (ids are UUIDs made by the boxes); the newest if two boxes ever shared one. */
  async findCall(callId: string): Promise<CallRow | undefined> {
    const r = (await this.q('SELECT * FROM call_log WHERE call_id = $1 ORDER BY started_at DESC', [callId]))[0];
    return r ? this.toCall(r) : undefined;
  }

  async listCalls(f: { clinicId: string; from?: string; to?: string; limit: number }): Promise<CallRow[]> {
    const params: unknown[] = [f.clinicId];
    let where = 'clinic_id = $1';
    if (f.from) {
      params.push(f.from);
      where += ` AND started_at >= $${params.length}`;
    }
    if (f.to) {
      params.push(f.to);
      where += ` AND started_at < $${params.length}`;
    }
    params.push(f.limit);
    const rows = await this.q(
      `SELECT * FROM call_log WHERE ${where} ORDER BY started_at DESC, call_id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => this.toCall(r));
  }

  // ---- contacts ------------------------------------------------------------------

  async addContact(c: {
    eventId: string;
    clinicId: string;
    number: string;
    kind: ContactKind;
    at: string;
    callId: string | null;
    detail: string | null;
  }): Promise<void> {
    await this.q(
      `INSERT INTO patient_contacts (event_id, clinic_id, number_ix, kind, at, call_id, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
      [c.eventId, c.clinicId, this.ix(c.number), c.kind, c.at, c.callId, c.detail],
    );
  }

  /** A call's outcome on its contact row (the last contacts show it). */
  async setContactDetail(clinicId: string, callId: string, detail: string): Promise<void> {
    await this.q("UPDATE patient_contacts SET detail = $3 WHERE clinic_id = $1 AND call_id = $2 AND kind = 'call'", [
      clinicId,
      callId,
      detail,
    ]);
  }

  /** The number's contacts with the clinic before `before` (and not of call `exceptCall`), newest first. */
  async contactsBefore(
    clinicId: string,
    numberIx: string,
    before: string,
    limit: number,
    exceptCall?: string,
  ): Promise<ContactRow[]> {
    const rows = await this.q(
      `SELECT kind, at, call_id, detail FROM patient_contacts
       WHERE clinic_id = $1 AND number_ix = $2 AND at <= $3 AND (call_id IS NULL OR call_id <> $4 OR kind <> 'call')
       ORDER BY at DESC LIMIT $5`,
      [clinicId, numberIx, before, exceptCall ?? '', limit],
    );
    return rows.map((r) => ({
      kind: String(r.kind) as ContactKind,
      at: String(r.at),
      callId: str(r.call_id),
      detail: str(r.detail),
    }));
  }

  // ---- call-backs ------------------------------------------------------------------

  async openCallback(c: {
    deviceId: string;
    callId: string;
    clinicId: string | null;
    number: string | null;
    reason: string;
    at: string;
  }): Promise<boolean> {
    const rows = await this.q(
      `INSERT INTO callbacks (device_id, call_id, clinic_id, number, number_ix, reason, created_at, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'open') ON CONFLICT (device_id, call_id) DO NOTHING RETURNING call_id`,
      [c.deviceId, c.callId, c.clinicId, this.seal(c.number), c.number ? this.ix(c.number) : null, c.reason, c.at],
    );
    return rows.length > 0;
  }

  private toCallback(r: Row): CallbackRow {
    return {
      deviceId: String(r.device_id),
      callId: String(r.call_id),
      clinicId: str(r.clinic_id),
      number: this.open(r.number),
      numberIx: str(r.number_ix),
      reason: String(r.reason),
      createdAt: String(r.created_at),
      state: String(r.state) as 'open' | 'done',
      doneAt: str(r.done_at),
      doneBy: str(r.done_by),
      note: this.open(r.note),
      closedByCall: str(r.closed_by_call),
    };
  }

  async listCallbacks(f: { clinicId: string; state: 'open' | 'done' | 'all'; limit: number }): Promise<CallbackRow[]> {
    const rows =
      f.state === 'all'
        ? await this.q('SELECT * FROM callbacks WHERE clinic_id = $1 ORDER BY created_at, call_id LIMIT $2', [
            f.clinicId,
            f.limit,
          ])
        : await this.q(
            `SELECT * FROM callbacks WHERE clinic_id = $1 AND state = $2 ORDER BY ${f.state === 'open' ? 'created_at' : 'done_at DESC'}, call_id LIMIT $3`,
            [f.clinicId, f.state, f.limit],
          );
    return rows.map((r) => this.toCallback(r));
  }

  async findCallback(callId: string): Promise<CallbackRow | undefined> {
    const r = (await this.q('SELECT * FROM callbacks WHERE call_id = $1 ORDER BY created_at DESC', [callId]))[0];
    return r ? this.toCallback(r) : undefined;
  }

  async getCallback(deviceId: string, callId: string): Promise<CallbackRow | undefined> {
    const r = (await this.q('SELECT * FROM callbacks WHERE device_id = $1 AND call_id = $2', [deviceId, callId]))[0];
    return r ? this.toCallback(r) : undefined;
  }

  /** Mark one done if it is open; returns the row after, or undefined if it was not open. */
  async closeCallback(
    deviceId: string,
    callId: string,
    by: string,
    note: string | null,
    closedByCall: string | null,
    at = now(),
  ): Promise<CallbackRow | undefined> {
    const rows = await this.q(
      `UPDATE callbacks SET state = 'done', done_at = $3, done_by = $4, note = $5, closed_by_call = $6
       WHERE device_id = $1 AND call_id = $2 AND state = 'open' RETURNING *`,
      [deviceId, callId, at, by, this.seal(note), closedByCall],
    );
    return rows[0] ? this.toCallback(rows[0]) : undefined;
  }

  /** Open call-backs of this number at the clinic made before `before`. */
  async openCallbacksOf(clinicId: string, numberIx: string, before: string): Promise<CallbackRow[]> {
    const rows = await this.q(
      "SELECT * FROM callbacks WHERE clinic_id = $1 AND number_ix = $2 AND state = 'open' AND created_at <= $3",
      [clinicId, numberIx, before],
    );
    return rows.map((r) => this.toCallback(r));
  }

  // ---- surveys -------------------------------------------------------------------

  async addSurvey(s: {
    eventId: string;
    clinicId: string | null;
    deviceId: string;
    callId: string;
    kind: 'sent' | 'failed' | 'reply';
    score: number | null;
    at: string;
  }): Promise<void> {
    await this.q(
      `INSERT INTO survey_log (event_id, clinic_id, device_id, call_id, kind, score, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
      [s.eventId, s.clinicId, s.deviceId, s.callId, s.kind, s.score, s.at],
    );
  }

  /** Counts per kind and score in [from, to). */
  async surveyCounts(
    clinicId: string,
    from: string,
    to: string,
  ): Promise<{ kind: string; score: number | null; n: number }[]> {
    const rows = await this.q(
      `SELECT kind, score, COUNT(*) AS n FROM survey_log WHERE clinic_id = $1 AND at >= $2 AND at < $3
       GROUP BY kind, score`,
      [clinicId, from, to],
    );
    return rows.map((r) => ({ kind: String(r.kind), score: numOrNull(r.score), n: num(r.n) }));
  }
}
