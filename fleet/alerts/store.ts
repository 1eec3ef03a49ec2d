/**
 * The alert store, written once in SQL both SQLite (3.35+, RETURNING and
 * partial indexes) and PostgreSQL accept. Its tables (migrations.ts, with
 * their own bookkeeping table alert_schema_migrations, applied by the
 * fleet's one migration runner) sit in the fleet's database, and it runs
 * on the fleet store's connection (SQLite) or pool (PostgreSQL):
 * SqlAlertStore.over(fleetStore). Before, with SQLite, the alert tables
 * were in a file of their own (fleet-alerts.db); importLegacySqlite() copies
 * such a file in once. The alert engine never reaches into the registry's
 * tables.
 *
 * Times and JSON are TEXT in both dialects (ISO strings compare as text).
 * One active alert per clinic and condition, and short codes unique among
 * active alerts, are enforced by partial unique indexes, so two fleet
 * instances cannot open the same alert twice.
 *
 * Exactly once per stored event: the engine reads events through a durable
 * cursor (at least once: a crash between acting and moving the cursor reads
 * the event again), and an alert opened or counted for an event records
 * (event id, condition) in alert_event_effects in the same transaction, so
 * reading an event again changes nothing.
 */

import { randomInt } from 'node:crypto';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { newEventId } from '../../shared/ids.js';
import { type Dialect, MigrationRunner } from '../store/migrate.js';
import { PgDriver } from '../store/postgres.js';
import type { Driver, Row, SqlStore } from '../store/sql-store.js';
import { SqliteDriver } from '../store/sqlite.js';
import { type ClinicAlertSettings, type Condition, clinicAlertSettings } from './config.js';
import { importLegacyAlertFile } from './legacy-import.js';
import { ALERT_MIGRATIONS } from './migrations.js';
import { ALERT_COLUMNS, num, str, toAlert, toDelivery } from './rows.js';
import type {
  Alert,
  AlertExpect,
  AlertFilter,
  AlertLogEntry,
  AlertPatch,
  AlertStore,
  Delivery,
  DeliveryStatus,
  NewAlert,
  NewDelivery,
  PendingCondition,
  Rollover,
} from './types.js';

type Query = (sql: string, params?: unknown[]) => Promise<Row[]>;

/** Thrown inside a transaction to roll it back: the event was already counted. */
class AlreadyApplied extends Error {}

function alreadyApplied(eventId: string, condition: string, alertId: string): CallboxError {
  return new CallboxError(
    ErrorCode.Conflict,
    `event ${eventId} already opened or counted a ${condition} alert (${alertId})`,
    { existingId: alertId, alreadyApplied: true },
  );
}

/** Which of the alert store's unique indexes a violation names (PostgreSQL: the index; SQLite: the columns). */
function alertIndexOf(constraint: string | undefined): string | undefined {
  if (constraint === undefined) return undefined;
  if (constraint === 'alerts_code_active' || /alerts\.short_code/.test(constraint)) return 'alerts_code_active';
  if (constraint === 'alerts_one_active' || /alerts\.clinic_id/.test(constraint)) return 'alerts_one_active';
  return constraint;
}

const now = () => new Date().toISOString();

/** Four random digits, not starting with 0 (so nothing strips it). */
function shortCode(): string {
  return String(randomInt(1000, 10_000));
}

export class SqlAlertStore implements AlertStore {
  readonly kind: Dialect;
  private readonly migrations: MigrationRunner;

  /** `owned`: close() closes the connection (a store opened on its own); else the fleet store does. */
  protected constructor(
    private readonly db: Driver,
    kind: Dialect,
    private readonly owned: boolean,
  ) {
    this.kind = kind;
    this.migrations = new MigrationRunner(db, kind, ALERT_MIGRATIONS);
  }

  /** The alert store in the fleet store's database, on its connection (closed by the fleet store). */
  static over(store: SqlStore): SqlAlertStore {
    const { driver, dialect } = store.connection();
    return new SqlAlertStore(driver, dialect, false);
  }

  /** On a connection of its own to a fleet database file (a second fleet instance, tests). */
  static async openSqlite(path: string): Promise<SqlAlertStore> {
    return new SqlAlertStore(await SqliteDriver.open(path, 'the fleet database'), 'sqlite', true);
  }

  /** On a pool of its own to a fleet database (a second fleet instance, tests). */
  static async openPostgres(url: string, opts: { max?: number } = {}): Promise<SqlAlertStore> {
    return new SqlAlertStore(await PgDriver.open(url, opts.max ?? 5), 'postgres', true);
  }

  private q(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.db.query(sql, params);
  }

  async migrate(): Promise<void> {
    await this.migrations.up();
  }

