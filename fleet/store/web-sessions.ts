/**
 * Sign-in sessions of the HTTP API and dashboard (fleet/web), in the fleet
 * store's database (table web_sessions, fleet migration 6) on its
 * connection, for SQLite and PostgreSQL alike. The session id itself is
 * never stored: only its SHA-256 (a stolen database copy opens no
 * session). A session ends at its absolute expiry, after an idle time, or
 * when revoked (deleted: sign-out, a user disabled, an admin's revocation).
 */
import type { Driver, Row, SqlStore } from './sql-store.js';

export interface WebSession {
  idHash: string;
  user: string;
  /** The secret behind the session's CSRF tokens (@fastify/csrf-protection). */
  csrfSecret: string;
  createdAt: string;
  lastSeenAt: string;
  /** The absolute expiry. */
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
}

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : String(v);
}

function toSession(r: Row): WebSession {
  return {
    idHash: String(r.id_hash),
    user: String(r.user_name),
    csrfSecret: String(r.csrf_secret),
    createdAt: iso(r.created_at),
    lastSeenAt: iso(r.last_seen_at),
    expiresAt: iso(r.expires_at),
    ip: r.ip === null || r.ip === undefined ? null : String(r.ip),
    userAgent: r.user_agent === null || r.user_agent === undefined ? null : String(r.user_agent),
  };
}

export class WebSessionStore {
  private readonly db: Driver;

  constructor(store: Pick<SqlStore, 'connection'>) {
    this.db = store.connection().driver;
  }

  async create(s: WebSession): Promise<void> {
    await this.db.query(
      `INSERT INTO web_sessions (id_hash, user_name, csrf_secret, created_at, last_seen_at, expires_at, ip, user_agent)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [s.idHash, s.user, s.csrfSecret, s.createdAt, s.lastSeenAt, s.expiresAt, s.ip, s.userAgent],
    );
  }

  async get(idHash: string): Promise<WebSession | undefined> {
    const rows = await this.db.query('SELECT * FROM web_sessions WHERE id_hash = $1', [idHash]);
    return rows[0] ? toSession(rows[0]) : undefined;
  }

  async touch(idHash: string, at: string): Promise<void> {
    await this.db.query('UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1', [idHash, at]);
  }

  /** End one session; false if there was none. */
  async revoke(idHash: string): Promise<boolean> {
    const rows = await this.db.query('DELETE FROM web_sessions WHERE id_hash = $1 RETURNING id_hash', [idHash]);
    return rows.length > 0;
  }

  /** End every session of a user; how many. */
  async revokeUser(user: string): Promise<number> {
    const rows = await this.db.query('DELETE FROM web_sessions WHERE user_name = $1 RETURNING id_hash', [user]);
    return rows.length;
  }

  /** Forget sessions past their absolute expiry or idle since before `idleBefore`. */
  async purge(now: string, idleBefore: string): Promise<number> {
    const rows = await this.db.query(
      'DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2 RETURNING id_hash',
      [now, idleBefore],
    );
    return rows.length;
  }

  async listOf(user: string): Promise<WebSession[]> {
    const rows = await this.db.query('SELECT * FROM web_sessions WHERE user_name = $1 ORDER BY created_at', [user]);
    return rows.map(toSession);
  }
}
