/**
 * PostgreSQL store (at scale): a pg Pool; transactions take one client.
 */
import pg from 'pg';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { type Driver, type Row, SqlStore } from './sql-store.js';

/** The advisory lock key that orders event inserts ("cbev" in ASCII). */
const EVENT_INSERT_LOCK = 0x63626576;

export class PgDriver implements Driver {
  constructor(private readonly pool: pg.Pool) {}

  /** A pool of `max` connections, tried once (StoreUnavailable naming the URL without its password). */
  static async open(url: string, max: number): Promise<PgDriver> {
    const pool = new pg.Pool({ connectionString: url, max });
    pool.on('error', () => undefined); // an idle client's error surfaces on the next query
    try {
      const c = await pool.connect();
      c.release();
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw new CallboxError(
        ErrorCode.StoreUnavailable,
        `cannot connect to PostgreSQL at ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${(e as Error).message}; ` +
          'check store.postgresUrl (CALLBOX_FLEET__STORE__POSTGRES_URL)',
      );
    }
    return new PgDriver(pool);
  }

  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    const res = await this.pool.query(sql, params);
    return res.rows as Row[];
  }

  async transaction<T>(fn: (q: (sql: string, params?: unknown[]) => Promise<Row[]>) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(async (sql, params) => (await client.query(sql, params ?? [])).rows as Row[]);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  isUniqueViolation(e: unknown): boolean {
    return (e as { code?: string })?.code === '23505';
  }

  uniqueConstraint(e: unknown): string | undefined {
    return this.isUniqueViolation(e) ? ((e as { constraint?: string }).constraint ?? 'unknown') : undefined;
  }
}

export class PostgresStore extends SqlStore {
  readonly kind = 'postgres' as const;
  protected readonly db: Driver;

  private constructor(db: PgDriver) {
    super();
    this.db = db;
  }

  /**
   * Positions come from a sequence, taken as each row is written; two transactions could commit out of
   * that order and a cursor reader would step over the one committing late. One transaction-scoped
   * advisory lock around every event insert (held until COMMIT, released after the rows are visible)
   * hands positions out in commit order. Inserts are whole batches, so the lock is taken once per batch.
   */
  protected override eventInsertLock(): string {
    return `SELECT pg_advisory_xact_lock(${EVENT_INSERT_LOCK})`;
  }

  protected override cast(param: string, type: 'json' | 'ts' | 'bool'): string {
    return `${param}::${type === 'json' ? 'jsonb' : type === 'ts' ? 'timestamptz' : 'boolean'}`;
  }

  static async open(url: string, opts: { max?: number } = {}): Promise<PostgresStore> {
    return new PostgresStore(await PgDriver.open(url, opts.max ?? 10));
  }
}
