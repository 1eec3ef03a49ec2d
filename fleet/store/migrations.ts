/**
 * The fleet store's paired up/down migrations, for both dialects. One list;
 * each step is written once with the few types that differ between SQLite
 * and PostgreSQL filled in per dialect. Applied in order at start
 * (Store.migrate), undone in reverse (Store.migrateDown) by the one runner
 * (migrate.ts); the version lives in schema_migrations.
 */
import type { Migration, MigrationSet, Types } from './migrate.js';

const EVENT_COLUMNS = 'id, device_id, boot_id, seq, type, at, received_at, body';

/** The events table with its columns after `id` (SQLite rebuilds it to add or drop `pos`). */
function eventsTable(name: string, t: Types, idColumn: string): string {
  return `CREATE TABLE ${name} (
        ${idColumn},
        device_id TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        at ${t.ts} NOT NULL,
        received_at ${t.ts} NOT NULL,
        body ${t.json} NOT NULL)`;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'registry',
    up: (t) => [
      `CREATE TABLE organisations (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at ${t.ts} NOT NULL)`,
      `CREATE TABLE clinics (
        id TEXT PRIMARY KEY,
        organisation_id TEXT REFERENCES organisations(id),
        name TEXT NOT NULL,
        timezone TEXT NOT NULL,
        phone_numbers ${t.json} NOT NULL,
        answering_service TEXT,
        contacts ${t.json} NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL)`,
      `CREATE TABLE boxes (
        serial TEXT PRIMARY KEY,
        device_id TEXT UNIQUE,
        claim_state TEXT NOT NULL,
        clinic_id TEXT REFERENCES clinics(id),
        model TEXT,
        firmware TEXT,
        desired_version INTEGER NOT NULL DEFAULT 0,
        reported_version INTEGER,
        reported_state TEXT,
        reported_reason TEXT,
        last_seen_at ${t.ts},
        online ${t.bool} NOT NULL DEFAULT ${t.bool === 'BOOLEAN' ? 'FALSE' : '0'},
        last_claim_request_id TEXT,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL)`,
      'CREATE INDEX boxes_clinic ON boxes (clinic_id)',
      `CREATE TABLE credentials (
        username TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        hash TEXT NOT NULL,
        mosquitto_hash TEXT,
        created_at ${t.ts} NOT NULL,
        revoked_at ${t.ts})`,
      `CREATE TABLE ops_users (name TEXT PRIMARY KEY, role TEXT NOT NULL, created_at ${t.ts} NOT NULL, disabled_at ${t.ts})`,
      `CREATE TABLE desired_configs (
        device_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        settings ${t.json} NOT NULL,
        created_by TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        PRIMARY KEY (device_id, version))`,
      `CREATE TABLE audit_log (
        id ${t.autoId},
        at ${t.ts} NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        before_value ${t.json},
        after_value ${t.json})`,
      'CREATE INDEX audit_target ON audit_log (target, id)',
    ],
    down: () => [
      'DROP TABLE audit_log',
      'DROP TABLE desired_configs',
      'DROP TABLE ops_users',
      'DROP TABLE credentials',
      'DROP TABLE boxes',
      'DROP TABLE clinics',
      'DROP TABLE organisations',
    ],
  },
  {
    version: 2,
    name: 'events',
    up: (t) => [
      `CREATE TABLE events (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        at ${t.ts} NOT NULL,
        received_at ${t.ts} NOT NULL,
        body ${t.json} NOT NULL)`,
      'CREATE INDEX events_device_seq ON events (device_id, seq)',
      'CREATE INDEX events_received ON events (received_at)',
    ],
    down: () => ['DROP TABLE events'],
  },
  {
    // Consumers of stored events (the alert engine) keep a durable cursor: a position in the order events
    // were stored, like a Kafka consumer group's offset. `pos` is given by the database as the row is
    // written (event ids are made by the boxes and do not follow the order of storing). The cursor of the
    // alert engine starts at the end of what is already stored, so an upgrade does not replay history.
    version: 3,
    name: 'event positions and cursors',
    up: (t) => [
      ...(t.dialect === 'sqlite'
        ? [
            // SQLite cannot add an AUTOINCREMENT column, and the implicit rowid may be renumbered by VACUUM.
            eventsTable('events_v3', t, 'pos INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE'),
            `INSERT INTO events_v3 (${EVENT_COLUMNS}) SELECT ${EVENT_COLUMNS} FROM events ORDER BY received_at, id`,
            'DROP TABLE events',
            'ALTER TABLE events_v3 RENAME TO events',
            'CREATE INDEX events_device_seq ON events (device_id, seq)',
            'CREATE INDEX events_received ON events (received_at)',
          ]
        : ['ALTER TABLE events ADD COLUMN pos BIGSERIAL', 'CREATE UNIQUE INDEX events_pos ON events (pos)']),
      `CREATE TABLE event_cursors (
        name TEXT PRIMARY KEY,
        pos BIGINT NOT NULL,
        owner TEXT,
        lease_until ${t.ts},
        updated_at ${t.ts} NOT NULL)`,
      `INSERT INTO event_cursors (name, pos, updated_at) SELECT 'alerts', COALESCE(MAX(pos), 0), ${t.now} FROM events`,
    ],
    down: (t) => [
      'DROP TABLE event_cursors',
      ...(t.dialect === 'sqlite'
        ? [
            eventsTable('events_v2', t, 'id TEXT PRIMARY KEY'),
            `INSERT INTO events_v2 (${EVENT_COLUMNS}) SELECT ${EVENT_COLUMNS} FROM events ORDER BY pos`,
            'DROP TABLE events',
            'ALTER TABLE events_v2 RENAME TO events',
            'CREATE INDEX events_device_seq ON events (device_id, seq)',
            'CREATE INDEX events_received ON events (received_at)',
          ]
        : ['ALTER TABLE events DROP COLUMN pos']),
    ],
  },
  {
    // Over-the-air updates (fleet/updates): signed releases the fleet holds (the tarball is a file under
    // updates.dir), rollouts of one release to a set of boxes in stages, and each box's progress.
    version: 4,
    name: 'releases and rollouts',
    up: (t) => [
      `CREATE TABLE releases (
        version TEXT PRIMARY KEY,
        program TEXT NOT NULL,
        arch TEXT NOT NULL,
        key_id TEXT NOT NULL,
        manifest TEXT NOT NULL,
        signature TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        total_bytes BIGINT NOT NULL,
        received_bytes BIGINT NOT NULL,
        state TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at ${t.ts} NOT NULL)`,
      `CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        version TEXT NOT NULL REFERENCES releases(version),
        stages TEXT NOT NULL,
        stage INTEGER NOT NULL,
        state TEXT NOT NULL,
        paused_reason TEXT,
        failure_max_count INTEGER NOT NULL,
        failure_max_share DOUBLE PRECISION NOT NULL,
        created_by TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL)`,
      `CREATE TABLE rollout_boxes (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        device_id TEXT NOT NULL,
        rank INTEGER NOT NULL,
        state TEXT,
        running TEXT,
        bytes BIGINT,
        reason TEXT,
        updated_at ${t.ts},
        PRIMARY KEY (rollout_id, device_id))`,
    ],
    down: () => ['DROP TABLE rollout_boxes', 'DROP TABLE rollouts', 'DROP TABLE releases'],
  },
  {
    // A clinic carries the settings its boxes start from (time zone, hours, answering service, contacts...);
    // a box's desired configuration keeps the box's own settings beside the merged result, so that a change of
    // the clinic's defaults can be merged again under them (field by field).
    version: 5,
    name: 'clinic box defaults and a box own settings',
    up: (t) => [
      `ALTER TABLE clinics ADD COLUMN box_defaults ${t.json}`,
      `ALTER TABLE desired_configs ADD COLUMN own_settings ${t.json}`,
    ],
    down: () => [
      'ALTER TABLE desired_configs DROP COLUMN own_settings',
      'ALTER TABLE clinics DROP COLUMN box_defaults',
    ],
  },
  {
    // The HTTP API and dashboard (fleet/web): a clinic manager is an ops user bound to one clinic, and
    // sign-in sessions live here (the id hashed, with idle and absolute expiry; revoked by deleting).
    version: 6,
    name: 'clinic users and web sessions',
    up: (t) => [
      'ALTER TABLE ops_users ADD COLUMN clinic_id TEXT',
      `CREATE TABLE web_sessions (
        id_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES ops_users(name),
        csrf_secret TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        last_seen_at ${t.ts} NOT NULL,
        expires_at ${t.ts} NOT NULL,
        ip TEXT,
        user_agent TEXT)`,
      'CREATE INDEX web_sessions_user ON web_sessions (user_name)',
    ],
    down: () => ['DROP TABLE web_sessions', 'ALTER TABLE ops_users DROP COLUMN clinic_id'],
  },
];

/** The fleet store's migrations and their bookkeeping table. */
export const FLEET_MIGRATIONS: MigrationSet = { table: 'schema_migrations', migrations: MIGRATIONS };

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
