/**
 * The one migration runner (fleet/store/migrate.ts), shared by the fleet store and the alert store on
 * one connection per store, on SQLite and PostgreSQL:
 * - databases made by the code before it (fixtures dumped from databases that code built:
 *   test/fixtures/legacy-stores, the alert tables then in a SQLite file of their own) are read with
 *   their version bookkeeping as it is, nothing is applied twice, and their data is kept;
 * - a migration that fails leaves the schema and the bookkeeping as they were;
 * - two connections migrating at once apply each migration once.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import sqlite3 from 'sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { alertsSqlitePath, openAlertStore } from '../fleet/alerts/index.js';
import { SqlAlertStore } from '../fleet/alerts/store.js';
import type { AlertStore } from '../fleet/alerts/types.js';
import { type Migration, MigrationRunner } from '../fleet/store/migrate.js';
import { LATEST_VERSION, MIGRATIONS } from '../fleet/store/migrations.js';
import { PgDriver, PostgresStore } from '../fleet/store/postgres.js';
import type { Driver, SqlStore } from '../fleet/store/sql-store.js';
import { SqliteDriver, SqliteStore } from '../fleet/store/sqlite.js';
import { createTestDatabase } from './helpers/postgres.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'legacy-stores');
const LEGACY = {
  alertId: '01a24993-8299-76ca-9423-a6ca20c2a49d',
  clinicId: '01a24993-8298-73d8-bfe0-05b2d8000f36',
  pgAlertId: '01a24993-8578-706f-9eb3-0f1781204d56',
  pgClinicId: '01a24993-856a-7309-998d-381cbef53590',
};

function sqliteExec(file: string, sql: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (err) => {
      if (err) return reject(err);
      db.exec(sql, (e) => db.close(() => (e ? reject(e) : resolve())));
    });
  });
}

async function pgExec(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function pgDatabase(): Promise<string> {
  const db = await createTestDatabase();
  cleanups.push(db.drop);
  return db.url;
}

/** Version rows as stored, to see that nothing was applied (or stamped) again. */
async function bookkeeping(store: SqlStore, table: string): Promise<{ version: number; applied_at: string }[]> {
  const rows = await store.connection().driver.query(`SELECT version, applied_at FROM ${table} ORDER BY version`);
  return rows.map((r) => ({ version: Number(r.version), applied_at: String(r.applied_at) }));
}

async function expectLegacyData(alerts: AlertStore, alertId: string, clinicId: string): Promise<void> {
  const alert = await alerts.getAlert(alertId);
  expect(alert?.text).toBe('PANIC at Old Town');
  expect(alert?.details).toEqual({ panicId: 'p1' });
  expect((await alerts.listDeliveries(alertId)).map((d) => d.dedupKey)).toEqual([`${alertId}:0:0:sms:alice`]);
  expect((await alerts.listLog(alertId)).map((l) => l.action)).toEqual(['opened']);
  expect((await alerts.getClinicSettings(clinicId))?.ackTimeoutMin).toBe(45);
  expect((await alerts.listPending()).map((p) => p.key)).toEqual(['offline:cb-legacy']);
  expect((await alerts.getRollover(clinicId))?.reason).toBe('legacy');
  // The event that opened it is still known: reading it again counts nothing.
  expect(await alerts.addOccurrence(alertId, '2026-11-01T10:01:00.000Z', 'ev-legacy-1')).toMatchObject({
    occurrences: 1,
  });
  // New rows continue after the old ones.
  const d = await alerts.recordDelivery({
    alertId,
    epoch: 0,
    step: 1,
    channel: 'email',
    target: 'alice',
    dedupKey: `${alertId}:0:1:email:alice`,
    attempt: 1,
    status: 'sent',
    error: null,
    detail: null,
    at: '2026-11-01T10:02:00.000Z',
  });
  expect(d.id).toBeGreaterThan(1);
}

