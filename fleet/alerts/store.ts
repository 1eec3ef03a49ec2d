/**
 * The alert store, written once in SQL both SQLite (3.35+, RETURNING and
 * partial indexes) and PostgreSQL accept. It keeps its own tables and its
 * own migration counter (alert_schema_migrations), over its own connection:
 * in PostgreSQL next to the fleet store's tables in the same database; with
 * SQLite in a file of its own beside the fleet's (alertsSqlitePath), because
 * two connections writing one SQLite file from one process wait on each
 * other's locks inside the shared libuv pool. The alert engine never reaches
 * into the registry's tables.
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
import pg from 'pg';
import type sqlite3 from 'sqlite3';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { newEventId } from '../../shared/ids.js';
import { openSqliteFile } from '../store/sqlite.js';
import { type ClinicAlertSettings, type Condition, clinicAlertSettings } from './config.js';
import type {
  Alert,
  AlertExpect,
  AlertFilter,
  AlertLogEntry,
  AlertPatch,
  AlertStore,
  Delivery,
  NewAlert,
  NewDelivery,
  PendingCondition,
  Rollover,
} from './types.js';

type Row = Record<string, unknown>;

type Query = (sql: string, params?: unknown[]) => Promise<Row[]>;

interface Driver {
  readonly kind: 'sqlite' | 'postgres';
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Run `fn` in one transaction on one connection. */
  transaction<T>(fn: (q: Query) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** Which unique index a violation hit, or undefined if the error is not one. */
  uniqueIndexOf(e: unknown): string | undefined;
}

interface Migration {
  version: number;
  up: (autoId: string) => string[];
  down: string[];
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    up: (autoId) => [
      `CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        clinic_id TEXT NOT NULL,
        condition TEXT NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        short_code TEXT NOT NULL,
        text TEXT NOT NULL,
        device_id TEXT,
        occurrences INTEGER NOT NULL,
        first_at TEXT NOT NULL,
        last_at TEXT NOT NULL,
        acked_at TEXT,
        acked_by TEXT,
        ack_deadline TEXT,
        resolved_at TEXT,
        resolved_by TEXT,
        epoch INTEGER NOT NULL,
        next_step INTEGER NOT NULL,
        next_step_at TEXT,
        lease_owner TEXT,
        lease_until TEXT,
        details TEXT NOT NULL,
        updated_at TEXT NOT NULL)`,
      "CREATE UNIQUE INDEX alerts_one_active ON alerts (clinic_id, condition) WHERE state <> 'resolved'",
      "CREATE UNIQUE INDEX alerts_code_active ON alerts (short_code) WHERE state <> 'resolved'",
      'CREATE INDEX alerts_due ON alerts (state, next_step_at)',
      'CREATE INDEX alerts_clinic ON alerts (clinic_id, first_at)',
      `CREATE TABLE alert_deliveries (
        id ${autoId},
        alert_id TEXT NOT NULL REFERENCES alerts(id),
        epoch INTEGER NOT NULL,
        step INTEGER NOT NULL,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        detail TEXT,
        at TEXT NOT NULL)`,
      'CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, id)',
      `CREATE TABLE alert_log (
        id ${autoId},
        alert_id TEXT NOT NULL REFERENCES alerts(id),
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        by_whom TEXT,
        detail TEXT)`,
      'CREATE INDEX alert_log_alert ON alert_log (alert_id, id)',
      `CREATE TABLE alert_pending (
        key TEXT PRIMARY KEY,
        clinic_id TEXT NOT NULL,
        condition TEXT NOT NULL,
        device_id TEXT,
        since TEXT NOT NULL,
        meta TEXT NOT NULL)`,
      `CREATE TABLE alert_rollovers (
        clinic_id TEXT PRIMARY KEY,
        active INTEGER NOT NULL,
        state TEXT NOT NULL)`,
      'CREATE TABLE alert_clinic_settings (clinic_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated_at TEXT NOT NULL)',
    ],
    down: [
      'DROP TABLE alert_clinic_settings',
      'DROP TABLE alert_rollovers',
      'DROP TABLE alert_pending',
      'DROP TABLE alert_log',
      'DROP TABLE alert_deliveries',
      'DROP TABLE alerts',
    ],
  },
  {
    // Which stored event already opened or counted an alert of which condition (see the header).
    version: 2,
    up: () => [
      `CREATE TABLE alert_event_effects (
        event_id TEXT NOT NULL,
        condition TEXT NOT NULL,
        alert_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (event_id, condition))`,
      'CREATE INDEX alert_event_effects_at ON alert_event_effects (at)',
    ],
    down: ['DROP TABLE alert_event_effects'],
  },
];

