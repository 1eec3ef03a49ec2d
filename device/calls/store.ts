/**
 * What device/calls keeps across restarts: a minimal record per call (so a
 * call in progress when the box restarts is resumed from AT+CLCC, not
 * reported twice nor lost), and the follow-up SMS log (at most one per
 * number per window, even across restarts).
 *
 * One interface, two implementations run through the same conformance suite
 * (store.test.ts): MemoryCallStore for unit tests, SqliteCallStore (sqlite3,
 * a file in the box's data directory) for the box.
 */
import sqlite3 from 'sqlite3';
import { CallboxError, ErrorCode } from '../../shared/errors.js';

export type CallPhase = 'ringing' | 'answered' | 'voicemail' | 'rolling_over' | 'rolled_over' | 'ended';
export type CallOutcome = 'answered' | 'missed' | 'abandoned' | 'voicemail' | 'voicemail_failed' | 'rolled_over';
export type AnsweredBy = 'handset' | 'button' | 'network' | 'voicemail';

/** The persisted state of one call. Times are ms since the epoch. */
export interface CallRecord {
  callId: string;
  /** AT+CLCC index while the call lives; null before the first CLCC listed it. */
  index: number | null;
  number: string | null;
  withheld: boolean;
  phase: CallPhase;
  /** First RING (or first seen in CLCC). */
  startedAt: number;
  rings: number;
  inHours: boolean;
  repeatCaller: boolean;
  waiting: boolean;
  answeredAt: number | null;
  answeredBy: AnsweredBy | null;
  rolledOverTo: string | null;
  rolledOverHow: 'deflect' | 'forwarding' | null;
  outcome: CallOutcome | null;
  endedAt: number | null;
}

export interface CallStore {
  /** Insert or replace the record with this callId. */
  save(rec: CallRecord): Promise<void>;
  /** Calls not yet ended (phase !== 'ended'), oldest first. */
  openCalls(): Promise<CallRecord[]>;
  get(callId: string): Promise<CallRecord | null>;
  /** Calls from `number` that started at or after `since`, other than `exceptCallId`. */
  countCallsFrom(number: string, since: number, exceptCallId: string): Promise<number>;
  /** Time of the last follow-up SMS claimed for `number`, or null. */
  lastFollowUp(number: string): Promise<number | null>;
  /**
   * Claim the follow-up for `number` at `at` unless one was claimed at or
   * after `notBefore`; true when claimed (atomic: two claimers, one wins).
   */
  claimFollowUp(number: string, at: number, notBefore: number, callId: string): Promise<boolean>;
  /** Give a claim back (the SMS failed), so a later missed call may try again. */
  releaseFollowUp(number: string, at: number): Promise<void>;
  /** Forget ended calls and follow-ups older than `before`. */
  prune(before: number): Promise<number>;
  close(): Promise<void>;
}

export class MemoryCallStore implements CallStore {
  private readonly calls = new Map<string, CallRecord>();
  private readonly followUps = new Map<string, number>();

  async save(rec: CallRecord): Promise<void> {
    this.calls.set(rec.callId, { ...rec });
  }
  async openCalls(): Promise<CallRecord[]> {
    return [...this.calls.values()]
      .filter((c) => c.phase !== 'ended')
      .sort((a, b) => a.startedAt - b.startedAt)
      .map((c) => ({ ...c }));
  }
  async get(callId: string): Promise<CallRecord | null> {
    const c = this.calls.get(callId);
    return c ? { ...c } : null;
  }
  async countCallsFrom(number: string, since: number, exceptCallId: string): Promise<number> {
    let n = 0;
    for (const c of this.calls.values())
      if (c.number === number && c.startedAt >= since && c.callId !== exceptCallId) n++;
    return n;
  }
  async lastFollowUp(number: string): Promise<number | null> {
    return this.followUps.get(number) ?? null;
  }
  async claimFollowUp(number: string, at: number, notBefore: number): Promise<boolean> {
    const last = this.followUps.get(number);
    if (last !== undefined && last >= notBefore) return false;
    this.followUps.set(number, at);
    return true;
  }
  async releaseFollowUp(number: string, at: number): Promise<void> {
    if (this.followUps.get(number) === at) this.followUps.delete(number);
  }
  async prune(before: number): Promise<number> {
    let n = 0;
    for (const [id, c] of this.calls) {
      if (c.phase === 'ended' && c.startedAt < before) {
        this.calls.delete(id);
        n++;
      }
    }
    for (const [num, at] of this.followUps) if (at < before) this.followUps.delete(num);
    return n;
  }
  async close(): Promise<void> {}
}