describe('databases made before the one migration runner', () => {
  it('SQLite: reads both bookkeeping tables as they are and copies the old alert file in once', async () => {
    const dir = tempDir();
    const fleetFile = join(dir, 'fleet.db');
    const legacyAlerts = alertsSqlitePath(fleetFile);
    await sqliteExec(fleetFile, readFileSync(join(FIXTURES, 'fleet.sqlite.sql'), 'utf8'));
    await sqliteExec(legacyAlerts, readFileSync(join(FIXTURES, 'fleet-alerts.sqlite.sql'), 'utf8'));

    const store = await SqliteStore.open(fleetFile);
    cleanups.push(() => store.close());
    const before = await bookkeeping(store, 'schema_migrations');
    expect(before.map((r) => r.version)).toEqual([1, 2, 3]);
    await store.migrate();
    // Versions 1-3 as they were; only the migrations made since (if any) are applied.
    const after = await bookkeeping(store, 'schema_migrations');
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await store.schemaVersion()).toBe(LATEST_VERSION);
    expect((await store.getClinic(LEGACY.clinicId))?.name).toBe('Old Town');

    const alerts = await openAlertStore(store, {
      kind: 'sqlite',
      sqlitePath: fleetFile,
      postgresUrl: '',
      keyFile: null,
    });
    expect(await alerts.schemaVersion()).toBe(3);
    await expectLegacyData(alerts, LEGACY.alertId, LEGACY.clinicId);
    expect(existsSync(legacyAlerts)).toBe(false);
    expect(existsSync(`${legacyAlerts}.imported`)).toBe(true);

    // The old file's bookkeeping was read as it is: its versions are not applied again in the new file,
    // and opening again (no old file any more) changes nothing.
    const again = await openAlertStore(store, {
      kind: 'sqlite',
      sqlitePath: fleetFile,
      postgresUrl: '',
      keyFile: null,
    });
    expect((await again.listDeliveries(LEGACY.alertId)).length).toBe(2);
    expect((await again.listAlerts({})).length).toBe(1);
  });

  it('SQLite: an old alert file opened on its own is migrated in place, its versions read as they are', async () => {
    const dir = tempDir();
    const file = join(dir, 'fleet-alerts.db');
    await sqliteExec(file, readFileSync(join(FIXTURES, 'fleet-alerts.sqlite.sql'), 'utf8'));
    const alerts = await SqlAlertStore.openSqlite(file);
    cleanups.push(() => alerts.close());
    await alerts.migrate(); // would fail with "table alerts already exists" if version 1 were applied again
    expect(await alerts.schemaVersion()).toBe(3);
    await expectLegacyData(alerts, LEGACY.alertId, LEGACY.clinicId);
  });

  it("PostgreSQL: reads schema_migrations and the alert store's alert_schema_migrations (no name column) as they are", async () => {
    const url = await pgDatabase();
    await pgExec(url, readFileSync(join(FIXTURES, 'fleet.postgres.sql'), 'utf8'));
    const store = await PostgresStore.open(url, { max: 3 });
    cleanups.push(() => store.close());
    const fleetBefore = await bookkeeping(store, 'schema_migrations');
    const alertsBefore = await bookkeeping(store, 'alert_schema_migrations');
    expect(fleetBefore.map((r) => r.version)).toEqual([1, 2, 3]);
    expect(alertsBefore.map((r) => r.version)).toEqual([1, 2]);

    await store.migrate();
    const alerts = await openAlertStore(store, { kind: 'postgres', sqlitePath: '', postgresUrl: url, keyFile: null });
    const fleetAfter = await bookkeeping(store, 'schema_migrations');
    expect(fleetAfter.slice(0, fleetBefore.length)).toEqual(fleetBefore);
    expect(fleetAfter.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect((await bookkeeping(store, 'alert_schema_migrations')).slice(0, alertsBefore.length)).toEqual(alertsBefore);
    expect(await alerts.schemaVersion()).toBe(3);
    expect((await store.getClinic(LEGACY.pgClinicId))?.name).toBe('Old Town');
    await expectLegacyData(alerts, LEGACY.pgAlertId, LEGACY.pgClinicId);
    // One pool: the alert store runs on the fleet store's connection.
    expect(await alerts.close()).toBeUndefined();
    expect((await store.getClinic(LEGACY.pgClinicId))?.name).toBe('Old Town');
  });
});

const failing = (version: number): Migration => ({
  version,
  name: 'breaks half way',
  up: () => [
    'ALTER TABLE events ADD COLUMN half_way TEXT',
    'CREATE TABLE half_way (id INTEGER PRIMARY KEY)',
    'INSERT INTO no_such_table VALUES (1)',
  ],
  down: () => ['DROP TABLE half_way', 'ALTER TABLE events DROP COLUMN half_way'],
});