/** Thrown inside a transaction to roll it back: the event was already counted. */
class AlreadyApplied extends Error {}

function alreadyApplied(eventId: string, condition: string, alertId: string): CallboxError {
  return new CallboxError(
    ErrorCode.Conflict,
    `event ${eventId} already opened or counted a ${condition} alert (${alertId})`,
    { existingId: alertId, alreadyApplied: true },
  );
}

const ALERT_COLUMNS: Record<keyof AlertPatch, string> = {
  severity: 'severity',
  state: 'state',
  text: 'text',
  ackedAt: 'acked_at',
  ackedBy: 'acked_by',
  ackDeadline: 'ack_deadline',
  resolvedAt: 'resolved_at',
  resolvedBy: 'resolved_by',
  epoch: 'epoch',
  nextStep: 'next_step',
  nextStepAt: 'next_step_at',
  leaseOwner: 'lease_owner',
  leaseUntil: 'lease_until',
  details: 'details',
  lastAt: 'last_at',
};

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const now = () => new Date().toISOString();

function toAlert(r: Row): Alert {
  return {
    id: String(r.id),
    clinicId: String(r.clinic_id),
    condition: r.condition as Condition,
    severity: r.severity as Alert['severity'],
    state: r.state as Alert['state'],
    shortCode: String(r.short_code),
    text: String(r.text),
    deviceId: str(r.device_id),
    occurrences: num(r.occurrences),
    firstAt: String(r.first_at),
    lastAt: String(r.last_at),
    ackedAt: str(r.acked_at),
    ackedBy: str(r.acked_by),
    ackDeadline: str(r.ack_deadline),
    resolvedAt: str(r.resolved_at),
    resolvedBy: str(r.resolved_by),
    epoch: num(r.epoch),
    nextStep: num(r.next_step),
    nextStepAt: str(r.next_step_at),
    leaseOwner: str(r.lease_owner),
    leaseUntil: str(r.lease_until),
    details: JSON.parse(String(r.details)) as Record<string, unknown>,
    updatedAt: String(r.updated_at),
  };
}

function toDelivery(r: Row): Delivery {
  return {
    id: num(r.id),
    alertId: String(r.alert_id),
    epoch: num(r.epoch),
    step: num(r.step),
    channel: r.channel as Delivery['channel'],
    target: String(r.target),
    dedupKey: String(r.dedup_key),
    attempt: num(r.attempt),
    status: r.status as Delivery['status'],
    error: str(r.error),
    detail: str(r.detail),
    at: String(r.at),
  };
}

/** Four random digits, not starting with 0 (so nothing strips it). */
function shortCode(): string {
  return String(randomInt(1000, 10_000));
}

export class SqlAlertStore implements AlertStore {
  readonly kind: 'sqlite' | 'postgres';

  protected constructor(private readonly db: Driver) {
    this.kind = db.kind;
  }

  static async openSqlite(path: string): Promise<SqlAlertStore> {
    return new SqlAlertStore(await SqliteDriver.open(path));
  }

  static async openPostgres(url: string, opts: { max?: number } = {}): Promise<SqlAlertStore> {
    return new SqlAlertStore(await PgDriver.open(url, opts.max ?? 5));
  }

  private q(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.db.query(sql, params);
  }

