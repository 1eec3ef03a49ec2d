/**
 * Tables of the call log, the call-back list and the survey figures
 * (bookkeeping in patients_schema_migrations), applied by the fleet's one
 * migration runner (fleet/store/migrate.ts) on the fleet store's connection.
 * Times are ISO text in both dialects (they compare as text), like the alert
 * store's. Patient data (numbers, the FHIR match, notes, the FHIR token) is
 * sealed (fleet/crypto/patient-data.ts); a number is found again by its
 * blind index (`number_ix`), never by its clear text.
 */
import type { MigrationSet } from '../store/migrate.js';

export const PATIENT_MIGRATIONS: MigrationSet = {
  table: 'patients_schema_migrations',
  migrations: [
    {
      version: 1,
      name: 'call log, call-backs, surveys',
      up: () => [
        `CREATE TABLE patient_fhir (
        clinic_id TEXT PRIMARY KEY,
        base_url TEXT NOT NULL,
        token TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL)`,
        `CREATE TABLE call_log (
        device_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        clinic_id TEXT,
        number TEXT,
        number_ix TEXT,
        withheld INTEGER NOT NULL,
        in_hours INTEGER,
        started_at TEXT NOT NULL,
        answered_at TEXT,
        ended_at TEXT,
        outcome TEXT,
        rings INTEGER,
        duration_ms INTEGER,
        lookup TEXT NOT NULL,
        lookup_detail TEXT,
        matches INTEGER NOT NULL DEFAULT 0,
        patient TEXT,
        repeat_reason TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (device_id, call_id))`,
        'CREATE INDEX call_log_clinic ON call_log (clinic_id, started_at)',
        `CREATE TABLE patient_contacts (
        event_id TEXT PRIMARY KEY,
        clinic_id TEXT,
        number_ix TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        call_id TEXT,
        detail TEXT)`,
        'CREATE INDEX patient_contacts_number ON patient_contacts (clinic_id, number_ix, at)',
        `CREATE TABLE callbacks (
        device_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        clinic_id TEXT,
        number TEXT,
        number_ix TEXT,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        done_at TEXT,
        done_by TEXT,
        note TEXT,
        closed_by_call TEXT,
        PRIMARY KEY (device_id, call_id))`,
        'CREATE INDEX callbacks_clinic ON callbacks (clinic_id, state, created_at)',
        `CREATE TABLE survey_log (
        event_id TEXT PRIMARY KEY,
        clinic_id TEXT,
        device_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        score INTEGER,
        at TEXT NOT NULL)`,
        'CREATE INDEX survey_log_clinic ON survey_log (clinic_id, at)',
      ],
      down: () => [
        'DROP TABLE survey_log',
        'DROP TABLE callbacks',
        'DROP TABLE patient_contacts',
        'DROP TABLE call_log',
        'DROP TABLE patient_fhir',
      ],
    },
  ],
};
