/**
 * The Store, written once in SQL that both SQLite (3.35+) and PostgreSQL
 * accept; the two implementations supply a Driver (how to run a statement,
 * how to wrap a transaction) and the dialect's column types. Statements use
 * $1, $2 ... placeholders (SQLite reads them as numbered parameters).
 */
import type { AnyEvent } from '../../shared/contract/events.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { newEventId } from '../../shared/ids.js';
import type { PatientCipher } from '../crypto/patient-data.js';
import { type Dialect, MigrationRunner } from './migrate.js';
import { FLEET_MIGRATIONS } from './migrations.js';
import type {
  AuditEntry,
  AuditFilter,
  Box,
  BoxFilter,
  BoxPatch,
  ClaimState,
  Clinic,
  ClinicPatch,
  Credential,
  DesiredConfig,
  EventCursor,
  EventFilter,
  NewAuditEntry,
  NewClinic,
  OpsRole,
  OpsUser,
  Organisation,
  Page,
  PositionedEvent,
  Rollout,
  RolloutBox,
  SeqGap,
  Store,
  StoredEvent,
  StoredRelease,
} from './types.js';

export type Row = Record<string, unknown>;

export interface Driver {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Run `fn` in one transaction on one connection. */
  transaction<T>(fn: (q: (sql: string, params?: unknown[]) => Promise<Row[]>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** Is this error a unique-key violation? */
  isUniqueViolation(e: unknown): boolean;
  /**
   * Which unique constraint a violation hit, or undefined if the error is not one: PostgreSQL's
   * constraint (index) name, SQLite's "table.column, ..." list.
   */
  uniqueConstraint(e: unknown): string | undefined;
}

const now = () => new Date().toISOString();

function iso(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  return String(v);
}
function isoOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : iso(v);
}
function json<T>(v: unknown): T {
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}
function jsonOrNull<T>(v: unknown): T | null {
  return v === null || v === undefined ? null : json<T>(v);
}
function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

const BOX_COLUMNS: Record<keyof BoxPatch, string> = {
  deviceId: 'device_id',
  claimState: 'claim_state',
  clinicId: 'clinic_id',
  model: 'model',
  firmware: 'firmware',
  desiredVersion: 'desired_version',
  reportedVersion: 'reported_version',
  reportedState: 'reported_state',
  reportedReason: 'reported_reason',
  lastSeenAt: 'last_seen_at',
  online: 'online',
  lastClaimRequestId: 'last_claim_request_id',
};

const CLINIC_COLUMNS: Record<keyof ClinicPatch, string> = {
  organisationId: 'organisation_id',
  name: 'name',
  timezone: 'timezone',
  phoneNumbers: 'phone_numbers',
  answeringService: 'answering_service',
  contacts: 'contacts',
  boxDefaults: 'box_defaults',
};

function toBox(r: Row): Box {
  return {
    serial: String(r.serial),
    deviceId: (r.device_id as string | null) ?? null,
    claimState: r.claim_state as ClaimState,
    clinicId: (r.clinic_id as string | null) ?? null,
    model: (r.model as string | null) ?? null,
    firmware: (r.firmware as string | null) ?? null,
    desiredVersion: num(r.desired_version),
    reportedVersion: r.reported_version === null ? null : num(r.reported_version),
    reportedState: (r.reported_state as Box['reportedState']) ?? null,
    reportedReason: (r.reported_reason as string | null) ?? null,
    lastSeenAt: isoOrNull(r.last_seen_at),
    online: Boolean(r.online),
    lastClaimRequestId: (r.last_claim_request_id as string | null) ?? null,
    // The newest telemetry (column added by the figures store's migrations), when one came.
    ...(r.last_telemetry == null ? {} : { telemetry: json<NonNullable<Box['telemetry']>>(r.last_telemetry) }),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

function toClinic(r: Row): Clinic {
  return {
    id: String(r.id),
    organisationId: (r.organisation_id as string | null) ?? null,
    name: String(r.name),
    timezone: String(r.timezone),
    phoneNumbers: json<string[]>(r.phone_numbers),
    answeringService: (r.answering_service as string | null) ?? null,
    contacts: json<Clinic['contacts']>(r.contacts),
    boxDefaults: r.box_defaults == null ? null : json<Record<string, unknown>>(r.box_defaults),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

function toCredential(r: Row): Credential {
  return {
    username: String(r.username),
    kind: r.kind as Credential['kind'],
    subject: String(r.subject),
    hash: String(r.hash),
    mosquittoHash: (r.mosquitto_hash as string | null) ?? null,
    createdAt: iso(r.created_at),
    revokedAt: isoOrNull(r.revoked_at),
  };
}

function toDesired(r: Row): DesiredConfig {
  return {
    deviceId: String(r.device_id),
    version: num(r.version),
    settings: json<DeviceSettings>(r.settings),
    own: r.own_settings == null ? null : json<Record<string, unknown>>(r.own_settings),
    createdBy: String(r.created_by),
    createdAt: iso(r.created_at),
  };
}

function toAudit(r: Row): AuditEntry {
  return {
    id: num(r.id),
    at: iso(r.at),
    actor: String(r.actor),
    action: String(r.action),
    target: String(r.target),
    before: jsonOrNull(r.before_value),
    after: jsonOrNull(r.after_value),
  };
}

function toEvent(r: Row): StoredEvent {
  return {
    id: String(r.id),
    deviceId: String(r.device_id),
    bootId: String(r.boot_id),
    seq: num(r.seq),
    type: r.type as StoredEvent['type'],
    at: iso(r.at),
    receivedAt: iso(r.received_at),
    body: json<StoredEvent['body']>(r.body),
  };
}

function toCursor(r: Row): EventCursor {
  return {
    name: String(r.name),
    pos: num(r.pos),
    owner: (r.owner as string | null) ?? null,
    leaseUntil: isoOrNull(r.lease_until),
    updatedAt: iso(r.updated_at),
  };
}

export abstract class SqlStore implements Store {
  abstract readonly kind: Dialect;
  protected abstract readonly db: Driver;
  private migrations: MigrationRunner | undefined;
  /** Seals patient fields of event bodies at rest (fleet/crypto/patient-data.ts); none: stored as sent. */
  protected patient: PatientCipher | undefined;

  usePatientCipher(cipher: PatientCipher): void {
    this.patient = cipher;
  }

  /** A parameter where the database cannot infer its type (INSERT ... SELECT). */
  protected cast(param: string, _type: 'json' | 'ts' | 'bool'): string {
    return param;
  }

  /**
   * A statement run before the event INSERT in the same transaction, so that positions are handed out and
   * committed in one order (PostgreSQL: an advisory lock). SQLite has one writer: nothing needed.
   */
  protected eventInsertLock(): string | null {
    return null;
  }

  protected notFound(what: string): CallboxError {
    return new CallboxError(ErrorCode.NotFound, `${what} does not exist`);
  }

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (this.db.isUniqueViolation(e)) throw new CallboxError(ErrorCode.Conflict, `${what} already exists`);
      throw e;
    }
  }

  // ---- migrations ----------------------------------------------------------

  private runner(): MigrationRunner {
    this.migrations ??= new MigrationRunner(this.db, this.kind, FLEET_MIGRATIONS);
    return this.migrations;
  }

  async schemaVersion(): Promise<number> {
    return this.runner().version();
  }

  async migrate(): Promise<void> {
    await this.runner().up();
  }

  async migrateDown(version: number): Promise<void> {
    await this.runner().down(version);
  }

  /**
   * The store's one connection (SQLite) or pool (PostgreSQL) and its dialect: the alert store keeps
   * its tables in the same database through it (fleet/alerts/store.ts).
   */
  connection(): { driver: Driver; dialect: Dialect } {
    return { driver: this.db, dialect: this.kind };
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  // ---- organisations and clinics --------------------------------------------

  async createOrganisation(name: string): Promise<Organisation> {
    const org = { id: newEventId(), name, createdAt: now() };
    await this.guard(`organisation "${name}"`, () =>
      this.db.query('INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)', [
        org.id,
        org.name,
        org.createdAt,
      ]),
    );
    return org;
  }

  async listOrganisations(page: Page = {}): Promise<Organisation[]> {
    const params: unknown[] = [];
    const where = page.after ? pageAfter('organisations', params, page.after) : '';
    const rows = await this.db.query(
      `SELECT * FROM organisations ${where ? `WHERE ${where}` : ''} ORDER BY name, id${limitOf(params, page.limit)}`,
      params,
    );
    return rows.map((r) => ({ id: String(r.id), name: String(r.name), createdAt: iso(r.created_at) }));
  }

  async createClinic(c: NewClinic): Promise<Clinic> {
    const t = now();
    const id = newEventId();
    await this.db.query(
      `INSERT INTO clinics (id, organisation_id, name, timezone, phone_numbers, answering_service, contacts, created_at, updated_at, box_defaults)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, ${this.cast('$10', 'json')})`,
      [
        id,
        c.organisationId,
        c.name,
        c.timezone,
        JSON.stringify(c.phoneNumbers),
        c.answeringService,
        JSON.stringify(c.contacts),
        t,
        t,
        c.boxDefaults ? JSON.stringify(c.boxDefaults) : null,
      ],
    );
    return { ...c, boxDefaults: c.boxDefaults ?? null, id, createdAt: t, updatedAt: t };
  }

  async updateClinic(id: string, patch: ClinicPatch): Promise<Clinic> {
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      const col = CLINIC_COLUMNS[k as keyof ClinicPatch];
      if (!col || v === undefined) continue;
      params.push(
        k === 'phoneNumbers' || k === 'contacts' || k === 'boxDefaults' ? (v === null ? null : JSON.stringify(v)) : v,
      );
      sets.push(`${col} = ${k === 'boxDefaults' ? this.cast(`$${params.length}`, 'json') : `$${params.length}`}`);
    }
    params.push(now());
    sets.push(`updated_at = $${params.length}`);
    params.push(id);
    const rows = await this.db.query(
      `UPDATE clinics SET ${sets.join(', ')} WHERE id = $${params.length} RETURNING *`,
      params,
    );
    const row = rows[0];
    if (!row) throw this.notFound(`clinic ${id}`);
    return toClinic(row);
  }

  async getClinic(id: string): Promise<Clinic | undefined> {
    const rows = await this.db.query('SELECT * FROM clinics WHERE id = $1', [id]);
    return rows[0] ? toClinic(rows[0]) : undefined;
  }

  async listClinics(filter: { organisationId?: string } & Page = {}): Promise<Clinic[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.organisationId) {
      params.push(filter.organisationId);
      where.push(`organisation_id = $${params.length}`);
    }
    if (filter.after) where.push(pageAfter('clinics', params, filter.after));
    const rows = await this.db.query(
      `SELECT * FROM clinics ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY name, id${limitOf(params, filter.limit)}`,
      params,
    );
    return rows.map(toClinic);
  }

  // ---- boxes ----------------------------------------------------------------

  async createBox(b: {
    serial: string;
    claimState: ClaimState;
    clinicId?: string | null;
    model?: string | null;
  }): Promise<Box> {
    const t = now();
    const rows = await this.guard(`box ${b.serial}`, () =>
      this.db.query(
        `INSERT INTO boxes (serial, claim_state, clinic_id, model, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [b.serial, b.claimState, b.clinicId ?? null, b.model ?? null, t, t],
      ),
    );
    return toBox(rows[0] as Row);
  }

  async deletePendingBox(serial: string): Promise<boolean> {
    const rows = await this.db.query(
      "DELETE FROM boxes WHERE serial = $1 AND claim_state = 'pending' RETURNING serial",
      [serial],
    );
    return rows.length > 0;
  }

  async updateBox(serial: string, patch: BoxPatch): Promise<Box> {
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      const col = BOX_COLUMNS[k as keyof BoxPatch];
      if (!col || v === undefined) continue;
      params.push(v);
      sets.push(`${col} = $${params.length}`);
    }
    params.push(now());
    sets.push(`updated_at = $${params.length}`);
    params.push(serial);
    const rows = await this.guard(`box device id ${patch.deviceId ?? ''}`, () =>
      this.db.query(`UPDATE boxes SET ${sets.join(', ')} WHERE serial = $${params.length} RETURNING *`, params),
    );
    if (!rows[0]) throw this.notFound(`box ${serial}`);
    return toBox(rows[0]);
  }

  async getBox(serial: string): Promise<Box | undefined> {
    const rows = await this.db.query('SELECT * FROM boxes WHERE serial = $1', [serial]);
    return rows[0] ? toBox(rows[0]) : undefined;
  }

  async getBoxByDeviceId(deviceId: string): Promise<Box | undefined> {
    const rows = await this.db.query('SELECT * FROM boxes WHERE device_id = $1', [deviceId]);
    return rows[0] ? toBox(rows[0]) : undefined;
  }

  async listBoxes(filter: BoxFilter = {}): Promise<Box[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.clinicId) {
      params.push(filter.clinicId);
      where.push(`clinic_id = $${params.length}`);
    }
    if (filter.claimState) {
      params.push(filter.claimState);
      where.push(`claim_state = $${params.length}`);
    }
    if (filter.after) {
      params.push(filter.after);
      where.push(`serial > $${params.length}`);
    }
    const rows = await this.db.query(
      `SELECT * FROM boxes ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY serial${limitOf(params, filter.limit)}`,
      params,
    );
    return rows.map(toBox);
  }

  async touchBoxes(updates: { deviceId: string; lastSeenAt: string; online: boolean }[]): Promise<void> {
    // One UPDATE ... FROM (VALUES ...) per 500 boxes: presence of thousands of
    // boxes must not hold the database (and the event inserts behind it) for long.
    for (let i = 0; i < updates.length; i += 500) {
      const chunk = updates.slice(i, i + 500);
      const params: unknown[] = [];
      const rows = chunk.map((u) => {
        params.push(u.deviceId, u.lastSeenAt, u.online);
        const n = params.length;
        return `($${n - 2}, ${this.cast(`$${n - 1}`, 'ts')}, ${this.cast(`$${n}`, 'bool')})`;
      });
      await this.db.query(
        `UPDATE boxes SET last_seen_at = v.column2, online = v.column3
         FROM (VALUES ${rows.join(', ')}) AS v WHERE boxes.device_id = v.column1`,
        params,
      );
    }
  }

  // ---- credentials ------------------------------------------------------------

  async putCredential(c: Omit<Credential, 'createdAt' | 'revokedAt'>): Promise<Credential> {
    const t = now();
    const rows = await this.db.query(
      `INSERT INTO credentials (username, kind, subject, hash, mosquitto_hash, created_at, revoked_at)
       VALUES ($1, $2, $3, $4, $5, $6, NULL)
       ON CONFLICT (username) DO UPDATE SET kind = excluded.kind, subject = excluded.subject, hash = excluded.hash,
         mosquitto_hash = excluded.mosquitto_hash, created_at = excluded.created_at, revoked_at = NULL
       RETURNING *`,
      [c.username, c.kind, c.subject, c.hash, c.mosquittoHash, t],
    );
    return toCredential(rows[0] as Row);
  }

  async getCredential(username: string): Promise<Credential | undefined> {
    const rows = await this.db.query('SELECT * FROM credentials WHERE username = $1', [username]);
    return rows[0] ? toCredential(rows[0]) : undefined;
  }

  async listActiveCredentials(): Promise<Credential[]> {
    const rows = await this.db.query('SELECT * FROM credentials WHERE revoked_at IS NULL ORDER BY username');
    return rows.map(toCredential);
  }

  async revokeCredential(username: string): Promise<boolean> {
    const rows = await this.db.query(
      'UPDATE credentials SET revoked_at = $1 WHERE username = $2 AND revoked_at IS NULL RETURNING username',
      [now(), username],
    );
    return rows.length > 0;
  }

  // ---- ops users --------------------------------------------------------------

  async createOpsUser(u: { name: string; role: OpsRole; clinicId?: string | null }): Promise<OpsUser> {
    const t = now();
    const clinicId = u.clinicId ?? null;
    await this.guard(`ops user ${u.name}`, () =>
      this.db.query('INSERT INTO ops_users (name, role, created_at, clinic_id) VALUES ($1, $2, $3, $4)', [
        u.name,
        u.role,
        t,
        clinicId,
      ]),
    );
    return { name: u.name, role: u.role, clinicId, createdAt: t, disabledAt: null };
  }

  private opsUserOf(r: Row): OpsUser {
    return {
      name: String(r.name),
      role: r.role as OpsRole,
      clinicId: r.clinic_id === null || r.clinic_id === undefined ? null : String(r.clinic_id),
      createdAt: iso(r.created_at),
      disabledAt: isoOrNull(r.disabled_at),
    };
  }

  async getOpsUser(name: string): Promise<OpsUser | undefined> {
    const rows = await this.db.query('SELECT * FROM ops_users WHERE name = $1', [name]);
    return rows[0] ? this.opsUserOf(rows[0]) : undefined;
  }

  async listOpsUsers(): Promise<OpsUser[]> {
    const rows = await this.db.query('SELECT * FROM ops_users ORDER BY name');
    return rows.map((r) => this.opsUserOf(r));
  }

  // ---- configuration ----------------------------------------------------------

  async putDesiredConfig(
    deviceId: string,
    settings: DeviceSettings,
    createdBy: string,
    own: Record<string, unknown> | null = null,
  ): Promise<DesiredConfig> {
    const box = await this.getBoxByDeviceId(deviceId);
    if (!box) throw this.notFound(`box with device id ${deviceId}`);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction(async (q) => {
          const rows = await q(
            `INSERT INTO desired_configs (device_id, version, settings, created_by, created_at, own_settings)
             SELECT $1, COALESCE(MAX(version), 0) + 1, ${this.cast('$2', 'json')}, $3, ${this.cast('$4', 'ts')}, ${this.cast('$5', 'json')}
             FROM desired_configs WHERE device_id = $1
             RETURNING *`,
            [deviceId, JSON.stringify(settings), createdBy, now(), own === null ? null : JSON.stringify(own)],
          );
          const cfg = toDesired(rows[0] as Row);
          await q('UPDATE boxes SET desired_version = $1, updated_at = $2 WHERE device_id = $3', [
            cfg.version,
            now(),
            deviceId,
          ]);
          return cfg;
        });
      } catch (e) {
        if (attempt < 5 && this.db.isUniqueViolation(e)) continue;
        throw e;
      }
    }
  }

  async getDesiredConfig(deviceId: string, version?: number): Promise<DesiredConfig | undefined> {
    const rows =
      version === undefined
        ? await this.db.query('SELECT * FROM desired_configs WHERE device_id = $1 ORDER BY version DESC LIMIT 1', [
            deviceId,
          ])
        : await this.db.query('SELECT * FROM desired_configs WHERE device_id = $1 AND version = $2', [
            deviceId,
            version,
          ]);
    return rows[0] ? toDesired(rows[0]) : undefined;
  }

  async listLatestDesiredConfigs(): Promise<DesiredConfig[]> {
    const rows = await this.db.query(
      `SELECT d.* FROM desired_configs d
       JOIN (SELECT device_id, MAX(version) AS v FROM desired_configs GROUP BY device_id) m
         ON m.device_id = d.device_id AND m.v = d.version
       ORDER BY d.device_id`,
    );
    return rows.map(toDesired);
  }

  // ---- audit ----------------------------------------------------------------

  async appendAudit(e: NewAuditEntry): Promise<AuditEntry> {
    const rows = await this.db.query(
      `INSERT INTO audit_log (at, actor, action, target, before_value, after_value)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [
        e.at ?? now(),
        e.actor,
        e.action,
        e.target,
        e.before === undefined || e.before === null ? null : JSON.stringify(e.before),
        e.after === undefined || e.after === null ? null : JSON.stringify(e.after),
      ],
    );
    return toAudit(rows[0] as Row);
  }

  async listAudit(filter: AuditFilter = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.target) {
      params.push(filter.target);
      where.push(`target = $${params.length}`);
    }
    if (filter.actor) {
      params.push(filter.actor);
      where.push(`actor = $${params.length}`);
    }
    if (filter.beforeId !== undefined) {
      params.push(filter.beforeId);
      where.push(`id < $${params.length}`);
    }
    params.push(Math.min(Math.max(filter.limit ?? 100, 1), 10_000));
    const rows = await this.db.query(
      `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toAudit);
  }

  // ---- events -----------------------------------------------------------------

  async insertEvents(events: AnyEvent[], receivedAt = now()): Promise<string[]> {
    if (events.length === 0) return [];
    const values: string[] = [];
    const params: unknown[] = [];
    for (const e of events) {
      const base = params.length;
      params.push(
        e.id,
        e.deviceId,
        e.bootId,
        e.seq,
        e.type,
        new Date(e.at).toISOString(),
        receivedAt,
        JSON.stringify(this.patient ? this.patient.sealFields(e.body) : e.body),
      );
      values.push(`(${Array.from({ length: 8 }, (_, i) => `$${base + i + 1}`).join(', ')})`);
    }
    const insert = `INSERT INTO events (id, device_id, boot_id, seq, type, at, received_at, body) VALUES ${values.join(', ')}
       ON CONFLICT (id) DO NOTHING RETURNING id`;
    const lock = this.eventInsertLock();
    const rows = lock
      ? await this.db.transaction(async (q) => {
          await q(lock);
          return q(insert, params);
        })
      : await this.db.query(insert, params);
    return rows.map((r) => String(r.id));
  }

  async listEvents(filter: EventFilter = {}): Promise<StoredEvent[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, v: unknown) => {
      params.push(v);
      where.push(clause.replace('?', `$${params.length}`));
    };
    if (filter.deviceId) add('device_id = ?', filter.deviceId);
    if (filter.type) add('type = ?', filter.type);
    if (filter.since) add('received_at >= ?', new Date(filter.since).toISOString());
    if (filter.afterId) add('id > ?', filter.afterId);
    if (filter.beforeId) add('id < ?', filter.beforeId);
    params.push(Math.min(Math.max(filter.limit ?? 100, 1), 10_000));
    const order = filter.order === 'asc' ? 'ASC' : 'DESC';
    const rows = await this.db.query(
      `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${order} LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => {
      const e = toEvent(r);
      return this.patient ? { ...e, body: this.patient.openFields(e.body) } : e;
    });
  }

  async countEvents(filter: { deviceId?: string } = {}): Promise<number> {
    const rows = filter.deviceId
      ? await this.db.query('SELECT COUNT(*) AS n FROM events WHERE device_id = $1', [filter.deviceId])
      : await this.db.query('SELECT COUNT(*) AS n FROM events');
    return num(rows[0]?.n ?? 0);
  }

  async maxSeq(deviceId: string): Promise<number> {
    const rows = await this.db.query('SELECT MAX(seq) AS m FROM events WHERE device_id = $1', [deviceId]);
    const m = rows[0]?.m;
    return m === null || m === undefined ? 0 : num(m);
  }

  async readEventsAfter(afterPos: number, limit = 500): Promise<PositionedEvent[]> {
    const rows = await this.db.query('SELECT * FROM events WHERE pos > $1 ORDER BY pos LIMIT $2', [
      afterPos,
      Math.min(Math.max(limit, 1), 10_000),
    ]);
    return rows.map((r) => {
      const e = toEvent(r);
      // Readers of stored events (the alert engine) see bodies as sent: patient fields are opened here too.
      return { ...(this.patient ? { ...e, body: this.patient.openFields(e.body) } : e), pos: num(r.pos) };
    });
  }

  async eventsHead(): Promise<number> {
    const rows = await this.db.query('SELECT MAX(pos) AS m FROM events');
    const m = rows[0]?.m;
    return m === null || m === undefined ? 0 : num(m);
  }

  async claimCursor(name: string, owner: string, at: string, until: string): Promise<EventCursor | undefined> {
    await this.db.query(
      `INSERT INTO event_cursors (name, pos, updated_at) VALUES ($1, 0, ${this.cast('$2', 'ts')})
       ON CONFLICT (name) DO NOTHING`,
      [name, at],
    );
    const rows = await this.db.query(
      `UPDATE event_cursors SET owner = $2, lease_until = $4, updated_at = $3
       WHERE name = $1 AND (owner IS NULL OR owner = $2 OR lease_until IS NULL OR lease_until < $3)
       RETURNING *`,
      [name, owner, at, until],
    );
    return rows[0] ? toCursor(rows[0]) : undefined;
  }

  async advanceCursor(
    name: string,
    c: { owner: string; from: number; to: number; now: string; until: string },
  ): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE event_cursors SET pos = $4, lease_until = $5, updated_at = $6
       WHERE name = $1 AND owner = $2 AND pos = $3 RETURNING name`,
      [name, c.owner, c.from, c.to, c.until, c.now],
    );
    return rows.length > 0;
  }

  async releaseCursor(name: string, owner: string): Promise<void> {
    await this.db.query('UPDATE event_cursors SET owner = NULL, lease_until = NULL WHERE name = $1 AND owner = $2', [
      name,
      owner,
    ]);
  }

  async getCursor(name: string): Promise<EventCursor | undefined> {
    const rows = await this.db.query('SELECT * FROM event_cursors WHERE name = $1', [name]);
    return rows[0] ? toCursor(rows[0]) : undefined;
  }

  async findGaps(deviceId?: string): Promise<SeqGap[]> {
    const params: unknown[] = deviceId ? [deviceId] : [];
    const rows = await this.db.query(
      `SELECT device_id, prev + 1 AS from_seq, seq - 1 AS to_seq FROM (
         SELECT device_id, seq, COALESCE(LAG(seq) OVER (PARTITION BY device_id ORDER BY seq), 0) AS prev
         FROM events ${deviceId ? 'WHERE device_id = $1' : ''}) s
       WHERE seq > prev + 1
       ORDER BY device_id, from_seq`,
      params,
    );
    return rows.map((r) => ({ deviceId: String(r.device_id), fromSeq: num(r.from_seq), toSeq: num(r.to_seq) }));
  }

  // ---- over-the-air updates ---------------------------------------------------

  async putRelease(r: StoredRelease): Promise<void> {
    await this.db.query(
      `INSERT INTO releases (version, program, arch, key_id, manifest, signature, sha256, total_bytes, received_bytes,
         state, created_by, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (version) DO UPDATE SET program = excluded.program, arch = excluded.arch, key_id = excluded.key_id,
         manifest = excluded.manifest, signature = excluded.signature, sha256 = excluded.sha256,
         total_bytes = excluded.total_bytes, received_bytes = excluded.received_bytes, state = excluded.state,
         created_by = excluded.created_by, created_at = excluded.created_at`,
      [
        r.version,
        r.program,
        r.arch,
        r.keyId,
        r.manifest,
        r.signature,
        r.sha256,
        r.totalBytes,
        r.receivedBytes,
        r.state,
        r.createdBy,
        r.createdAt,
      ],
    );
  }

  async getRelease(version: string): Promise<StoredRelease | undefined> {
    const rows = await this.db.query('SELECT * FROM releases WHERE version = $1', [version]);
    return rows[0] ? toRelease(rows[0]) : undefined;
  }

  async listReleases(): Promise<StoredRelease[]> {
    return (await this.db.query('SELECT * FROM releases ORDER BY created_at DESC, version DESC')).map(toRelease);
  }

  async createRollout(r: Rollout, boxes: { deviceId: string; rank: number }[]): Promise<void> {
    await this.db.transaction(async (q) => {
      await q(
        `INSERT INTO rollouts (id, version, stages, stage, state, paused_reason, failure_max_count, failure_max_share,
           created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          r.id,
          r.version,
          JSON.stringify(r.stages),
          r.stage,
          r.state,
          r.pausedReason,
          r.failureMaxCount,
          r.failureMaxShare,
          r.createdBy,
          r.createdAt,
          r.updatedAt,
        ],
      );
      for (const b of boxes) {
        await q('INSERT INTO rollout_boxes (rollout_id, device_id, rank) VALUES ($1, $2, $3)', [
          r.id,
          b.deviceId,
          b.rank,
        ]);
      }
    });
  }

  async getRollout(id: string): Promise<Rollout | undefined> {
    const rows = await this.db.query('SELECT * FROM rollouts WHERE id = $1', [id]);
    return rows[0] ? toRollout(rows[0]) : undefined;
  }

  async listRollouts(filter: { state?: Rollout['state'] } = {}): Promise<Rollout[]> {
    const rows = filter.state
      ? await this.db.query('SELECT * FROM rollouts WHERE state = $1 ORDER BY created_at DESC, id DESC', [filter.state])
      : await this.db.query('SELECT * FROM rollouts ORDER BY created_at DESC, id DESC');
    return rows.map(toRollout);
  }

  async updateRollout(id: string, patch: Partial<Pick<Rollout, 'stage' | 'state' | 'pausedReason'>>): Promise<Rollout> {
    const cols: Record<string, string> = { stage: 'stage', state: 'state', pausedReason: 'paused_reason' };
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || !cols[k]) continue;
      params.push(v);
      sets.push(`${cols[k]} = $${params.length}`);
    }
    params.push(now());
    sets.push(`updated_at = $${params.length}`);
    params.push(id);
    const rows = await this.db.query(
      `UPDATE rollouts SET ${sets.join(', ')} WHERE id = $${params.length} RETURNING *`,
      params,
    );
    if (!rows[0]) throw this.notFound(`rollout ${id}`);
    return toRollout(rows[0]);
  }

  async listRolloutBoxes(rolloutId: string): Promise<RolloutBox[]> {
    const rows = await this.db.query('SELECT * FROM rollout_boxes WHERE rollout_id = $1 ORDER BY rank', [rolloutId]);
    return rows.map(toRolloutBox);
  }

  async setRolloutBox(
    rolloutId: string,
    deviceId: string,
    patch: Partial<Pick<RolloutBox, 'state' | 'running' | 'bytes' | 'reason'>>,
  ): Promise<boolean> {
    const cols: Record<string, string> = { state: 'state', running: 'running', bytes: 'bytes', reason: 'reason' };
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || !cols[k]) continue;
      params.push(v);
      sets.push(`${cols[k]} = $${params.length}`);
    }
    params.push(now());
    sets.push(`updated_at = $${params.length}`);
    params.push(rolloutId, deviceId);
    const rows = await this.db.query(
      `UPDATE rollout_boxes SET ${sets.join(', ')} WHERE rollout_id = $${params.length - 1} AND device_id = $${params.length} RETURNING rollout_id`,
      params,
    );
    return rows.length > 0;
  }
}

