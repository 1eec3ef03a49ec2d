/**
 * Stand-ins and fixtures for alert tests (not used by the running fleet):
 * a recording channel, a scripted box commander, and a fleet with one
 * organisation, clinics and approved boxes on a real SQLite (or PostgreSQL) store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqlAlertStore } from '../../fleet/alerts/store.js';
import { FleetBus } from '../../fleet/bus.js';
import type { Attempt, Channel, Notification, OnAttempt } from '../../fleet/channels/types.js';
import type { BoxCommands } from '../../fleet/commands.js';
import { PostgresStore } from '../../fleet/store/postgres.js';
import { SqliteStore } from '../../fleet/store/sqlite.js';
import type { Clinic, Store } from '../../fleet/store/types.js';
import type { AnyEvent, EventBody, EventType } from '../../shared/contract/events.js';
import type { DEVICE_COMMANDS, DeviceCommand, ParamsOf, ResultOf } from '../../shared/contract/rpc.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { newBootId, newEventId } from '../../shared/ids.js';
import { createTestDatabase } from './postgres.js';

export interface Sent<T> {
  target: T;
  n: Notification;
}

/** Records what it was asked to send; `behave` can make a send fail or hang. */
export class RecordingChannel<T> implements Channel<T> {
  readonly sent: Sent<T>[] = [];
  behave: (target: T, n: Notification) => 'ok' | 'fail' | 'hang' = () => 'ok';

  async send(target: T, n: Notification, onAttempt: OnAttempt): Promise<Attempt> {
    const how = this.behave(target, n);
    if (how === 'hang') return new Promise<Attempt>(() => undefined);
    this.sent.push({ target, n });
    const a: Attempt =
      how === 'ok'
        ? { attempt: 1, ok: true, detail: 'recorded', at: new Date().toISOString() }
        : { attempt: 1, ok: false, error: 'scripted failure', at: new Date().toISOString() };
    await onAttempt(a);
    return a;
  }
}

export interface CommandCall {
  deviceId: string;
  method: DeviceCommand;
  params: unknown;
}

/** Answers device commands like a box whose network confirms every change, unless told otherwise. */
export class ScriptedBoxes implements BoxCommands {
  readonly calls: CommandCall[] = [];
  offline = new Set<string>();
  confirm = true;

  async send<M extends DeviceCommand>(
    deviceId: string,
    method: M,
    params: ParamsOf<typeof DEVICE_COMMANDS, M>,
  ): Promise<ResultOf<typeof DEVICE_COMMANDS, M>> {
    this.calls.push({ deviceId, method, params });
    if (this.offline.has(deviceId)) {
      throw new CallboxError(ErrorCode.RequestTimeout, `request ${method} got no answer`);
    }
    if (method === 'forwarding.set') {
      const p = params as ParamsOf<typeof DEVICE_COMMANDS, 'forwarding.set'>;
      return {
        reason: p.reason ?? 'unconditional',
        enabled: this.confirm ? p.enabled : !p.enabled,
        number: p.enabled ? (p.number ?? null) : null,
        confirmed: this.confirm,
      } as ResultOf<typeof DEVICE_COMMANDS, M>;
    }
    if (method === 'sms.send') return { parts: 1, references: [1] } as ResultOf<typeof DEVICE_COMMANDS, M>;
    if (method === 'panic.ack') return { acknowledged: true } as ResultOf<typeof DEVICE_COMMANDS, M>;
    throw new CallboxError(ErrorCode.UnknownMethod, `scripted box has no ${method}`);
  }
}

export interface AlertFixture {
  dir: string;
  dbPath: string;
  store: Store;
  alerts: SqlAlertStore;
  bus: FleetBus;
  clinic: Clinic;
  other: Clinic;
  /** Device ids: two boxes of `clinic`, one of `other` (same organisation). */
  boxes: { main: string; second: string; sibling: string };
  reopen(): Promise<SqlAlertStore>;
  /** Another connection (pool) to the same alert store, as a second fleet instance would have. */
  another(): Promise<SqlAlertStore>;
  close(): Promise<void>;
}

export const PHONES = { alice: '+15550001001', bob: '+15550001002', service: '+15550009999' };

/**
 * `postgresUrl` (or `storeUrl`): keep the registry, the events and the alerts in this PostgreSQL database
 * (made and dropped by the caller) instead of a SQLite file. The alert store runs on the fleet store's
 * connection, as in the fleet; another() opens a second connection (pool) as a second instance would.
 */
export async function alertFixture(
  opts: { postgresUrl?: string; storeUrl?: string; dialect?: 'sqlite' | 'postgres' } = {},
): Promise<AlertFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-'));
  const dbPath = join(dir, 'fleet.db');
  // dialect 'postgres' without a URL: a database of its own with a random name, dropped by close().
  const own =
    opts.dialect === 'postgres' && !opts.storeUrl && !opts.postgresUrl ? await createTestDatabase() : undefined;
  const url = opts.storeUrl ?? opts.postgresUrl ?? own?.url;
  const store = url ? await PostgresStore.open(url) : await SqliteStore.open(dbPath);
  await store.migrate();
  const openAlerts = async () => {
    const a = SqlAlertStore.over(store);
    await a.migrate();
    return a;
  };
  const openAnother = () => (url ? SqlAlertStore.openPostgres(url) : SqlAlertStore.openSqlite(dbPath));
  let alerts = await openAlerts();
  const org = await store.createOrganisation('Acme Health');
  const clinic = await store.createClinic({
    organisationId: org.id,
    name: 'Main St',
    timezone: 'America/New_York',
    phoneNumbers: ['+15550000001'],
    answeringService: PHONES.service,
    contacts: [
      { name: 'alice', phone: PHONES.alice, email: 'alice@clinic.test' },
      { name: 'bob', phone: PHONES.bob, email: 'bob@clinic.test' },
    ],
  });
  const other = await store.createClinic({
    organisationId: org.id,
    name: 'Oak Ave',
    timezone: 'Europe/Berlin',
    phoneNumbers: [],
    answeringService: null,
    contacts: [],
  });
  const boxes = { main: 'cb-main', second: 'cb-second', sibling: 'cb-sibling' };
  const place: [string, string, string][] = [
    ['CB-MAIN', boxes.main, clinic.id],
    ['CB-SECOND', boxes.second, clinic.id],
    ['CB-SIBLING', boxes.sibling, other.id],
  ];
  for (const [serial, deviceId, clinicId] of place) {
    await store.createBox({ serial, claimState: 'approved', clinicId });
    await store.updateBox(serial, { deviceId, online: true, lastSeenAt: new Date().toISOString() });
  }
  return {
    dir,
    dbPath,
    store,
    get alerts() {
      return alerts;
    },
    bus: new FleetBus(),
    clinic,
    other,
    boxes,
    async another() {
      const other = await openAnother();
      await other.migrate();
      return other;
    },
    async reopen() {
      await alerts.close();
      alerts = await openAlerts();
      return alerts;
    },
    async close() {
      await alerts.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      await own?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let seq = 0;
/** A valid event envelope from `deviceId`. */
export function boxEvent<K extends EventType>(
  deviceId: string,
  type: K,
  body: EventBody<K>,
  at = new Date(),
): AnyEvent {
  return {
    v: 1,
    id: newEventId(),
    deviceId,
    bootId: newBootId(),
    seq: ++seq,
    at: at.toISOString(),
    type,
    body,
  } as AnyEvent;
}
