/**
 * Before the alert store ran on the fleet store's connection, its SQLite
 * tables were in a file of their own beside the fleet's (fleet-alerts.db
 * beside fleet.db, index.ts alertsSqlitePath). At start that file is copied
 * into the fleet's database once and renamed `<path>.imported`. Rows
 * already there are kept (INSERT OR IGNORE by primary key), so a copy cut
 * short is simply done again at the next start.
 */
import { existsSync, renameSync } from 'node:fs';
import type { Driver } from '../store/sql-store.js';
import { ALERT_TABLES } from './migrations.js';

/** Copy the alert tables of the SQLite file at `path` into the database of `db` (migrated). Returns the rows copied. */
export async function importLegacyAlertFile(db: Driver, path: string): Promise<number> {
  if (path === ':memory:' || !existsSync(path)) return 0;
  await db.query('ATTACH DATABASE $1 AS legacy', [path]);
  let copied = 0;
  try {
    const have = new Set(
      (await db.query("SELECT name FROM legacy.sqlite_master WHERE type = 'table'")).map((r) => String(r.name)),
    );
    if (have.has('alert_schema_migrations')) {
      copied = await db.transaction(async (q) => {
        let n = 0;
        for (const table of ALERT_TABLES) {
          if (!have.has(table)) continue;
          const cols = (await q(`SELECT name FROM pragma_table_info('${table}', 'legacy')`)).map((r) => String(r.name));
          const list = cols.join(', ');
          const rows = await q(
            `INSERT OR IGNORE INTO main.${table} (${list}) SELECT ${list} FROM legacy.${table} RETURNING 1 AS x`,
          );
          n += rows.length;
        }
        return n;
      });
    }
  } finally {
    await db.query('DETACH DATABASE legacy');
  }
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, `${path}.imported${suffix}`);
  }
  return copied;
}