  async migrate(): Promise<void> {
    await this.q('CREATE TABLE IF NOT EXISTS alert_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)');
    const current = await this.schemaVersion();
    const autoId = this.kind === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY';
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      for (const sql of m.up(autoId)) await this.q(sql);
      await this.q('INSERT INTO alert_schema_migrations (version, applied_at) VALUES ($1, $2)', [m.version, now()]);
    }
  }

  async migrateDown(version: number): Promise<void> {
    const current = await this.schemaVersion();
    for (const m of [...MIGRATIONS].reverse()) {
      if (m.version > current || m.version <= version) continue;
      for (const sql of m.down) await this.q(sql);
      await this.q('DELETE FROM alert_schema_migrations WHERE version = $1', [m.version]);
    }
  }

  async schemaVersion(): Promise<number> {
    const rows = await this.q('SELECT MAX(version) AS v FROM alert_schema_migrations');
    return rows[0]?.v == null ? 0 : num(rows[0].v);
  }

  close(): Promise<void> {
    return this.db.close();
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
        const index = this.db.uniqueIndexOf(e);
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

class SqliteDriver implements Driver {
  readonly kind = 'sqlite' as const;
  /**
   * One statement at a time. node-sqlite3 runs each statement on a libuv pool thread, and a
   * connection is used by one thread at a time: statements issued together would park pool threads
   * on this connection's mutex (or in its busy wait), starving every other connection and file
   * operation of the process, the fleet store's included.
   */
  private chain: Promise<unknown> = Promise.resolve();
  private constructor(private readonly db: sqlite3.Database) {}

  static async open(path: string): Promise<SqliteDriver> {
    const db = await openSqliteFile(path, 'the alert database');
    const driver = new SqliteDriver(db);
    await driver.query('PRAGMA journal_mode = WAL');
    await driver.query('PRAGMA synchronous = NORMAL');
    await driver.query('PRAGMA busy_timeout = 5000');
    await driver.query('PRAGMA foreign_keys = ON');
    return driver;
  }

  query(sql: string, params: unknown[] = []): Promise<Row[]> {
    const run = this.chain.then(() => this.run(sql, params));
    this.chain = run.catch(() => undefined);
    return run;
  }

  transaction<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    const run = this.chain.then(async () => {
      await this.run('BEGIN IMMEDIATE', []);
      try {
        const out = await fn((sql, params) => this.run(sql, params ?? []));
        await this.run('COMMIT', []);
        return out;
      } catch (e) {
        await this.run('ROLLBACK', []).catch(() => undefined);
        throw e;
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(sql: string, params: unknown[]): Promise<Row[]> {
    // "$1" -> "?1": SQLite's numbered parameters, so one SQL text serves both dialects.
    const text = sql.replace(/\$(\d+)/g, '?$1');
    // The fleet store writes the same file over its own connection. busy_timeout covers most waits, but
    // WAL can answer SQLITE_BUSY at once (a snapshot that cannot be upgraded): each statement here is
    // its own transaction, so trying it again is safe.
    for (let attempt = 1; ; attempt++) {
      try {
        return await new Promise<Row[]>((resolve, reject) => {
          this.db.all(text, params, (err, rows) => (err ? reject(err) : resolve(rows as Row[])));
        });
      } catch (e) {
        if ((e as { code?: string }).code !== 'SQLITE_BUSY' || attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, Math.min(500, 5 * 2 ** attempt) * (0.5 + Math.random())));
      }
    }
  }

  close(): Promise<void> {
    return this.chain.then(
      () => new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve()))),
    );
  }

  uniqueIndexOf(e: unknown): string | undefined {
    const err = e as { code?: string; message?: string };
    if (err?.code !== 'SQLITE_CONSTRAINT' || !/UNIQUE/.test(err.message ?? '')) return undefined;
    if (/alerts\.short_code/.test(err.message ?? '')) return 'alerts_code_active';
    if (/alerts\.clinic_id/.test(err.message ?? '')) return 'alerts_one_active';
    return 'unknown';
  }
}

class PgDriver implements Driver {
  readonly kind = 'postgres' as const;
  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string, max: number): Promise<PgDriver> {
    const pool = new pg.Pool({ connectionString: url, max });
    pool.on('error', () => undefined);
    try {
      (await pool.connect()).release();
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw new CallboxError(
        ErrorCode.StoreUnavailable,
        `cannot connect to PostgreSQL at ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${(e as Error).message}`,
      );
    }
    return new PgDriver(pool);
  }

  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.pool.query(sql, params)).rows as Row[];
  }

  async transaction<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(async (sql, params) => (await client.query(sql, params ?? [])).rows as Row[]);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  uniqueIndexOf(e: unknown): string | undefined {
    const err = e as { code?: string; constraint?: string };
    return err?.code === '23505' ? (err.constraint ?? 'unknown') : undefined;
  }
}