interface Row {
  call_id: string;
  idx: number | null;
  number: string | null;
  withheld: number;
  phase: CallPhase;
  started_at: number;
  rings: number;
  in_hours: number;
  repeat_caller: number;
  waiting: number;
  answered_at: number | null;
  answered_by: AnsweredBy | null;
  rolled_over_to: string | null;
  rolled_over_how: 'deflect' | 'forwarding' | null;
  outcome: CallOutcome | null;
  ended_at: number | null;
}

/**
 * The calls module's tables, as migrations in the shape device/store applies
 * per module (`Store.open({ migrations: { calls: CALLS_MIGRATIONS } })`).
 */
export const CALLS_MIGRATIONS: readonly { version: number; name: string; up: string }[] = [
  {
    version: 1,
    name: 'calls and follow-ups',
    up: `
CREATE TABLE IF NOT EXISTS calls (
  call_id TEXT PRIMARY KEY,
  idx INTEGER,
  number TEXT,
  withheld INTEGER NOT NULL,
  phase TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  rings INTEGER NOT NULL,
  in_hours INTEGER NOT NULL,
  repeat_caller INTEGER NOT NULL,
  waiting INTEGER NOT NULL,
  answered_at INTEGER,
  answered_by TEXT,
  rolled_over_to TEXT,
  rolled_over_how TEXT,
  outcome TEXT,
  ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS calls_open ON calls (phase) WHERE phase <> 'ended';
CREATE INDEX IF NOT EXISTS calls_number ON calls (number, started_at);
CREATE TABLE IF NOT EXISTS followups (
  number TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  call_id TEXT NOT NULL
);`,
  },
];

/** The statements the SQL call store needs; device/store's Store provides them (serialised on its connection). */
export interface SqlQueries {
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

function fromRow(r: Row): CallRecord {
  return {
    callId: r.call_id,
    index: r.idx,
    number: r.number,
    withheld: r.withheld === 1,
    phase: r.phase,
    startedAt: r.started_at,
    rings: r.rings,
    inHours: r.in_hours === 1,
    repeatCaller: r.repeat_caller === 1,
    waiting: r.waiting === 1,
    answeredAt: r.answered_at,
    answeredBy: r.answered_by,
    rolledOverTo: r.rolled_over_to,
    rolledOverHow: r.rolled_over_how,
    outcome: r.outcome,
    endedAt: r.ended_at,
  };
}

function storeError(what: string, e: unknown): CallboxError {
  return new CallboxError(
    ErrorCode.StoreUnavailable,
    `call store: ${what} failed: ${(e as Error).message}`,
    undefined,
    {
      cause: e,
    },
  );
}

/**
 * The call store on SQL: over the box's one database (device/store's Store,
 * with CALLS_MIGRATIONS applied) or over a file of its own (open()).
 * WAL with synchronous=FULL: a saved record survives a power cut.
 */
export class SqliteCallStore implements CallStore {
  constructor(
    private readonly q: SqlQueries,
    private readonly onClose: () => Promise<void> = async () => {},
  ) {}

