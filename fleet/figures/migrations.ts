/**
 * The figures store's paired up/down migrations (bookkeeping in
 * figures_schema_migrations), applied by the fleet's one runner
 * (fleet/store/migrate.ts) on the fleet store's connection, after the fleet
 * store's own. Times are ISO text in both dialects (they compare as text).
 *
 * - figure_calls: one row per call (box, call id): what the rollups counted
 *   for it, so that a call's events are applied once per call and type
 *   whatever event ids they came with; the caller's number only as a keyed
 *   hash (repeat calls) and sealed (exports), never in clear.
 * - figure_rollups: counters per clinic, grain (hour, day, week) and bucket
 *   start on the clinic's wall clock, with the answer-time histogram
 *   (ANSWER_BUCKETS_S) in columns h0..h13.
 * - figure_targets: per-clinic targets (service level, short abandon, repeat window).
 * - telemetry: every telemetry sample a box sent, kept telemetry.retentionDays;
 *   boxes.last_telemetry: the newest one, on the box row.
 */
import { ANSWER_BUCKETS_S } from '../../shared/contract/figures-ops.js';
import type { MigrationSet } from '../store/migrate.js';

/** The histogram columns: one per bucket of ANSWER_BUCKETS_S, and one for longer. */
export const HIST_COLUMNS = [...ANSWER_BUCKETS_S, Number.POSITIVE_INFINITY].map((_, i) => `h${i}`);

/** The counter columns of figure_rollups (besides the histogram), in FiguresSchema's names. */
export const COUNTER_COLUMNS = {
  offered: 'offered',
  answered: 'answered',
  abandoned: 'abandoned',
  shortAbandoned: 'short_abandoned',
  missed: 'missed',
  rolledOver: 'rolled_over',
  voicemail: 'voicemail',
  voicemailFailed: 'voicemail_failed',
  answeredInTarget: 'answered_in_target',
  repeatCalls: 'repeat_calls',
  followupSmsSent: 'sms_sent',
  followupSmsFailed: 'sms_failed',
  answerMsSum: 'answer_ms_sum',
} as const;
export type Counter = keyof typeof COUNTER_COLUMNS;

export const FIGURES_MIGRATIONS: MigrationSet = {
  table: 'figures_schema_migrations',
  migrations: [
    {
      version: 1,
      name: 'call figures and telemetry',
      up: ({ json }) => [
        `CREATE TABLE figure_calls (
          device_id TEXT NOT NULL,
          call_id TEXT NOT NULL,
          clinic_id TEXT,
          started_at TEXT NOT NULL,
          incoming_seen INTEGER NOT NULL,
          ended INTEGER NOT NULL,
          outcome TEXT,
          ring_ms BIGINT,
          answer_ms BIGINT,
          talk_ms BIGINT,
          repeat_call INTEGER NOT NULL,
          in_hours INTEGER,
          number_hash TEXT,
          number_sealed TEXT,
          sms TEXT,
          PRIMARY KEY (device_id, call_id))`,
        'CREATE INDEX figure_calls_call ON figure_calls (call_id)',
        'CREATE INDEX figure_calls_clinic ON figure_calls (clinic_id, started_at)',
        'CREATE INDEX figure_calls_number ON figure_calls (clinic_id, number_hash, started_at)',
        `CREATE TABLE figure_rollups (
          clinic_id TEXT NOT NULL,
          grain TEXT NOT NULL,
          bucket TEXT NOT NULL,
          weekday INTEGER NOT NULL,
          hour_of_day INTEGER NOT NULL,
          ${Object.values(COUNTER_COLUMNS)
            .map((c) => `${c} BIGINT NOT NULL DEFAULT 0`)
            .join(',\n          ')},
          ${HIST_COLUMNS.map((c) => `${c} INTEGER NOT NULL DEFAULT 0`).join(', ')},
          PRIMARY KEY (clinic_id, grain, bucket))`,
        `CREATE TABLE figure_targets (
          clinic_id TEXT PRIMARY KEY,
          service_level_target_s INTEGER NOT NULL,
          short_abandon_s INTEGER NOT NULL,
          repeat_window_h INTEGER NOT NULL,
          updated_by TEXT NOT NULL,
          updated_at TEXT NOT NULL)`,
        `CREATE TABLE telemetry (
          device_id TEXT NOT NULL,
          at TEXT NOT NULL,
          received_at TEXT NOT NULL,
          data ${json} NOT NULL,
          PRIMARY KEY (device_id, at))`,
        'CREATE INDEX telemetry_received ON telemetry (received_at)',
        `ALTER TABLE boxes ADD COLUMN last_telemetry ${json}`,
      ],
      down: () => [
        'ALTER TABLE boxes DROP COLUMN last_telemetry',
        'DROP TABLE telemetry',
        'DROP TABLE figure_targets',
        'DROP TABLE figure_rollups',
        'DROP TABLE figure_calls',
      ],
    },
  ],
};
