/**
 * SQLite store (the default): one connection in WAL mode. Transactions are
 * serialised by a promise chain so that statements of one transaction never
 * interleave with another caller's (node-sqlite3 has one connection).
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import sqlite3 from 'sqlite3';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { type Driver, type Row, SqlStore } from './sql-store.js';

function toSqlite(sql: string): string {
  return sql.replace(/\$(\d+)/g, '?$1');
}

class SqliteDriver implements Driver {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly db: sqlite3.Database) {}

  private raw(sql: string, params: unknown[] = []): Promise<Row[]> {
    return new Promise((resolve, reject) => {
      this.db.all(toSqlite(sql), params, (err, rows) => (err ? reject(err) : resolve(rows as Row[])));
    });
  }

  /** Statements outside transactions wait for a running transaction to end. */
  query(sql: string, params: unknown[] = []): Promise<Row[]> {
    const run = this.chain.then(() => this.raw(sql, params));
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
}

export class SqliteStore extends SqlStore {
  readonly kind = 'sqlite' as const;
  protected readonly db: Driver;

  private constructor(db: sqlite3.Database) {
    super();
    this.db = new SqliteDriver(db);
  }

  /** Open (creating the file and its folder) and configure; call migrate() next. */
  static async open(path: string): Promise<SqliteStore> {
    const db = await openSqliteFile(
      path,
      'the fleet database',
      'set store.sqlitePath (CALLBOX_FLEET__STORE__SQLITE_PATH) to a writable place',
    );
    const store = new SqliteStore(db);
    await store.db.query('PRAGMA journal_mode = WAL');
    await store.db.query('PRAGMA synchronous = NORMAL');
    await store.db.query('PRAGMA busy_timeout = 5000');
    await store.db.query('PRAGMA foreign_keys = ON');
    return store;
  }
}

/**
 * Open a SQLite file, creating its folder; errors are StoreUnavailable naming
 * `what` and the path (and `hint`: how to fix it). Pragmas are the caller's.
 */
export async function openSqliteFile(path: string, what: string, hint?: string): Promise<sqlite3.Database> {
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