function toRelease(r: Row): StoredRelease {
  return {
    version: String(r.version),
    program: String(r.program),
    arch: String(r.arch),
    keyId: String(r.key_id),
    manifest: String(r.manifest),
    signature: String(r.signature),
    sha256: String(r.sha256),
    totalBytes: num(r.total_bytes),
    receivedBytes: num(r.received_bytes),
    state: r.state as StoredRelease['state'],
    createdBy: String(r.created_by),
    createdAt: iso(r.created_at),
  };
}

function toRollout(r: Row): Rollout {
  return {
    id: String(r.id),
    version: String(r.version),
    stages: json<number[]>(r.stages),
    stage: num(r.stage),
    state: r.state as Rollout['state'],
    pausedReason: (r.paused_reason as string | null) ?? null,
    failureMaxCount: num(r.failure_max_count),
    failureMaxShare: num(r.failure_max_share),
    createdBy: String(r.created_by),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

function toRolloutBox(r: Row): RolloutBox {
  return {
    rolloutId: String(r.rollout_id),
    deviceId: String(r.device_id),
    rank: num(r.rank),
    state: (r.state as string | null) ?? null,
    running: (r.running as string | null) ?? null,
    bytes: r.bytes === null || r.bytes === undefined ? null : num(r.bytes),
    reason: (r.reason as string | null) ?? null,
    updatedAt: isoOrNull(r.updated_at),
  };
}

/** " LIMIT $n" for a page size (nothing: all rows). */
function limitOf(params: unknown[], limit: number | undefined): string {
  if (limit === undefined) return '';
  params.push(Math.max(1, Math.floor(limit)));
  return ` LIMIT $${params.length}`;
}

/** Rows after the row with this id in (name, id) order: keyset paging of a list sorted by name. */
function pageAfter(table: 'clinics' | 'organisations', params: unknown[], afterId: string): string {
  params.push(afterId);
  const n = params.length;
  return `(name > (SELECT name FROM ${table} WHERE id = $${n}) OR (name = (SELECT name FROM ${table} WHERE id = $${n}) AND id > $${n}))`;
}
