/**
 * The box's one SQLite database (sqlite3, asynchronous per call).
 *
 * Durability: journal_mode=WAL with synchronous=FULL. In WAL mode FULL
 * fsyncs the WAL at every commit, so a transaction that has committed (and
 * therefore an event whose record() has resolved) survives a power cut.
 * NORMAL would only sync at checkpoints: the database stays consistent but
 * the last commits before the cut can vanish, breaking the promise made to
 * the producer. The cost is one fsync per transaction, which the outbox
 * amortises by committing many events per transaction (group commit).
 *
 * One connection, one queue: sqlite3 runs calls of one connection on a
 * worker thread, and a transaction is a property of the connection, so
 * every call goes through a promise-chain mutex. A transaction therefore
 * never interleaves with another caller's statement, and a reader never
 * sees another caller's uncommitted rows (an event is published only after
 * its commit).
 *
 * Corrupt store at start-up: the file is quarantined (renamed, with its
 * -wal and -shm, to <file>.corrupt-<time>) and a new empty store is
 * created, so the box keeps taking calls and reporting; the quarantine is
 * returned to the caller, who logs it and reports it to the fleet (event
 * store.quarantined). Refusing to run would leave a clinic with a dead box
 * over data that cannot be recovered on site anyway, and the old file is
 * kept for a technician. A store locked by another process (SQLITE_BUSY
 * after busyTimeoutMs) is not corrupt: start-up fails with StoreUnavailable
 * and systemd retries.
 *
 * Migrations are per module (uplink, calls, voicemail, ...), each an
 * ordered list applied once inside a transaction and recorded in
 * schema_migrations(module, version).
 */
import { existsSync, renameSync } from 'node:fs';
import sqlite3 from 'sqlite3';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger, type Logger } from '../../shared/log.js';

export interface Migration {
  version: number;
  name: string;
  /** SQL run inside the migration's transaction (may hold several statements). */
  up: string;
}

export type Params = readonly unknown[] | Record<string, unknown>;

/** The statement primitives, used inside a transaction or through the store's queue. */
export interface Queries {
  run(sql: string, params?: Params): Promise<{ changes: number; lastID: number }>;
  get<T>(sql: string, params?: Params): Promise<T | undefined>;
  all<T>(sql: string, params?: Params): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

export interface Quarantine {
  /** Where the corrupt file was moved. */
  movedTo: string;
  reason: string;
}

export interface StoreOptions {
  file: string;
  migrations?: Record<string, readonly Migration[]>;
  busyTimeoutMs?: number;
  log?: Logger;
}

const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);

function isCorruption(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return typeof code === 'string' && CORRUPT_CODES.has(code);
}

function storeError(e: unknown, what: string): CallboxError {
  if (e instanceof CallboxError) return e;
  const err = e as { code?: string; message?: string };
  const code =
    err.code === 'SQLITE_FULL'
      ? ErrorCode.StoreFull
      : err.code && CORRUPT_CODES.has(err.code)
        ? ErrorCode.StoreCorrupt
        : ErrorCode.StoreUnavailable;
  return new CallboxError(code, `${what}: ${err.message ?? String(e)}`, { sqlite: err.code }, { cause: e });
}

function rawQueries(db: sqlite3.Database): Queries {
  return {
    run: (sql, params = []) =>
      new Promise((resolve, reject) => {
        db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
          if (err) reject(err);
          else resolve({ changes: this.changes, lastID: this.lastID });
        });
      }),
    get: <T>(sql: string, params: Params = []) =>
      new Promise<T | undefined>((resolve, reject) => {
        db.get(sql, params, (err: Error | null, row: T | undefined) => (err ? reject(err) : resolve(row)));
      }),
    all: <T>(sql: string, params: Params = []) =>
      new Promise<T[]>((resolve, reject) => {
        db.all(sql, params, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows)));
      }),
    exec: (sql) => new Promise<void>((resolve, reject) => db.exec(sql, (err) => (err ? reject(err) : resolve()))),
  };
}

function openDb(file: string): Promise<sqlite3.Database> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(db)));
  });
}

function closeDb(db: sqlite3.Database): Promise<void> {
  return new Promise((resolve) => db.close(() => resolve()));
}

export class Store implements Queries {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly q: Queries;
  private closed = false;

  private constructor(
    private readonly db: sqlite3.Database,
    readonly file: string,
    /** Set when a corrupt file was set aside at this start. */
    readonly quarantined: Quarantine | undefined,
  ) {
    this.q = rawQueries(db);
  }

