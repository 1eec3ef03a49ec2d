/**
 * Several fleet workers on one PostgreSQL database (test/fleet-workers and
 * test/cluster-failover): a database with N provisioned boxes, each in a
 * clinic of its own whose critical alerts go to one webhook (this process
 * counts the calls), the worker configuration, and the checks (events stored
 * once each, every panic alerted once).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clinicAlertSettings } from '../../fleet/alerts/config.js';
import { SqlAlertStore } from '../../fleet/alerts/store.js';
import { FleetBus } from '../../fleet/bus.js';
import { type CredentialSink, Registry } from '../../fleet/registry.js';
import { PostgresStore } from '../../fleet/store/postgres.js';
import { createTestDatabase } from './postgres.js';

export interface SceneBox {
  serial: string;
  deviceId: string;
  password: string;
  clinicId: string;
}

export interface Scene {
  pgUrl: string;
  dir: string;
  keyFile: string;
  boxes: SceneBox[];
  /** Webhook calls received: one per notification attempt. */
  hooks: { alertId: string; condition: string; dedupKey: string }[];
  hookUrl: string;
  /** A pool of this test's own on the database. */
  store: PostgresStore;
  /** An ops admin (ops:ann), issued like the boxes' logins. */
  ops: { user: string; password: string };
  close(): Promise<void>;
}

const HOOK_SECRET = 'workers-webhook-secret';

export async function prepareScene(n: number, sink?: CredentialSink): Promise<Scene> {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'fleet-workers-'));
  const store = await PostgresStore.open(db.url, { max: 3 });
  await store.migrate();
  const alerts = await SqlAlertStore.openPostgres(db.url, { max: 2 });
  await alerts.migrate();
  const registry = new Registry({
    store,
    bus: new FleetBus(),
    sink: sink ?? { put: () => undefined, revoke: () => undefined },
    mqtt: () => undefined,
    caPem: null,
    publicUrl: null,
  });
  const org = await store.createOrganisation('Workers Health');
  const boxes: SceneBox[] = [];
  for (let i = 0; i < n; i++) {
    const clinic = await store.createClinic({
      organisationId: org.id,
      name: `Clinic ${i}`,
      timezone: 'UTC',
      phoneNumbers: [],
      answeringService: null,
      contacts: [],
    });
    const serial = `WRK-${String(i).padStart(4, '0')}`;
    const p = await registry.provision('test', serial, clinic.id);
    boxes.push({ serial, deviceId: p.deviceId, password: p.password, clinicId: clinic.id });
    await alerts.putClinicSettings(
      clinic.id,
      clinicAlertSettings({
        policies: { critical: { steps: [{ to: ['*'], channels: ['webhook'], waitMin: 60 }], repeat: 1 } },
      }),
    );
  }
  await alerts.close();
  const ops = await registry.createOpsUser('test', 'ann', 'admin');
  const hooks: Scene['hooks'] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const h = JSON.parse(body) as { alertId: string; condition: string; dedupKey: string };
      hooks.push({ alertId: h.alertId, condition: h.condition, dedupKey: h.dedupKey });
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    pgUrl: db.url,
    dir,
    keyFile: join(dir, 'keys', 'fleet-data.key'),
    boxes,
    hooks,
    hookUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    store,
    ops: { user: 'ann', password: ops.password },
    close: async () => {
      server.close();
      await store.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The configuration values of one worker. */
export function workerConfig(
  scene: Scene,
  o: {
    name: string;
    brokerUrl: string;
    username: string;
    passwordFile: string;
    source: 'shared' | 'jetstream';
    natsUrls?: string[];
    replicas?: number;
    /** Cluster mode: the engine's MQTT listeners (the fleet's MQTT client moves to the next when one fails). */
    clusterMqttUrls?: string[];
  },
): Record<string, unknown> {
  return {
    data: { dir: join(scene.dir, o.name) },
    instance: { id: o.name },
    mqtt: {
      mode: o.clusterMqttUrls ? 'cluster' : 'external',
      ...(o.clusterMqttUrls ? { clusterMqttUrls: o.clusterMqttUrls, clusterNatsUrls: o.natsUrls ?? [] } : {}),
      externalUrl: o.brokerUrl,
      externalUsername: o.username,
      externalPasswordFile: o.passwordFile,
      reconnectMs: 100,
    },
    store: { kind: 'postgres', postgresUrl: scene.pgUrl, keyFile: scene.keyFile },
    ingest: {
      source: o.source,
      flushMs: 5,
      natsUrls: o.natsUrls ?? [],
      streamReplicas: o.replicas ?? 1,
    },
    http: { port: 0 },
    alerts: {
      webhooks: [{ url: scene.hookUrl, secret: HOOK_SECRET }],
      webhookBackoffMs: 50,
      sweepS: 1,
      eventPollMs: 100,
      leaseS: 3,
    },
  };
}

export interface SceneCounts {
  events: number;
  /** (box, boot, seq) stored more than once. */
  storedTwice: number;
  panicAlerts: number;
  /** Clinics with more than one panic alert. */
  clinicsAlertedTwice: number;
  /** Webhook notifications per dedup key above one. */
  hooksTwice: number;
  /** Panic alerts that reached the webhook. */
  hookedAlerts: number;
}

export async function sceneCounts(scene: Scene): Promise<SceneCounts> {
  const { driver } = scene.store.connection();
  const q = async (sql: string) => Number((await driver.query(sql, []))[0]?.n ?? 0);
  const hookKeys = new Map<string, number>();
  for (const h of scene.hooks) hookKeys.set(h.dedupKey, (hookKeys.get(h.dedupKey) ?? 0) + 1);
  return {
    events: await q('SELECT COUNT(*) AS n FROM events'),
    storedTwice: await q(
      'SELECT COUNT(*) AS n FROM (SELECT 1 FROM events GROUP BY device_id, boot_id, seq HAVING COUNT(*) > 1) d',
    ),
    panicAlerts: await q("SELECT COUNT(*) AS n FROM alerts WHERE condition = 'panic'"),
    clinicsAlertedTwice: await q(
      "SELECT COUNT(*) AS n FROM (SELECT 1 FROM alerts WHERE condition = 'panic' GROUP BY clinic_id HAVING COUNT(*) > 1) d",
    ),
    hooksTwice: [...hookKeys.values()].filter((n) => n > 1).length,
    hookedAlerts: new Set(scene.hooks.filter((h) => h.condition === 'panic').map((h) => h.alertId)).size,
  };
}