async function tables(driver: Driver, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  const rows =
    dialect === 'sqlite'
      ? await driver.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      : await driver.query(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
        );
  return rows.map((r) => String(r.name));
}

async function eventColumns(driver: Driver, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  const rows =
    dialect === 'sqlite'
      ? await driver.query("SELECT name FROM pragma_table_info('events') ORDER BY name")
      : await driver.query(
          "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'events' ORDER BY column_name",
        );
  return rows.map((r) => String(r.name));
}

describe.each(['sqlite', 'postgres'] as const)('the migration runner on %s', (dialect) => {
  async function open(): Promise<{ driver: Driver; url: string; file: string }> {
    if (dialect === 'sqlite') {
      const file = join(tempDir(), 'fleet.db');
      const driver = await SqliteDriver.open(file, 'the test database');
      cleanups.push(() => driver.close());
      return { driver, url: '', file };
    }
    const url = await pgDatabase();
    const driver = await PgDriver.open(url, 3);
    cleanups.push(() => driver.close());
    return { driver, url, file: '' };
  }

  it('rolls a failing migration back whole: schema and bookkeeping as they were, and applies it once fixed', async () => {
    const { driver } = await open();
    const ok = new MigrationRunner(driver, dialect, { table: 'schema_migrations', migrations: MIGRATIONS });
    await ok.up();
    const tablesBefore = await tables(driver, dialect);
    const columnsBefore = await eventColumns(driver, dialect);

    const broken = new MigrationRunner(driver, dialect, {
      table: 'schema_migrations',
      migrations: [...MIGRATIONS, failing(LATEST_VERSION + 1)],
    });
    await expect(broken.up()).rejects.toThrow(/no_such_table/);
    expect(await broken.version()).toBe(LATEST_VERSION);
    expect(await tables(driver, dialect)).toEqual(tablesBefore);
    expect(await eventColumns(driver, dialect)).toEqual(columnsBefore);

    const fixed: Migration = {
      ...failing(LATEST_VERSION + 1),
      up: () => ['ALTER TABLE events ADD COLUMN half_way TEXT', 'CREATE TABLE half_way (id INTEGER PRIMARY KEY)'],
    };
    const runner = new MigrationRunner(driver, dialect, {
      table: 'schema_migrations',
      migrations: [...MIGRATIONS, fixed],
    });
    expect(await runner.up()).toEqual([LATEST_VERSION + 1]);
    expect(await tables(driver, dialect)).toContain('half_way');
    expect(await runner.down(LATEST_VERSION)).toEqual([LATEST_VERSION + 1]);
    expect(await tables(driver, dialect)).toEqual(tablesBefore);
    expect(await eventColumns(driver, dialect)).toEqual(columnsBefore);
  });

  it('keeps the fleet store and the alert store apart: each its own bookkeeping, one connection', async () => {
    const { file, url } = await open();
    const store = dialect === 'sqlite' ? await SqliteStore.open(file) : await PostgresStore.open(url, { max: 3 });
    cleanups.push(() => store.close());
    await store.migrate();
    const alerts = SqlAlertStore.over(store);
    await alerts.migrate();
    expect(await store.schemaVersion()).toBe(LATEST_VERSION);
    expect(await alerts.schemaVersion()).toBe(3);
    await alerts.migrateDown(0);
    expect(await alerts.schemaVersion()).toBe(0);
    expect(await store.schemaVersion()).toBe(LATEST_VERSION);
    expect(await tables(store.connection().driver, dialect)).not.toContain('alerts');
    await alerts.migrate();
    expect(await alerts.schemaVersion()).toBe(3);
  });

  it('applies each migration once when two connections migrate at the same time', async () => {
    const { driver, url, file } = await open();
    const second =
      dialect === 'sqlite' ? await SqliteDriver.open(file, 'the test database') : await PgDriver.open(url, 3);
    cleanups.push(() => second.close());
    const set = { table: 'schema_migrations', migrations: MIGRATIONS };
    const [a, b] = await Promise.all([
      new MigrationRunner(driver, dialect, set).up(),
      new MigrationRunner(second, dialect, set).up(),
    ]);
    expect([...a, ...b].sort()).toEqual(MIGRATIONS.map((m) => m.version));
    const rows = await driver.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
  });
});
