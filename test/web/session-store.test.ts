/**
 * Web sessions in the fleet store (fleet/store/web-sessions.ts, migration 6) on SQLite and PostgreSQL
 * alike: made, read, touched, revoked one by one and per user, purged when ended; a clinic user's clinic
 * kept on the ops user; migration 6 undone and applied again. And the web server's taken-port error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PostgresStore } from '../../fleet/store/postgres.js';
import type { SqlStore } from '../../fleet/store/sql-store.js';
import { SqliteStore } from '../../fleet/store/sqlite.js';
import { type WebSession, WebSessionStore } from '../../fleet/store/web-sessions.js';
import { webFeature } from '../../fleet/web/server.js';
import { startTestFleet } from '../helpers/fleet.js';
import { createTestDatabase } from '../helpers/postgres.js';

const opens: [string, () => Promise<{ store: SqlStore; cleanup: () => Promise<void> }>][] = [
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'web-sessions-'));
      const store = await SqliteStore.open(join(dir, 'fleet.db'));
      await store.migrate();
      return {
        store,
        cleanup: async () => {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
  [
    'postgres',
    async () => {
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
    },
  ],
];

const session = (idHash: string, user: string, at: number, expiresAt: number): WebSession => ({
  idHash,
  user,
  csrfSecret: `secret-${idHash}`,
  createdAt: new Date(at).toISOString(),
  lastSeenAt: new Date(at).toISOString(),
  expiresAt: new Date(expiresAt).toISOString(),
  ip: '127.0.0.1',
  userAgent: null,
});

describe.each(opens)('web sessions on %s', (_name, open) => {
  it('keeps, touches, revokes and purges sessions; keeps a clinic user’s clinic; migrates down and up', async () => {
    const { store, cleanup } = await open();
    try {
      const clinic = await store.createClinic({
        organisationId: null,
        name: 'North',
        timezone: 'UTC',
        phoneNumbers: [],
        answeringService: null,
        contacts: [],
      });
      await store.createOpsUser({ name: 'nora', role: 'clinic', clinicId: clinic.id });
      await store.createOpsUser({ name: 'alice', role: 'admin' });
      expect(await store.getOpsUser('nora')).toMatchObject({ role: 'clinic', clinicId: clinic.id });
      expect(await store.getOpsUser('alice')).toMatchObject({ role: 'admin', clinicId: null });
      const s = new WebSessionStore(store);
      const t0 = Date.parse('2026-12-01T10:00:00.000Z');
      await s.create(session('h1', 'nora', t0, t0 + 3_600_000));
      await s.create(session('h2', 'nora', t0, t0 + 3_600_000));
      await s.create(session('h3', 'alice', t0, t0 + 60_000));
      expect(await s.get('h1')).toMatchObject({
        user: 'nora',
        csrfSecret: 'secret-h1',
        expiresAt: '2026-12-01T11:00:00.000Z',
      });
      await s.touch('h1', '2026-12-01T10:30:00.000Z');
      expect((await s.get('h1'))?.lastSeenAt).toBe('2026-12-01T10:30:00.000Z');
      expect(await s.revoke('h2')).toBe(true);
      expect(await s.revoke('h2')).toBe(false);
      // Purge at 10:40 with a 20 min idle time: h3 expired (10:01), h1 was seen at 10:30 and stays.
      expect(await s.purge('2026-12-01T10:40:00.000Z', '2026-12-01T10:20:00.000Z')).toBe(1);
      expect(await s.get('h3')).toBeUndefined();
      expect(await s.revokeUser('nora')).toBe(1);
      expect(await s.listOf('nora')).toEqual([]);
      await store.migrateDown(5);
      await store.migrate();
      expect(await store.getOpsUser('nora')).toMatchObject({ role: 'clinic', clinicId: null });
    } finally {
      await cleanup();
    }
  });
});

describe('the web server port', () => {
  it('stops the start with a clear error naming http.port when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(startTestFleet({ http: { port } }, { features: [webFeature()] })).rejects.toThrow(
        new RegExp(`127\\.0\\.0\\.1:${port}: the port is in use.*http\\.port`),
      );
    } finally {
      taken.close();
    }
  });
});
