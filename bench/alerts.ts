/**
 * npm run bench:alerts — panic-press-to-webhook latency (a benchmark, not a test).
 *
 * The real fleet (supervised embedded aedes broker, ingest, presence,
 * SQLite) with the alert engine; BENCH_BOXES (default 2000) simulated boxes,
 * one per clinic, connected as plain mqtt.js clients with their own device
 * credentials; BENCH_PRESSES (default 1000) panic presses, each from a
 * different box, at BENCH_RATE presses per second (default 50). Latency is
 * from the box publishing the panic.pressed event to a local webhook
 * receiver (node http) receiving the signed notification; figures p50, p90,
 * p99 and max, and the machine it ran on.
 *
 * Box credentials share one scrypt hash with a low cost (N=1024) so that
 * 2000 logins do not take minutes; the broker verifies them the same way.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { startAlerts } from '../fleet/alerts/index.js';
import { hashSecret } from '../fleet/auth/password.js';
import { loadFleetConfig } from '../fleet/config.js';
import { Fleet } from '../fleet/fleet.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId, newEventId } from '../shared/ids.js';
import { setupLogging } from '../shared/log.js';

setupLogging({ level: 'error' });

const BOXES = Number(process.env.BENCH_BOXES ?? 2000);
const PRESSES = Math.min(Number(process.env.BENCH_PRESSES ?? 1000), BOXES);
const RATE = Number(process.env.BENCH_RATE ?? 50);
const SECRET = 'bench-box-secret-0123456789';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-alerts-'));
  const t0 = performance.now();
  const store = await SqliteStore.open(join(dir, 'fleet.db'));
  await store.migrate();
  const org = await store.createOrganisation('Bench Health');
  const hash = await hashSecret(SECRET, { N: 1024, r: 8, p: 1 });
  const boxes: { deviceId: string; clinicId: string }[] = [];
  for (let i = 0; i < BOXES; i++) {
    const n = String(i).padStart(5, '0');
    const clinic = await store.createClinic({
      organisationId: org.id,
      name: `Clinic ${n}`,
      timezone: 'America/New_York',
      phoneNumbers: [],
      answeringService: null,
      contacts: [],
    });
    const deviceId = `bench-${n}`;
    await store.createBox({ serial: `BENCH-${n}`, claimState: 'approved', clinicId: clinic.id });
    await store.updateBox(`BENCH-${n}`, { deviceId });
    await store.putCredential({ username: deviceId, kind: 'device', subject: deviceId, hash, mosquittoHash: null });
    boxes.push({ deviceId, clinicId: clinic.id });
  }
  const tRegistry = performance.now();
  const progress = (m: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${m}\n`);
  progress(`registry: ${BOXES} clinics and boxes`);

  const received = new Map<string, number>();
  let receivedAll: () => void = () => undefined;
  const allIn = new Promise<void>((r) => {
    receivedAll = r;
  });
  const hooks = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const at = performance.now();
      const n = JSON.parse(body) as { clinicId: string; condition: string };
      if (n.condition === 'panic' && !received.has(n.clinicId)) {
        received.set(n.clinicId, at);
        if (received.size >= PRESSES) receivedAll();
      }
      res.writeHead(204).end();
    });
  });
  hooks.listen(0, '127.0.0.1');
  await once(hooks, 'listening');

  const config = loadFleetConfig(
    undefined,
    { mqtt: { port: 0, host: '127.0.0.1' }, store: { sqlitePath: join(dir, 'fleet.db') }, ingest: { flushMs: 2 } },
    {},
  );
  const fleet = await Fleet.start(config, { store, onBootstrapAdmin: () => undefined });
  const alerts = await startAlerts({
    bus: fleet.bus,
    store: fleet.store,
    commands: fleet.commands,
    storeConfig: config.store,
    isOnline: (id) => fleet.presence.isOnline(id),
    config: {
      webhooks: [{ url: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`, secret: 'bench-webhook' }],
      publicUrl: 'http://fleet.bench',
      linkSecret: 'bench-link-secret',
    },
  });

  // Connect every box (100 at a time), each publishing its retained online status.
  const clients: MqttClient[] = [];
  const bootId = newBootId();
  for (let i = 0; i < boxes.length; i += 100) {
    await Promise.all(
      boxes.slice(i, i + 100).map(async (b) => {
        const c = await mqtt.connectAsync(fleet.brokerUrl, {
          username: b.deviceId,
          password: SECRET,
          clientId: b.deviceId,
          reconnectPeriod: 1000,
          keepalive: 60,
        });
        await c.publishAsync(
          deviceTopics(b.deviceId).status,
          JSON.stringify({ v: 1, state: 'online', at: new Date().toISOString(), bootId }),
          { qos: 1, retain: true },
        );
        clients.push(c);
      }),
    );
  }
  const tConnected = performance.now();
  progress(`${clients.length} boxes connected`);
  await new Promise((r) => setTimeout(r, 1000)); // let presence settle

  const sentAt = new Map<string, number>();
  const interval = 1000 / RATE;
  const start = performance.now();
  for (let i = 0; i < PRESSES; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const b = boxes[i] as { deviceId: string; clinicId: string };
    const c = clients.find((x) => x.options.clientId === b.deviceId) as MqttClient;
    const event = {
      v: 1,
      id: newEventId(),
      deviceId: b.deviceId,
      bootId,
      seq: 1,
      at: new Date().toISOString(),
      type: 'panic.pressed',
      body: { panicId: newEventId(), source: 'bench' },
    };
    sentAt.set(b.clinicId, performance.now());
    c.publish(deviceTopics(b.deviceId).events, JSON.stringify(event), { qos: 1 });
  }
  progress(`${PRESSES} presses sent`);
  const timeout = new Promise<void>((r) => setTimeout(r, 60_000));
  await Promise.race([allIn, timeout]);
  const end = performance.now();

  const stored = await fleet.store.countEvents();
  const opened = await alerts.store.listAlerts({ condition: 'panic', limit: 10_000 });
  const byStatus = new Map<string, number>();
  const errors = new Map<string, number>();
  for (const a of opened) {
    for (const d of await alerts.store.listDeliveries(a.id)) {
      byStatus.set(d.status, (byStatus.get(d.status) ?? 0) + 1);
      if (d.error) errors.set(d.error, (errors.get(d.error) ?? 0) + 1);
    }
  }
  const lat: number[] = [];
  for (const [clinicId, at] of received) {
    const s = sentAt.get(clinicId);
    if (s !== undefined) lat.push(at - s);
  }
  lat.sort((a, b) => a - b);
  const cpu = cpus();
  const f = (x: number) => `${x.toFixed(1)} ms`;
  console.log('alert engine: panic press -> webhook');
  console.log(`  boxes connected: ${clients.length} (one per clinic), presses: ${PRESSES} at ${RATE}/s`);
  console.log(`  webhooks received: ${received.size}/${PRESSES} in ${((end - start) / 1000).toFixed(1)} s`);
  console.log(
    `  events stored: ${stored}, panic alerts opened: ${opened.length}, delivery attempts: ${[...byStatus]
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}${errors.size ? ` (errors: ${[...errors].map(([k, v]) => `${v}x ${k}`).join('; ')})` : ''}`,
  );
  console.log(
    `  latency p50 ${f(pct(lat, 50))}, p90 ${f(pct(lat, 90))}, p99 ${f(pct(lat, 99))}, max ${f(lat.at(-1) ?? Number.NaN)}`,
  );
  console.log(
    `  setup: registry ${((tRegistry - t0) / 1000).toFixed(1)} s, ${BOXES} logins ${((tConnected - tRegistry) / 1000).toFixed(1)} s`,
  );
  console.log(`  store: SQLite (WAL), broker: embedded aedes (supervised child process)`);
  console.log(
    `machine: ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${process.platform}/${process.arch}, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );

  progress('stopping');
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await alerts.stop();
  await fleet.stop();
  await store.close();
  hooks.closeAllConnections();
  hooks.close();
  rmSync(dir, { recursive: true, force: true });
  if (received.size < PRESSES) process.exitCode = 1;
}

await main();