  async migrateDown(version: number): Promise<void> {
    await this.migrations.down(version);
  }

  schemaVersion(): Promise<number> {
    return this.migrations.version();
  }

  close(): Promise<void> {
    return this.owned ? this.db.close() : Promise.resolve();
  }

  /**
   * SQLite: copy the alert tables of the file the alert store had of its own before (fleet-alerts.db)
   * into this database once (legacy-import.ts). Call after migrate(). Returns the rows copied.
   */
  importLegacySqlite(path: string): Promise<number> {
    return this.kind === 'sqlite' ? importLegacyAlertFile(this.db, path) : Promise.resolve(0);
  }

  async createAlert(a: NewAlert): Promise<Alert> {
    for (let tries = 0; ; tries++) {
      const id = newEventId();
      try {
        return await this.db.transaction(async (q) => {
          if (a.eventId) {
            const done = await q('SELECT alert_id FROM alert_event_effects WHERE event_id = $1 AND condition = $2', [
              a.eventId,
              a.condition,
            ]);
            if (done[0]) throw alreadyApplied(a.eventId, a.condition, String(done[0].alert_id));
          }
          const rows = await q(
            `INSERT INTO alerts (id, clinic_id, condition, severity, state, short_code, text, device_id, occurrences,
               first_at, last_at, epoch, next_step, next_step_at, details, updated_at, lease_owner, lease_until)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, 1, $8, $8, 0, 0, $9, $10, $8, $11, $12) RETURNING *`,
            [
              id,
              a.clinicId,
              a.condition,
              a.severity,
              shortCode(),
              a.text,
              a.deviceId,
              a.at,
              a.nextStepAt,
              JSON.stringify(a.details),
              a.lease?.owner ?? null,
              a.lease?.until ?? null,
            ],
          );
          if (a.eventId) {
            await q('INSERT INTO alert_event_effects (event_id, condition, alert_id, at) VALUES ($1, $2, $3, $4)', [
              a.eventId,
              a.condition,
              id,
              now(),
            ]);
          }
          return toAlert(rows[0] as Row);
        });
      } catch (e) {
        const index = alertIndexOf(this.db.uniqueConstraint(e));
        if (index === 'alerts_code_active' && tries < 50) continue;
        if (index === 'alerts_one_active') {
          const existing = await this.getActive(a.clinicId, a.condition);
          throw new CallboxError(
            ErrorCode.Conflict,
            `clinic ${a.clinicId} already has an active ${a.condition} alert`,
            { existingId: existing?.id },
          );
        }
        throw e;
      }
    }
  }

  async countActiveByState(): Promise<Record<string, number>> {
    const rows = await this.q("SELECT state, COUNT(*) AS n FROM alerts WHERE state <> 'resolved' GROUP BY state");
    const out: Record<string, number> = { open: 0, acknowledged: 0 };
    for (const r of rows) out[String(r.state)] = Number(r.n);
    return out;
  }

  async countDeliveries(status: DeliveryStatus): Promise<number> {
    const rows = await this.q('SELECT COUNT(*) AS n FROM alert_deliveries WHERE status = $1', [status]);
    return Number(rows[0]?.n ?? 0);
  }

  async getAlert(id: string): Promise<Alert | undefined> {
    const rows = await this.q('SELECT * FROM alerts WHERE id = $1', [id]);
    return rows[0] ? toAlert(rows[0]) : undefined;
  }

  async getActiveByCode(code: string): Promise<Alert | undefined> {
    const rows = await this.q("SELECT * FROM alerts WHERE short_code = $1 AND state <> 'resolved'", [code]);
    return rows[0] ? toAlert(rows[0]) : undefined;
  }

  async getActive(clinicId: string, condition: Condition): Promise<Alert | undefined> {
    const rows = await this.q("SELECT * FROM alerts WHERE clinic_id = $1 AND condition = $2 AND state <> 'resolved'", [
      clinicId,
      condition,
    ]);
    return rows[0] ? toAlert(rows[0]) : undefined;
  }

