/**
 * npm run bench:outbox — figures for the durable outbox and the box process:
 *   1. durable events/s: record() resolved (committed with synchronous=FULL),
 *      one producer at a time and many at once (group commit);
 *   2. replay: 100,000 events buffered while offline, then the link comes up
 *      (aedes in this process, a plain subscriber as the fleet): time until
 *      the fleet has them all and until the outbox is empty;
 *   3. the box process (device/main.ts, bundled like a release build)
 *      provisioned and online, idle: RSS and CPU over 10 s;
 * and the machine it ran on.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Aedes } from 'aedes';
import { build } from 'esbuild';
import mqtt from 'mqtt';
import { Store } from '../device/store/store.js';
import { CredentialsFile } from '../device/uplink/credentials.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { decodeEventsPayload, ReceiptWatermarks } from '../shared/contract/delivery.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { setupLogging } from '../shared/log.js';
import { procStat } from './proc.js';
import { unitNodeFlags } from './unit-flags.js';

setupLogging({ level: 'warn', format: 'json', destination: process.stderr });

const REPLAY = Number(process.env.BENCH_REPLAY ?? 100_000);
const repo = resolve(import.meta.dirname, '..');
const body = (n: number) => ({
  callId: `bench-${n}`,
  number: null,
  withheld: true,
  inHours: true,
  repeatCaller: false,
  waiting: false,
});

async function openOutbox(dir: string) {
  const store = await Store.open({ file: join(dir, 'box.db'), migrations: { uplink: UPLINK_MIGRATIONS } });
  const outbox = new Outbox(store, {
    bootId: newBootId(),
    maxEvents: 10_000_000,
    publishBatch: 100,
    minFreeBytes: 1,
    dataDir: dir,
  });
  await outbox.open();
  return { store, outbox };
}

async function durableRate(): Promise<void> {
  const { store, outbox } = await openOutbox(mkdtempSync(join(os.tmpdir(), 'bench-outbox-')));
  // One producer awaiting each event: one transaction, one fsync per event.
  let t = performance.now();
  const single = 500;
  for (let i = 0; i < single; i++) await outbox.record('call.incoming', body(i));
  const one = single / ((performance.now() - t) / 1000);
  // 64 producers at once: events share transactions (group commit).
  const total = 50_000;
  t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < total) await outbox.record('call.incoming', body(next++));
    }),
  );
  const many = total / ((performance.now() - t) / 1000);
  console.log(`durable events/s, 1 producer awaiting each:  ${one.toFixed(0)}`);
  console.log(`durable events/s, 64 producers (group commit): ${many.toFixed(0)}`);
  await outbox.close();
  await store.close();
}

async function startAedes(): Promise<{ url: string; close: () => Promise<void> }> {
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}

async function replay(): Promise<void> {
  const { store, outbox } = await openOutbox(mkdtempSync(join(os.tmpdir(), 'bench-replay-')));
  let t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < REPLAY) await outbox.record('call.incoming', body(next++));
    }),
  );
  console.log(
    `buffered ${REPLAY} events offline in ${((performance.now() - t) / 1000).toFixed(1)} s; outbox depth ${outbox.depth}`,
  );
  const broker = await startAedes();
  const fleet = await mqtt.connectAsync(broker.url, { clientId: 'bench-fleet', clean: false, protocolVersion: 4 });
  const seen = new Set<string>();
  let lastSeq = 0;
  let outOfOrder = 0;
  let allIn: () => void = () => undefined;
  const arrived = new Promise<void>((r) => {
    allIn = r;
  });
  // The fleet's side as the real one does it: decode the batch, then receipt it (cumulative), or the box keeps it.
  const marks = new ReceiptWatermarks();
  fleet.on('message', (_topic, payload) => {
    const decoded = decodeEventsPayload(payload);
    const events = decoded.kind === 'batch' ? decoded.batch.events : [decoded.event];
    for (const e of events) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      if (e.seq <= lastSeq) outOfOrder++;
      lastSeq = e.seq;
    }
    if (decoded.kind === 'batch') {
      const b = decoded.batch;
      fleet.publish(
        deviceTopics(b.deviceId).receipt,
        JSON.stringify({ v: 1, stream: b.stream, seq: marks.committed(b), at: new Date().toISOString() }),
        { qos: 1 },
      );
    }
    if (seen.size === REPLAY) allIn();
  });
  await fleet.subscribeAsync('callbox/v1/+/events', { qos: 1 });
  const link = new Link({
    url: broker.url,
    identity: { kind: 'device', id: 'bench-box', username: 'bench-box', password: 'bench-password-0001' },
    keepaliveS: 30,
    connectTimeoutMs: 5000,
    reconnectMinMs: 100,
    reconnectMaxMs: 1000,
    bootId: newBootId(),
    softwareVersion: 'bench',
  });
  wireOutbox(link, outbox, 'bench-box');
  t = performance.now();
  link.start();
  await arrived;
  const delivered = (performance.now() - t) / 1000;
  await outbox.drained();
  const drained = (performance.now() - t) / 1000;
  console.log(
    `replay of ${REPLAY} buffered events after reconnect: all at the fleet in ${delivered.toFixed(1)} s (${(REPLAY / delivered).toFixed(0)}/s), outbox empty after ${drained.toFixed(1)} s, out of order: ${outOfOrder}`,
  );
  await link.stop();
  await fleet.endAsync(true);
  await outbox.close();
  await store.close();
  await broker.close();
}

async function idleProcess(): Promise<void> {
  const outDir = join(repo, 'node_modules', '.cache', 'callbox-bench');
  mkdirSync(outDir, { recursive: true });
  const mainJs = join(outDir, 'main.mjs');
  await build({
    entryPoints: [join(repo, 'device', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: mainJs,
    logLevel: 'error',
  });
  const broker = await startAedes();
  const dataDir = mkdtempSync(join(os.tmpdir(), 'bench-box-'));
  await new CredentialsFile(dataDir).save({
    v: 1,
    deviceId: 'bench-idle',
    username: 'bench-idle',
    password: 'bench-idle-password-01',
    caPem: null,
    brokerUrl: null,
    provisionedAt: new Date().toISOString(),
  });
  const config = join(dataDir, 'device.yaml');
  writeFileSync(
    config,
    `box:\n  serial: CB-BENCH-01\n  dataDir: ${dataDir}\nmqtt:\n  url: ${broker.url}\nlog:\n  level: warn\n`,
  );
  // The box as its systemd unit runs it (the unit's Node.js flags), then with Node's defaults.
  for (const flags of [unitNodeFlags(), []]) {
    const fleet = await mqtt.connectAsync(broker.url, { clientId: 'bench-idle-fleet', protocolVersion: 4 });
    const online = new Promise<void>((r) =>
      fleet.on('message', (_t, p) => {
        if (p.toString().includes('"online"')) r();
      }),
    );
    await fleet.subscribeAsync('callbox/v1/bench-idle/status', { qos: 1 });
    const proc = spawn(process.execPath, [...flags, mainJs, '--config', config], { stdio: 'ignore', cwd: repo });
    const pid = proc.pid ?? 0;
    await online;
    await new Promise((r) => setTimeout(r, 3000));
    const hz = 100; // USER_HZ on Linux
    const a = procStat(pid);
    const seconds = 10;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const b = procStat(pid);
    const cpu = ((b.cpuTicks - a.cpuTicks) / hz / seconds) * 100;
    const how = flags.length > 0 ? `unit flags ${flags.join(' ')}` : "Node's default flags";
    console.log(
      `box process idle (online, no events, ${how}), over ${seconds} s: RSS ${b.rssMiB.toFixed(1)} MiB, CPU ${cpu.toFixed(2)} %`,
    );
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await fleet.endAsync(true);
  }
  await broker.close();
}

function machine(): void {
  const cpus = os.cpus();
  console.log(
    `machine: ${cpus[0]?.model ?? 'unknown cpu'} x${cpus.length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}, node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(`store on: ${os.tmpdir()} (synchronous=FULL: every commit is fsynced)`);
}

machine();
await durableRate();
await replay();
await idleProcess();
process.exit(0);
