import type { Migration } from '../store/store.js';

/**
 * The uplink's tables.
 * - meta: small key/value state (last_seq: the last sequence number given
 *   out, so seq keeps rising across reboots even when the outbox is empty;
 *   stream: the id of this outbox, named by the fleet's receipts).
 * - events: the outbox; a row is deleted once the fleet's receipt covers it
 *   (the fleet has stored it), never on the broker's PUBACK. class: 2 never
 *   dropped (panic, voicemail), 1 normal, 0 coalescable (a newer state of
 *   the same coalesce_key supersedes it).
 * - command_results: answers to fleet commands by request id, so that a
 *   command redelivered after a restart is answered, not executed again.
 */
export const UPLINK_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'outbox',
    up: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        class INTEGER NOT NULL,
        coalesce_key TEXT,
        at TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX events_coalesce ON events (coalesce_key) WHERE coalesce_key IS NOT NULL;
      CREATE TABLE command_results (
        id TEXT PRIMARY KEY,
        method TEXT NOT NULL,
        ok INTEGER NOT NULL,
        response TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX command_results_at ON command_results (at);
    `,
  },
];
