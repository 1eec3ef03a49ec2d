import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqlAlertStore } from '../fleet/alerts/store.js';
import { alertStoreConformance } from './helpers/alert-store-conformance.js';
import { createTestDatabase } from './helpers/postgres.js';

alertStoreConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alert-store-'));
  const store = await SqlAlertStore.openSqlite(join(dir, 'fleet.db'));
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

alertStoreConformance('postgres', async () => {
  const db = await createTestDatabase();
  const store = await SqlAlertStore.openPostgres(db.url);
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      await db.drop();
    },
  };
});
