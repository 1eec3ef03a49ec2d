/** Open the store the configuration names and bring its schema up to date. */
import type { FleetConfig } from '../config.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { Store } from './types.js';

export async function openStore(cfg: FleetConfig['store']): Promise<Store> {
  const store =
    cfg.kind === 'postgres' ? await PostgresStore.open(cfg.postgresUrl) : await SqliteStore.open(cfg.sqlitePath);
  await store.migrate();
  return store;
}