  async listAlerts(filter: AlertFilter = {}): Promise<Alert[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.clinicId) {
      params.push(filter.clinicId);
      where.push(`clinic_id = $${params.length}`);
    }
    if (filter.condition) {
      params.push(filter.condition);
      where.push(`condition = $${params.length}`);
    }
    if (filter.before) {
      params.push(filter.before);
      where.push(`id < $${params.length}`);
    }
    if (filter.state === 'active') where.push("state <> 'resolved'");
    else if (filter.state) {
      params.push(filter.state);
      where.push(`state = $${params.length}`);
    }
    params.push(Math.min(Math.max(filter.limit ?? 100, 1), 10_000));
    const rows = await this.q(
      `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toAlert);
  }

  async updateAlert(id: string, patch: AlertPatch, expect: AlertExpect = {}): Promise<Alert | undefined> {
    const sets: string[] = [];
    const params: unknown[] = [id];
    for (const [k, col] of Object.entries(ALERT_COLUMNS) as [keyof AlertPatch, string][]) {
      if (!(k in patch)) continue;
      const v = patch[k];
      params.push(k === 'details' ? JSON.stringify(v) : v);
      sets.push(`${col} = $${params.length}`);
    }
    params.push(now());
    sets.push(`updated_at = $${params.length}`);
    const where = ['id = $1'];
    if (expect.state !== undefined) {
      const states = Array.isArray(expect.state) ? expect.state : [expect.state];
      const marks = states.map((s) => {
        params.push(s);
        return `$${params.length}`;
      });
      where.push(`state IN (${marks.join(', ')})`);
    }
    if (expect.epoch !== undefined) {
      params.push(expect.epoch);
      where.push(`epoch = $${params.length}`);
    }
    if (expect.nextStep !== undefined) {
      params.push(expect.nextStep);
      where.push(`next_step = $${params.length}`);
    }
    const rows = await this.q(`UPDATE alerts SET ${sets.join(', ')} WHERE ${where.join(' AND ')} RETURNING *`, params);
    return rows[0] ? toAlert(rows[0]) : undefined;
  }

  async addOccurrence(id: string, at: string, eventId?: string): Promise<Alert | undefined> {
    const update = (q: Query) =>
      q(
        `UPDATE alerts SET occurrences = occurrences + 1,
           last_at = CASE WHEN last_at < $2 THEN $2 ELSE last_at END, updated_at = $3
         WHERE id = $1 AND state <> 'resolved' RETURNING *`,
        [id, at, now()],
      );
    if (!eventId) {
      const rows = await update((sql, params) => this.q(sql, params));
      return rows[0] ? toAlert(rows[0]) : undefined;
    }
    try {
      return await this.db.transaction(async (q) => {
        const rows = await update(q);
        if (!rows[0]) return undefined;
        const alert = toAlert(rows[0]);
        const marked = await q(
          `INSERT INTO alert_event_effects (event_id, condition, alert_id, at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (event_id, condition) DO NOTHING RETURNING event_id`,
          [eventId, alert.condition, id, now()],
        );
        if (marked.length === 0) throw new AlreadyApplied();
        return alert;
      });
    } catch (e) {
      if (e instanceof AlreadyApplied) return this.getAlert(id);
      throw e;
    }
  }

  async pruneEventEffects(before: string): Promise<number> {
    return (await this.q('DELETE FROM alert_event_effects WHERE at < $1 RETURNING event_id', [before])).length;
  }

  async claimStep(
    id: string,
    epoch: number,
    nextStep: number,
    owner: string,
    at: string,
    until: string,
  ): Promise<boolean> {
    const rows = await this.q(
      `UPDATE alerts SET lease_owner = $4, lease_until = $6
       WHERE id = $1 AND epoch = $2 AND next_step = $3 AND state = 'open'
         AND (lease_owner IS NULL OR lease_owner = $4 OR lease_until IS NULL OR lease_until <= $5)
       RETURNING id`,
      [id, epoch, nextStep, owner, at, until],
    );
    return rows.length === 1;
  }

  async listDue(at: string, limit = 500): Promise<Alert[]> {
    const rows = await this.q(
      "SELECT * FROM alerts WHERE state = 'open' AND next_step_at IS NOT NULL AND next_step_at <= $1 ORDER BY next_step_at LIMIT $2",
      [at, limit],
    );
    return rows.map(toAlert);
  }

  async listAckExpired(at: string): Promise<Alert[]> {
    const rows = await this.q(
      "SELECT * FROM alerts WHERE state = 'acknowledged' AND ack_deadline IS NOT NULL AND ack_deadline <= $1",
      [at],
    );
    return rows.map(toAlert);
  }

  async nextWake(): Promise<string | undefined> {
    const rows = await this.q(
      `SELECT MIN(w) AS w FROM (
         SELECT MIN(next_step_at) AS w FROM alerts WHERE state = 'open' AND next_step_at IS NOT NULL
         UNION ALL
         SELECT MIN(ack_deadline) AS w FROM alerts WHERE state = 'acknowledged' AND ack_deadline IS NOT NULL) t`,
    );
    return str(rows[0]?.w) ?? undefined;
  }

  async recordDelivery(d: NewDelivery): Promise<Delivery> {
    const rows = await this.q(
      `INSERT INTO alert_deliveries (alert_id, epoch, step, channel, target, dedup_key, attempt, status, error, detail, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
      [d.alertId, d.epoch, d.step, d.channel, d.target, d.dedupKey, d.attempt, d.status, d.error, d.detail, d.at],
    );
    return toDelivery(rows[0] as Row);
  }

  async listDeliveries(alertId: string): Promise<Delivery[]> {
    const rows = await this.q('SELECT * FROM alert_deliveries WHERE alert_id = $1 ORDER BY id', [alertId]);
    return rows.map(toDelivery);
  }

  async appendLog(e: Omit<AlertLogEntry, 'id'>): Promise<void> {
    await this.q('INSERT INTO alert_log (alert_id, at, action, by_whom, detail) VALUES ($1, $2, $3, $4, $5)', [
      e.alertId,
      e.at,
      e.action,
      e.by,
      e.detail,
    ]);
  }

  async listLog(alertId: string): Promise<AlertLogEntry[]> {
    const rows = await this.q('SELECT * FROM alert_log WHERE alert_id = $1 ORDER BY at, id', [alertId]);
    return rows.map((r) => ({
      id: num(r.id),
      alertId: String(r.alert_id),
      at: String(r.at),
      action: String(r.action),
      by: str(r.by_whom),
      detail: str(r.detail),
    }));
  }

  async addMissedCall(clinicId: string, eventId: string, at: string, since: string): Promise<string[]> {
    await this.q(
      'INSERT INTO alert_missed_calls (clinic_id, event_id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [clinicId, eventId, at],
    );
    await this.q('DELETE FROM alert_missed_calls WHERE clinic_id = $1 AND at <= $2', [clinicId, since]);
    const rows = await this.q('SELECT at FROM alert_missed_calls WHERE clinic_id = $1 ORDER BY at, event_id', [
      clinicId,
    ]);
    return rows.map((r) => String(r.at));
  }

  async clearMissedCalls(clinicId: string): Promise<void> {
    await this.q('DELETE FROM alert_missed_calls WHERE clinic_id = $1', [clinicId]);
  }

  async putPending(p: PendingCondition): Promise<void> {
    await this.q(
      `INSERT INTO alert_pending (key, clinic_id, condition, device_id, since, meta) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (key) DO UPDATE SET clinic_id = excluded.clinic_id, condition = excluded.condition,
         device_id = excluded.device_id, since = excluded.since, meta = excluded.meta`,
      [p.key, p.clinicId, p.condition, p.deviceId, p.since, JSON.stringify(p.meta)],
    );
  }

  async deletePending(key: string): Promise<boolean> {
    const rows = await this.q('DELETE FROM alert_pending WHERE key = $1 RETURNING key', [key]);
    return rows.length > 0;
  }

  async listPending(): Promise<PendingCondition[]> {
    const rows = await this.q('SELECT * FROM alert_pending ORDER BY since');
    return rows.map((r) => ({
      key: String(r.key),
      clinicId: String(r.clinic_id),
      condition: r.condition as Condition,
      deviceId: str(r.device_id),
      since: String(r.since),
      meta: JSON.parse(String(r.meta)) as Record<string, unknown>,
    }));
  }

  async putRollover(r: Rollover): Promise<void> {
    await this.q(
      `INSERT INTO alert_rollovers (clinic_id, active, state) VALUES ($1, $2, $3)
       ON CONFLICT (clinic_id) DO UPDATE SET active = excluded.active, state = excluded.state`,
      [r.clinicId, r.active ? 1 : 0, JSON.stringify(r)],
    );
  }

  async getRollover(clinicId: string): Promise<Rollover | undefined> {
    const rows = await this.q('SELECT state FROM alert_rollovers WHERE clinic_id = $1', [clinicId]);
    return rows[0] ? (JSON.parse(String(rows[0].state)) as Rollover) : undefined;
  }

  async listRollovers(activeOnly = false): Promise<Rollover[]> {
    const rows = await this.q(`SELECT state FROM alert_rollovers ${activeOnly ? 'WHERE active = 1' : ''}`);
    return rows.map((r) => JSON.parse(String(r.state)) as Rollover);
  }

  async getClinicSettings(clinicId: string): Promise<ClinicAlertSettings | undefined> {
    const rows = await this.q('SELECT settings FROM alert_clinic_settings WHERE clinic_id = $1', [clinicId]);
    return rows[0] ? clinicAlertSettings(JSON.parse(String(rows[0].settings))) : undefined;
  }

  async putClinicSettings(clinicId: string, settings: ClinicAlertSettings): Promise<void> {
    const checked = clinicAlertSettings(settings);
    await this.q(
      `INSERT INTO alert_clinic_settings (clinic_id, settings, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (clinic_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
      [clinicId, JSON.stringify(checked), now()],
    );
  }
}