  /** A store in its own SQLite file (when the box store is not used). */
  static async open(file: string): Promise<SqliteCallStore> {
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const d = new sqlite3.Database(file, (err) => (err ? reject(storeError(`opening ${file}`, err)) : resolve(d)));
    });
    const q: SqlQueries = {
      run: (sql, params = []) =>
        new Promise((resolve, reject) =>
          db.run(sql, params, function (err) {
            if (err) reject(storeError('write', err));
            else resolve({ changes: this.changes });
          }),
        ),
      all: <T>(sql: string, params: readonly unknown[] = []) =>
        new Promise<T[]>((resolve, reject) =>
          db.all(sql, params, (err, rows) => (err ? reject(storeError('read', err)) : resolve(rows as T[]))),
        ),
      exec: (sql) =>
        new Promise((resolve, reject) => db.exec(sql, (err) => (err ? reject(storeError('schema', err)) : resolve()))),
    };
    await q.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
    for (const m of CALLS_MIGRATIONS) await q.exec(m.up);
    return new SqliteCallStore(
      q,
      () => new Promise((resolve, reject) => db.close((err) => (err ? reject(storeError('close', err)) : resolve()))),
    );
  }

  private run(sql: string, params: unknown[]): Promise<number> {
    return this.q.run(sql, params).then((r) => r.changes);
  }
  private all<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.q.all<T>(sql, params);
  }

  async save(c: CallRecord): Promise<void> {
    await this.run(
      `INSERT OR REPLACE INTO calls (call_id, idx, number, withheld, phase, started_at, rings, in_hours, repeat_caller,
         waiting, answered_at, answered_by, rolled_over_to, rolled_over_how, outcome, ended_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        c.callId,
        c.index,
        c.number,
        c.withheld ? 1 : 0,
        c.phase,
        c.startedAt,
        c.rings,
        c.inHours ? 1 : 0,
        c.repeatCaller ? 1 : 0,
        c.waiting ? 1 : 0,
        c.answeredAt,
        c.answeredBy,
        c.rolledOverTo,
        c.rolledOverHow,
        c.outcome,
        c.endedAt,
      ],
    );
  }
  async openCalls(): Promise<CallRecord[]> {
    const rows = await this.all<Row>(`SELECT * FROM calls WHERE phase <> 'ended' ORDER BY started_at`, []);
    return rows.map(fromRow);
  }
  async get(callId: string): Promise<CallRecord | null> {
    const rows = await this.all<Row>('SELECT * FROM calls WHERE call_id = ?', [callId]);
    return rows[0] ? fromRow(rows[0]) : null;
  }
  async countCallsFrom(number: string, since: number, exceptCallId: string): Promise<number> {
    const rows = await this.all<{ n: number }>(
      'SELECT COUNT(*) AS n FROM calls WHERE number = ? AND started_at >= ? AND call_id <> ?',
      [number, since, exceptCallId],
    );
    return rows[0]?.n ?? 0;
  }
  async lastFollowUp(number: string): Promise<number | null> {
    const rows = await this.all<{ at: number }>('SELECT at FROM followups WHERE number = ?', [number]);
    return rows[0]?.at ?? null;
  }
  async claimFollowUp(number: string, at: number, notBefore: number, callId: string): Promise<boolean> {
    // One statement: insert, or take over a claim older than the window; 0 changes = someone holds it.
    const changes = await this.run(
      `INSERT INTO followups (number, at, call_id) VALUES (?, ?, ?)
       ON CONFLICT (number) DO UPDATE SET at = excluded.at, call_id = excluded.call_id WHERE followups.at < ?`,
      [number, at, callId, notBefore],
    );
    return changes > 0;
  }
  async releaseFollowUp(number: string, at: number): Promise<void> {
    await this.run('DELETE FROM followups WHERE number = ? AND at = ?', [number, at]);
  }
  async prune(before: number): Promise<number> {
    const n = await this.run(`DELETE FROM calls WHERE phase = 'ended' AND started_at < ?`, [before]);
    await this.run('DELETE FROM followups WHERE at < ?', [before]);
    return n;
  }
  close(): Promise<void> {
    return this.onClose();
  }
}
