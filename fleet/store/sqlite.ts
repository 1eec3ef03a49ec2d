/**
 * SQLite store (the default): one connection in WAL mode, shared with the
 * alert store (its tables are in the same file). Transactions are
 * serialised by a promise chain so that statements of one transaction never
 * interleave with another caller's (node-sqlite3 has one connection); one
 * statement at a time also keeps node-sqlite3 from parking libuv pool
 * threads on this connection's mutex.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import sqlite3 from 'sqlite3';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { type Driver, type Row, SqlStore } from './sql-store.js';

function toSqlite(sql: string): string {
  return sql.replace(/\$(\d+)/g, '?$1');
}

export class SqliteDriver implements Driver {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly db: sqlite3.Database) {}

  /** Open a file (see openSqliteFile) and set WAL, synchronous NORMAL, a busy timeout and foreign keys. */
  static async open(path: string, what: string, hint?: string): Promise<SqliteDriver> {
    const driver = new SqliteDriver(await openSqliteFile(path, what, hint));
    await driver.query('PRAGMA journal_mode = WAL');
    await driver.query('PRAGMA synchronous = NORMAL');
    await driver.query('PRAGMA busy_timeout = 5000');
    await driver.query('PRAGMA foreign_keys = ON');
    return driver;
  }

  private raw(sql: string, params: unknown[] = []): Promise<Row[]> {
    return new Promise((resolve, reject) => {
      this.db.all(toSqlite(sql), params, (err, rows) => (err ? reject(err) : resolve(rows as Row[])));
    });
  }

  /**
   * A statement on its own (its own transaction). Another connection to the file (a second fleet
   * instance) can make WAL answer SQLITE_BUSY at once, past busy_timeout (a snapshot that cannot be
   * upgraded): the statement did nothing then, so it is tried again.
   */
  private async single(sql: string, params: unknown[]): Promise<Row[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.raw(sql, params);
      } catch (e) {
        if ((e as { code?: string }).code !== 'SQLITE_BUSY' || attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, Math.min(500, 5 * 2 ** attempt) * (0.5 + Math.random())));
      }
    }
  }

  /** Statements outside transactions wait for a running transaction to end. */
  query(sql: string, params: unknown[] = []): Promise<Row[]> {
    const run = this.chain.then(() => this.single(sql, params));
    this.chain = run.catch(() => undefined);
    return run;
  }

  transaction<T>(fn: (q: (sql: string, params?: unknown[]) => Promise<Row[]>) => Promise<T>): Promise<T> {
    const run = this.chain.then(async () => {
      await this.raw('BEGIN IMMEDIATE');
      try {
        const out = await fn((sql, params) => this.raw(sql, params));
        await this.raw('COMMIT');
        return out;
      } catch (e) {
        await this.raw('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    return this.chain.then(
      () => new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve()))),
    );
  }

  isUniqueViolation(e: unknown): boolean {
    const err = e as { code?: string; message?: string };
    return err?.code === 'SQLITE_CONSTRAINT' && /UNIQUE|PRIMARY KEY/.test(err.message ?? '');
  }

  uniqueConstraint(e: unknown): string | undefined {
    if (!this.isUniqueViolation(e)) return undefined;
    // "SQLITE_CONSTRAINT: UNIQUE constraint failed: alerts.clinic_id, alerts.condition"
    return /failed: (.*)$/.exec((e as Error).message)?.[1] ?? 'unknown';
  }
}

export class SqliteStore extends SqlStore {
  readonly kind = 'sqlite' as const;
  protected readonly db: Driver;

  private constructor(db: SqliteDriver) {
    super();
    this.db = db;
  }

  /** Open (creating the file and its folder) and configure; call migrate() next. */
  static async open(path: string): Promise<SqliteStore> {
    return new SqliteStore(
      await SqliteDriver.open(
        path,
        'the fleet database',
        'set store.sqlitePath (CALLBOX_FLEET__STORE__SQLITE_PATH) to a writable place',
      ),
    );
  }
}

/**
 * Open a SQLite file, creating its folder; errors are StoreUnavailable naming
 * `what` and the path (and `hint`: how to fix it). Pragmas are the caller's.
 */
async function openSqliteFile(path: string, what: string, hint?: string): Promise<sqlite3.Database> {
  if (path !== ':memory:') {
    try {
      // Patient data: the folder 0700 and the file 0600 (SQLite gives its -wal and -shm files the file's mode).
      const dir = dirname(path);
      if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
      closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
    } catch (e) {
      throw new CallboxError(
        ErrorCode.StoreUnavailable,
        `cannot create the folder of ${what} ${path}: ${(e as Error).message}${hint ? `; ${hint}` : ''}`,
      );
    }
  }
  return new Promise<sqlite3.Database>((resolve, reject) => {
    const d = new sqlite3.Database(path, (err) =>
      err
        ? reject(new CallboxError(ErrorCode.StoreUnavailable, `cannot open ${what} ${path}: ${err.message}`))
        : resolve(d),
    );
  });
}
