import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeConformance } from '../fleet/store/conformance.js';
import { PostgresStore } from '../fleet/store/postgres.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { createTestDatabase } from './helpers/postgres.js';

storeConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-store-'));
  const store = await SqliteStore.open(join(dir, 'fleet.db'));
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

storeConformance('postgres', async () => {
  const db = await createTestDatabase();
  const store = await PostgresStore.open(db.url);
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      await db.drop();
    },
  };
});
