/**
 * The alert store's paired up/down migrations (bookkeeping in
 * alert_schema_migrations), applied by the fleet's one runner
 * (fleet/store/migrate.ts) on the fleet store's connection. The tables sit
 * in the fleet's database next to the registry's; the alert engine never
 * reaches into the registry's tables.
 */
import type { MigrationSet } from '../store/migrate.js';

/** The tables of the alert store (in the order a copy must fill them: alerts first). */
export const ALERT_TABLES = [
  'alerts',
  'alert_deliveries',
  'alert_log',
  'alert_pending',
  'alert_rollovers',
  'alert_clinic_settings',
  'alert_event_effects',
] as const;

export const ALERT_MIGRATIONS: MigrationSet = {
  table: 'alert_schema_migrations',
  migrations: [
    {
      version: 1,
      name: 'alerts',
      up: ({ autoId }) => [
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
      down: () => [
        'DROP TABLE alert_clinic_settings',
        'DROP TABLE alert_rollovers',
        'DROP TABLE alert_pending',
        'DROP TABLE alert_log',
        'DROP TABLE alert_deliveries',
        'DROP TABLE alerts',
      ],
    },
    {
      // Which stored event already opened or counted an alert of which condition (see store.ts).
      version: 2,
      name: 'alert event effects',
      up: () => [
        `CREATE TABLE alert_event_effects (
        event_id TEXT NOT NULL,
        condition TEXT NOT NULL,
        alert_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (event_id, condition))`,
        'CREATE INDEX alert_event_effects_at ON alert_event_effects (at)',
      ],
      down: () => ['DROP TABLE alert_event_effects'],
    },
    {
      // The missed-calls rule's window, in the store: whichever fleet worker reads the events next goes on counting.
      version: 3,
      name: 'missed-call window',
      up: () => [
        `CREATE TABLE alert_missed_calls (
        clinic_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (clinic_id, event_id))`,
        'CREATE INDEX alert_missed_calls_at ON alert_missed_calls (clinic_id, at)',
      ],
      down: () => ['DROP TABLE alert_missed_calls'],
    },
  ],
};
