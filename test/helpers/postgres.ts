/** A uniquely named PostgreSQL database on the machine's server, dropped after the test. */
import pg from 'pg';

export const PG_BASE = process.env.CALLBOX_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432';

export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `callbox_test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: `${PG_BASE}/${name}`,
    drop: async () => {
      const c = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
