/**
 * The one migration runner of the fleet: the fleet store (`schema_migrations`)
 * and the alert store (`alert_schema_migrations`) each keep a list of paired
 * up/down migrations and a bookkeeping table of the versions applied, and
 * apply them through this runner on their one connection (pool).
 *
 * Each migration and its version row are one transaction: a migration that
 * fails leaves the schema and the bookkeeping as they were (SQLite and
 * PostgreSQL both roll DDL back). The version is read again inside that
 * transaction, under the database's write lock (SQLite BEGIN IMMEDIATE) or
 * an advisory lock per bookkeeping table (PostgreSQL), so two fleet
 * instances starting together apply each migration once.
 *
 * Bookkeeping: (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT).
 * Tables made before this runner are read as they are; the alert store's
 * had no `name` column, which is added (NULL for the versions already there).
 */
import type { Driver, Row } from './sql-store.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Types {
  dialect: Dialect;
  ts: string;
  json: string;
  bool: string;
  autoId: string;
  /** The current time as an expression of the dialect (the same ISO form the stores write). */
  now: string;
}

const TYPES: Record<Dialect, Types> = {
  sqlite: {
    dialect: 'sqlite',
    ts: 'TEXT',
    json: 'TEXT',
    bool: 'INTEGER',
    autoId: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
  },
  postgres: {
    dialect: 'postgres',
    ts: 'TIMESTAMPTZ',
    json: 'JSONB',
    bool: 'BOOLEAN',
    autoId: 'BIGSERIAL PRIMARY KEY',
    now: 'now()',
  },
};

export interface Migration {
  version: number;
  name: string;
  up: (t: Types) => string[];
  down: (t: Types) => string[];
}

export interface MigrationSet {
  /** The bookkeeping table (one per store). */
  table: string;
  migrations: readonly Migration[];
}

type Query = (sql: string, params?: unknown[]) => Promise<Row[]>;

const TABLE_NAME = /^[a-z_][a-z0-9_]*$/;

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

/** Runs one store's migrations on that store's connection. */
export class MigrationRunner {
  private ensured = false;

  constructor(
    private readonly db: Driver,
    private readonly dialect: Dialect,
    private readonly set: MigrationSet,
  ) {
    if (!TABLE_NAME.test(set.table)) throw new Error(`migration table name ${set.table} is not a plain SQL name`);
    const versions = set.migrations.map((m) => m.version);
    if (versions.some((v, i) => i > 0 && v <= (versions[i - 1] ?? 0))) {
      throw new Error(`migrations of ${set.table} must have increasing versions: ${versions.join(', ')}`);
    }
  }

  /** The newest version in the list. */
  get latest(): number {
    return this.set.migrations[this.set.migrations.length - 1]?.version ?? 0;
  }

  /** In a transaction: take the migration lock of this bookkeeping table (PostgreSQL; SQLite holds its write lock). */
  private async lock(q: Query): Promise<void> {
    if (this.dialect === 'postgres') await q('SELECT pg_advisory_xact_lock(hashtext($1))', [this.set.table]);
  }

  private async ensureTable(): Promise<void> {
    if (this.ensured) return;
    const t = this.set.table;
    await this.db.transaction(async (q) => {
      await this.lock(q);
      await q(`CREATE TABLE IF NOT EXISTS ${t} (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT NOT NULL)`);
      const cols =
        this.dialect === 'sqlite'
          ? await q(`SELECT name AS column_name FROM pragma_table_info('${t}')`)
          : await q(
              'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
              [t],
            );
      // Made before the one runner (the alert store's): no name column.
      if (!cols.some((c) => c.column_name === 'name')) await q(`ALTER TABLE ${t} ADD COLUMN name TEXT`);
    });
    this.ensured = true;
  }

  private async current(q: Query): Promise<number> {
    const rows = await q(`SELECT MAX(version) AS v FROM ${this.set.table}`);
    return rows[0]?.v === null || rows[0]?.v === undefined ? 0 : num(rows[0].v);
  }

  /** The highest version applied (0: none). */
  async version(): Promise<number> {
    await this.ensureTable();
    return this.current((sql, params) => this.db.query(sql, params));
  }

  /** Apply every migration not applied yet, each in its own transaction with its version row. */
  async up(): Promise<number[]> {
    await this.ensureTable();
    const applied: number[] = [];
    const t = TYPES[this.dialect];
    for (const m of this.set.migrations) {
      const done = await this.db.transaction(async (q) => {
        await this.lock(q);
        if ((await this.current(q)) >= m.version) return false;
        for (const sql of m.up(t)) await q(sql);
        await q(`INSERT INTO ${this.set.table} (version, name, applied_at) VALUES ($1, $2, $3)`, [
          m.version,
          m.name,
          new Date().toISOString(),
        ]);
        return true;
      });
      if (done) applied.push(m.version);
    }
    return applied;
  }

  /** Undo migrations above `version`, newest first, each in its own transaction with its version row. */
  async down(version: number): Promise<number[]> {
    await this.ensureTable();
    const undone: number[] = [];
    const t = TYPES[this.dialect];
    for (const m of [...this.set.migrations].reverse()) {
      if (m.version <= version) break;
      const done = await this.db.transaction(async (q) => {
        await this.lock(q);
        const has = await q(`SELECT version FROM ${this.set.table} WHERE version = $1`, [m.version]);
        if (has.length === 0) return false;
        for (const sql of m.down(t)) await q(sql);
        await q(`DELETE FROM ${this.set.table} WHERE version = $1`, [m.version]);
        return true;
      });
      if (done) undone.push(m.version);
    }
    return undone;
  }
}