  /** Open (creating if needed), check, configure and migrate the store. */
  static async open(opts: StoreOptions): Promise<Store> {
    const log = opts.log ?? getLogger('device:store');
    let quarantined: Quarantine | undefined;
    for (let attempt = 0; ; attempt++) {
      let db: sqlite3.Database | undefined;
      try {
        db = await openDb(opts.file);
        db.configure('busyTimeout', opts.busyTimeoutMs ?? 5000);
        const q = rawQueries(db);
        // quick_check reads every page: it finds a torn or overwritten file
        // before the box relies on it (a few seconds at most for a full outbox).
        const check = await q.all<{ quick_check: string }>('PRAGMA quick_check');
        const verdict = check.map((r) => r.quick_check).join('; ');
        if (verdict !== 'ok') throw Object.assign(new Error(`quick_check: ${verdict}`), { code: 'SQLITE_CORRUPT' });
        await q.get('PRAGMA journal_mode=WAL');
        await q.exec('PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=67108864;');
        // Take the write lock once: a store another process holds (a second callbox-device) fails here,
        // at start-up, rather than at the first event.
        await q.exec('BEGIN IMMEDIATE; ROLLBACK;');
        const store = new Store(db, opts.file, quarantined);
        await store.migrate(opts.migrations ?? {}, log);
        return store;
      } catch (e) {
        if (db) await closeDb(db);
        if (isCorruption(e) && attempt === 0 && existsSync(opts.file)) {
          const movedTo = `${opts.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
          for (const suffix of ['', '-wal', '-shm']) {
            if (existsSync(opts.file + suffix)) renameSync(opts.file + suffix, movedTo + suffix);
          }
          quarantined = { movedTo, reason: (e as Error).message };
          log.error(
            { file: opts.file, movedTo, reason: quarantined.reason },
            'store is corrupt: quarantined it, starting a new one',
          );
          continue;
        }
        if ((e as { code?: string }).code === 'SQLITE_BUSY') {
          throw new CallboxError(
            ErrorCode.StoreUnavailable,
            `the store ${opts.file} is locked by another process (is a second callbox-device running?); waited ${opts.busyTimeoutMs ?? 5000} ms`,
            { sqlite: 'SQLITE_BUSY' },
            { cause: e },
          );
        }
        throw storeError(e, `cannot open the store ${opts.file}`);
      }
    }
  }

  private async migrate(all: Record<string, readonly Migration[]>, log: Logger): Promise<void> {
    await this.q.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (module TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (module, version))',
    );
    for (const [module, migrations] of Object.entries(all)) {
      const done = new Set(
        (await this.q.all<{ version: number }>('SELECT version FROM schema_migrations WHERE module = ?', [module])).map(
          (r) => r.version,
        ),
      );
      const sorted = [...migrations].sort((a, b) => a.version - b.version);
      for (const m of sorted) {
        if (done.has(m.version)) continue;
        await this.transaction(async (tx) => {
          await tx.exec(m.up);
          await tx.run('INSERT INTO schema_migrations (module, version, name, applied_at) VALUES (?, ?, ?, ?)', [
            module,
            m.version,
            m.name,
            new Date().toISOString(),
          ]);
        });
        log.info({ module, version: m.version, name: m.name }, 'store migrated');
      }
    }
  }

  /** Run fn alone on the connection (nothing else interleaves). */
  exclusive<T>(fn: (q: Queries) => Promise<T>): Promise<T> {
    const next = this.queue.then(() => {
      if (this.closed) throw new CallboxError(ErrorCode.ShuttingDown, `store ${this.file} is closed`);
      return fn(this.q);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Run fn in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queries) => Promise<T>): Promise<T> {
    return this.exclusive(async (q) => {
      await q.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(q);
        await q.exec('COMMIT');
        return out;
      } catch (e) {
        await q.exec('ROLLBACK').catch(() => undefined);
        throw storeError(e, 'store transaction failed');
      }
    });
  }

  run(sql: string, params?: Params) {
    return this.exclusive((q) => q.run(sql, params)).catch((e) => Promise.reject(storeError(e, 'store write failed')));
  }
  get<T>(sql: string, params?: Params) {
    return this.exclusive((q) => q.get<T>(sql, params)).catch((e) =>
      Promise.reject(storeError(e, 'store read failed')),
    );
  }
  all<T>(sql: string, params?: Params) {
    return this.exclusive((q) => q.all<T>(sql, params)).catch((e) =>
      Promise.reject(storeError(e, 'store read failed')),
    );
  }
  exec(sql: string) {
    return this.exclusive((q) => q.exec(sql)).catch((e) => Promise.reject(storeError(e, 'store write failed')));
  }

  /** Finish queued work, checkpoint the WAL and close. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.exclusive((q) => q.exec('PRAGMA wal_checkpoint(TRUNCATE)')).catch(() => undefined);
    this.closed = true;
    await closeDb(this.db);
  }
}
