import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PostgresStore } from '../fleet/store/postgres.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { createTestDatabase } from './helpers/postgres.js';
import { storeConformance } from './helpers/store-conformance.js';

storeConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-store-'));
  const store = await SqliteStore.open(join(dir, 'fleet.db'));
  await store.migrate();
  return {
    store,
    another: () => SqliteStore.open(join(dir, 'fleet.db')),
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
    another: () => PostgresStore.open(db.url),
    cleanup: async () => {
      await store.close();
      await db.drop();
    },
  };
});

describe('the fleet on PostgreSQL', () => {
  it('provisions a box and stores its events in PostgreSQL', async () => {
    const db = await createTestDatabase();
    const { startTestFleet, provisionBox, connectClient } = await import('./helpers/fleet.js');
    const { sampleEvent } = await import('./helpers/store-conformance.js');
    const { deviceTopics } = await import('../shared/contract/topics.js');
    const tf = await startTestFleet({ store: { kind: 'postgres', postgresUrl: db.url } });
    try {
      expect(tf.fleet.store.kind).toBe('postgres');
      const box = await provisionBox(tf, 'PG-0001');
      const c = await connectClient(tf.url, box);
      await c.publishAsync(deviceTopics(box.deviceId).events, JSON.stringify(sampleEvent(box.deviceId, 1)), { qos: 1 });
      await expect.poll(() => tf.fleet.store.countEvents({ deviceId: box.deviceId })).toBe(1);
      c.end(true);
      const shown = await tf.admin.call('boxes.show', { box: 'PG-0001' });
      expect(shown).toMatchObject({ eventCount: 1, box: { claimState: 'approved' } });
    } finally {
      await tf.close();
      await db.drop();
    }
  });
});
