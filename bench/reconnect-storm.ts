/**
 * `npm run bench:storm [-- --boxes 2000 --events 50 --modes embedded,external]`
 *
 * A reconnect storm: N boxes (the real uplink: SQLite outbox, MQTT link;
 * bench/storm-boxes.ts, their own process) each hold `events` events
 * recorded while the fleet was away; then they all come back at once. The
 * figure is the time until every event is stored by the fleet and receipted
 * to its box (every outbox empty), and the events/s that makes. Batches
 * (one message per up to 100 events) keep the storm to a few messages per box.
 */
import { fork } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.CALLBOX_LOG_LEVEL ??= 'error';
const { FleetBus } = await import('../fleet/bus.js');
const { loadFleetConfig } = await import('../fleet/config.js');
const { Fleet } = await import('../fleet/fleet.js');
const { generateMosquittoConfig } = await import('../fleet/mosquitto.js');
const { Registry } = await import('../fleet/registry.js');
const { SqliteStore } = await import('../fleet/store/sqlite.js');
const { freePort, startMosquitto } = await import('../scripts/lib/mosquitto.js');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}
const N = Number(arg('boxes', '2000'));
const EVENTS = Number(arg('events', '50'));
const MODES = arg('modes', 'embedded').split(',') as ('embedded' | 'external')[];
const HERE = dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stats {
  online: number;
  depth: number;
  drained: number;
  sentBatches: number;
  resends: number;
}

async function run(
  mode: 'embedded' | 'external',
  storeFile: string,
  creds: { deviceId: string; password: string }[],
  dir: string,
) {
  const store = await SqliteStore.open(storeFile);
  let mosq: Awaited<ReturnType<typeof startMosquitto>> | undefined;
  let mqtt: Record<string, unknown>;
  if (mode === 'external') {
    const port = await freePort();
    const gen = await generateMosquittoConfig(store, { dir: join(dir, `mosquitto-${mode}`), port });
    mosq = await startMosquitto(gen.confFile, port);
    mqtt = { mode: 'external', externalUrl: `mqtt://127.0.0.1:${port}`, externalPasswordFile: gen.fleetSecretFile };
  } else {
    mqtt = { mode: 'embedded', port: 0, host: '127.0.0.1', ratePerSecond: 1000, rateBurst: 10_000 };
  }
  const sim = fork(join(HERE, 'storm-boxes.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = <T>(m: Record<string, unknown>, reply: string) =>
    new Promise<T>((res) => {
      const on = (r: { t: string }) => {
        if (r.t !== reply) return;
        sim.off('message', on);
        res(r as T);
      };
      sim.on('message', on);
      sim.send(m);
    });
  const p0 = Date.now();
  const prepared = await ask<{ depth: number }>(
    { t: 'prepare', boxes: creds, dir: join(dir, `boxes-${mode}`), events: EVENTS },
    'prepared',
  );
  process.stderr.write(
    `  ${mode}: ${N} boxes hold ${prepared.depth} events (recorded offline in ${((Date.now() - p0) / 1000).toFixed(1)} s)\n`,
  );
  const config = loadFleetConfig(undefined, { mqtt, presence: { offlineAfterS: 600 } }, {});
  const fleet = await Fleet.start(config, { store, onBootstrapAdmin: () => undefined });
  let stored = 0;
  let storedAt = 0;
  fleet.bus.on('event.stored', {}, () => {
    stored++;
    if (stored === prepared.depth) storedAt = Date.now();
  });
  const t0 = Date.now();
  sim.send({ t: 'go', url: fleet.brokerUrl });
  let s = await ask<Stats>({ t: 'stats' }, 'stats');
  let allOnline = 0;
  while (s.depth > 0 && Date.now() - t0 < 600_000) {
    await sleep(250);
    s = await ask<Stats>({ t: 'stats' }, 'stats');
    if (!allOnline && s.online === N) allOnline = Date.now();
  }
  const receiptedS = (Date.now() - t0) / 1000;
  const m = fleet.metrics();
  const result = {
    mode: mode === 'embedded' ? 'embedded aedes' : 'external mosquitto',
    connectedS: allOnline ? ((allOnline - t0) / 1000).toFixed(1) : `${s.online}/${N}`,
    storedS: storedAt ? ((storedAt - t0) / 1000).toFixed(1) : `${stored}/${prepared.depth}`,
    receiptedS: s.depth === 0 ? receiptedS.toFixed(1) : `left ${s.depth}`,
    eventsPerS: (prepared.depth / receiptedS).toFixed(0),
    messages: s.sentBatches,
    resends: s.resends,
    duplicates: m.ingest.duplicates,
    receipts: m.ingest.receipts,
    backpressure: m.ingest.backpressure,
  };
  sim.send({ t: 'stop' });
  await new Promise((r) => sim.once('exit', r));
  await fleet.stop();
  await store.close();
  await mosq?.stop();
  return result;
}

const dir = mkdtempSync(join(tmpdir(), 'bench-storm-'));
const base = join(dir, 'fleet.db');
const store = await SqliteStore.open(base);
await store.migrate();
const registry = new Registry({
  store,
  bus: new FleetBus(),
  sink: { put: () => undefined, revoke: () => undefined },
  mqtt: () => undefined,
  caPem: null,
  publicUrl: null,
});
const creds: { deviceId: string; password: string }[] = [];
const p0 = Date.now();
for (let i = 0; i < N; i += 16) {
  const serials = Array.from({ length: Math.min(16, N - i) }, (_, k) => `STORM-${String(i + k).padStart(5, '0')}`);
  creds.push(...(await Promise.all(serials.map((s) => registry.provision('bench', s)))));
}
await store.close();
process.stderr.write(`provisioned ${N} boxes in ${((Date.now() - p0) / 1000).toFixed(1)} s\n`);
const results = [];
for (const mode of MODES) {
  const file = join(dir, `${mode}.db`);
  copyFileSync(base, file);
  results.push(await run(mode, file, creds, dir));
}
rmSync(dir, { recursive: true, force: true });
const cpu = cpus();
process.stdout.write(
  [
    `machine: ${cpu[0]?.model ?? '?'} x${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (shared with other work)`,
    `reconnect storm: ${N} boxes come back at once holding ${EVENTS} events each (${N * EVENTS} events)`,
    ...results.map(
      (r) =>
        `${r.mode}: all connected ${r.connectedS} s, all stored ${r.storedS} s, all receipted ${r.receiptedS} s, ${r.eventsPerS} events/s; ${r.messages} event messages (${r.resends} resends), ${r.duplicates} duplicates, ${r.receipts} receipts, backpressure ${r.backpressure}`,
    ),
    '',
  ].join('\n'),
);
process.exit(0);
