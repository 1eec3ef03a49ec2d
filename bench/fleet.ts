/**
 * `npm run bench:fleet [-- --boxes 2000 --rate 0.5 --seconds 20 --modes embedded,external]`
 * `npm run bench:fleet -- --cluster [...]`: the NATS cluster with 1, 2, 3 fleet workers (bench/fleet-cluster.ts).
 *
 * N simulated boxes (bench/fleet-boxes.ts, their own process) connect with
 * their own credentials, heartbeat (telemetry) and send events; the fleet
 * runs here. For the embedded aedes broker and for an external Mosquitto
 * (started here on a free port with the configuration the fleet generates),
 * side by side: connections held, sustained ingest events/s, event-to-stored
 * latency p50/p99, fleet RSS and CPU (and the broker's), plus machine info.
 * After the window the boxes stop sending and what is in flight drains
 * (until all is answered and stored, nothing moves for 30 s, or `--drain-s`, default 600): then the broker's survival (same process, no
 * restart), the events the broker acknowledged against those stored, and
 * the sequence gaps left in the store are printed.
 * Overload: `npm run bench:fleet -- --boxes 200 --rate 100 --seconds 60 --modes embedded`.
 * Environment: BENCH_BOXES, BENCH_RATE, BENCH_SECONDS, BENCH_MODES, BENCH_DRAIN_S override the defaults.
 */
import { fork } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, type as osType, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { procStat } from './proc.js';

// Quiet logs unless asked: set before the fleet modules (and their loggers) load.
process.env.CALLBOX_LOG_LEVEL ??= 'error';
// `-- --cluster`: the NATS engine with 1, 2 and 3 fleet workers (bench/fleet-cluster.ts), not the modes below.
if (process.argv.includes('--cluster')) {
  await import('./fleet-cluster.js');
  process.exit(0);
}
const { FleetBus } = await import('../fleet/bus.js');
const { loadFleetConfig } = await import('../fleet/config.js');
const { Fleet } = await import('../fleet/fleet.js');
const { generateMosquittoConfig } = await import('../fleet/mosquitto.js');
const { Registry } = await import('../fleet/registry.js');
const { SqliteStore } = await import('../fleet/store/sqlite.js');
const { freePort, startMosquitto } = await import('../scripts/lib/mosquitto.js');
type SqliteStoreT = import('../fleet/store/sqlite.js').SqliteStore;

function arg(name: string, env: string, def: number | string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1] as string;
  return process.env[env] ?? String(def);
}

const N = Math.min(10_000, Math.max(1, Number(arg('boxes', 'BENCH_BOXES', 2000))));
const RATE = Number(arg('rate', 'BENCH_RATE', 0.5));
const SECONDS = Number(arg('seconds', 'BENCH_SECONDS', 20));
const MODES = arg('modes', 'BENCH_MODES', 'embedded,external').split(',') as ('embedded' | 'external')[];
const DRAIN_S = Number(arg('drain-s', 'BENCH_DRAIN_S', 600));
const HERE = dirname(fileURLToPath(import.meta.url));

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Result {
  mode: string;
  held: number;
  connectS: number;
  offered: number;
  stored: number;
  eventsPerS: number;
  p50: number;
  p99: number;
  fleetRss: number;
  fleetCpu: number;
  brokerRss: number;
  brokerCpu: number;
  simCpu: number;
  rejected: number;
  gaps: number;
  brokerAlive: string;
  brokerRestarts: number;
  fleetReconnects: number;
  routerDeferred: number;
  drainS: number;
  sentTotal: number;
  ackedTotal: number;
  boxDrops: number;
  fleetReceived: number;
  ingestDuplicates: number;
  storedTotal: number;
  gapsLeft: number;
  missingLeft: number;
  loadDuring: string;
}

async function runMode(
  mode: 'embedded' | 'external',
  store: SqliteStoreT,
  creds: { deviceId: string; password: string }[],
  dir: string,
  seqBase: number,
): Promise<Result> {
  let mosq: Awaited<ReturnType<typeof startMosquitto>> | undefined;
  let values: Record<string, unknown>;
  if (mode === 'external') {
    const port = await freePort();
    const gen = await generateMosquittoConfig(store, { dir: join(dir, 'mosquitto'), port });
    mosq = await startMosquitto(gen.confFile, port);
    values = {
      mqtt: { mode: 'external', externalUrl: `mqtt://127.0.0.1:${port}`, externalPasswordFile: gen.fleetSecretFile },
    };
  } else {
    values = { mqtt: { port: 0, host: '127.0.0.1', ratePerSecond: 1000, rateBurst: 10_000 } };
  }
  const config = loadFleetConfig(undefined, { ...values, presence: { offlineAfterS: 600 } }, {});
  const fleet = await Fleet.start(config, { store, onBootstrapAdmin: () => undefined });
  const brokerPid = mode === 'external' ? mosq?.proc.pid : fleet.broker?.pid;
  let stored = 0;
  let lat: number[] = [];
  let measuring = false;
  fleet.bus.on('event.stored', {}, ({ raw }) => {
    if (!measuring) return;
    stored++;
    lat.push(Date.now() - Date.parse(raw.at));
  });
  let gaps = 0;
  fleet.bus.on('sequence.gap', {}, () => {
    gaps++;
  });

  const sim = fork(join(HERE, 'fleet-boxes.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  type SimStats = { connected: number; sent: number; acked: number; nacked: number; failed: number; drops: number };
  const stats = () =>
    new Promise<SimStats>((resolve) => {
      sim.once('message', (m: SimStats) => resolve(m));
      sim.send({ t: 'stats' });
    });
  const t0 = Date.now();
  sim.send({
    t: 'start',
    url: fleet.brokerUrl,
    boxes: creds,
    connectPerSec: 500,
    eventsPerBoxPerSec: RATE,
    telemetryEveryS: 30,
    seqBase,
  });
  let s = await stats();
  while (s.connected < N && Date.now() - t0 < 180_000) {
    await new Promise((r) => setTimeout(r, 500));
    s = await stats();
  }
  const connectS = (Date.now() - t0) / 1000;
  process.stderr.write(
    `  ${mode}: ${s.connected}/${N} connected in ${connectS.toFixed(1)} s; measuring ${SECONDS} s\n`,
  );
  await new Promise((r) => setTimeout(r, 3000)); // warm up
  const f0 = procStat(process.pid);
  const b0 = brokerPid ? procStat(brokerPid) : { cpuTicks: 0, rssMiB: 0 };
  const s0 = sim.pid ? procStat(sim.pid) : { cpuTicks: 0, rssMiB: 0 };
  const sent0 = (await stats()).sent;
  lat = [];
  stored = 0;
  measuring = true;
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  const wall = (Date.now() - w0) / 1000;
  const loadDuring = loadavg()[0]?.toFixed(2) ?? '?';
  const end = await stats();
  // CPU and memory of the window (before the drain).
  const f1 = procStat(process.pid);
  const b1 = brokerPid ? procStat(brokerPid) : { cpuTicks: 0, rssMiB: 0 };
  const s1 = sim.pid ? procStat(sim.pid) : { cpuTicks: 0, rssMiB: 0 };
  // Drain: no new events; wait until every publish is answered and the store stops growing.
  sim.send({ t: 'pause' });
  const d0 = Date.now();
  let last = -1;
  let lastAcked = -1;
  let still = 0;
  let drained = await stats();
  // Until everything is answered and stored, or nothing moved for 30 s, or --drain-s.
  while (Date.now() - d0 < DRAIN_S * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    drained = await stats();
    // Not ingest.drain(): it flushes beside the ingest's own timer, and two flushes at once write one batch
    // twice and then cut the next one from the queue unwritten (Ingest.drain is for shutdown, after the
    // client stopped delivering).
    const n = await fleet.store.countEvents();
    still = n === last && drained.acked === lastAcked ? still + 1 : 0;
    last = n;
    lastAcked = drained.acked;
    const answered = drained.acked + drained.nacked >= drained.sent;
    if ((answered && fleet.ingest.pending === 0 && still >= 3) || still >= 30) break;
  }
  const drainS = (Date.now() - d0) / 1000;
  const left = await fleet.store.findGaps();
  const brokerStats = await fleet.broker?.stats();
  lat.sort((x, y) => x - y);
  const result: Result = {
    mode: mode === 'embedded' ? 'embedded aedes' : 'external mosquitto',
    held: end.connected,
    connectS,
    offered: (end.sent - sent0) / wall,
    stored,
    eventsPerS: stored / wall,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    fleetRss: f1.rssMiB,
    fleetCpu: ((f1.cpuTicks - f0.cpuTicks) / 100 / wall) * 100,
    brokerRss: b1.rssMiB,
    brokerCpu: ((b1.cpuTicks - b0.cpuTicks) / 100 / wall) * 100,
    simCpu: ((s1.cpuTicks - s0.cpuTicks) / 100 / wall) * 100,
    rejected: fleet.metrics().rejectedMessages,
    gaps,
    brokerAlive:
      mode === 'external'
        ? '(mosquitto)'
        : fleet.broker?.pid === brokerPid && fleet.metrics().brokerRestarts === 0
          ? `yes (pid ${brokerPid})`
          : `NO (pid ${brokerPid} -> ${fleet.broker?.pid})`,
    brokerRestarts: fleet.metrics().brokerRestarts,
    fleetReconnects: fleet.metrics().reconnects,
    routerDeferred: brokerStats?.routerDeferred ?? 0,
    drainS,
    sentTotal: drained.sent,
    ackedTotal: drained.acked,
    boxDrops: drained.drops,
    fleetReceived: fleet.metrics().ingest.received,
    ingestDuplicates: fleet.metrics().ingest.duplicates,
    storedTotal: await fleet.store.countEvents(),
    gapsLeft: left.length,
    missingLeft: left.reduce((n, g) => n + g.toSeq - g.fromSeq + 1, 0),
    loadDuring,
  };
  sim.send({ t: 'stop' });
  await new Promise((r) => sim.once('exit', r));
  await fleet.stop();
  await mosq?.stop();
  return result;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-fleet-'));
  const store = await SqliteStore.open(join(dir, 'fleet.db'));
  await store.migrate();
  const registry = new Registry({
    store,
    bus: new FleetBus(),
    sink: { put: () => undefined, revoke: () => undefined },
    mqtt: () => undefined,
    caPem: null,
    publicUrl: null,
  });
  const p0 = Date.now();
  const creds: { deviceId: string; password: string }[] = [];
  for (let i = 0; i < N; i += 16) {
    const batch = Array.from({ length: Math.min(16, N - i) }, (_, k) => `BENCH-${String(i + k).padStart(5, '0')}`);
    creds.push(...(await Promise.all(batch.map((serial) => registry.provision('bench', serial)))));
  }
  process.stderr.write(`provisioned ${N} boxes in ${((Date.now() - p0) / 1000).toFixed(1)} s\n`);

  await store.close();
  const results: Result[] = [];
  for (const mode of MODES) {
    // each mode gets its own copy of the provisioned registry, with no events yet
    const file = join(dir, `${mode}.db`);
    copyFileSync(join(dir, 'fleet.db'), file);
    const modeStore = await SqliteStore.open(file);
    results.push(await runMode(mode, modeStore, creds, dir, 0));
    await modeStore.close();
  }
  rmSync(dir, { recursive: true, force: true });

  const cpu = cpus();
  const rows: [string, (r: Result) => string][] = [
    ['connections held', (r) => `${r.held}/${N}`],
    ['time to connect all (s)', (r) => r.connectS.toFixed(1)],
    ['offered events/s', (r) => r.offered.toFixed(0)],
    ['sustained ingest events/s', (r) => r.eventsPerS.toFixed(0)],
    ['event->stored p50 (ms)', (r) => r.p50.toFixed(1)],
    ['event->stored p99 (ms)', (r) => r.p99.toFixed(1)],
    ['fleet RSS (MiB)', (r) => r.fleetRss.toFixed(0)],
    ['fleet CPU (% of a core)', (r) => r.fleetCpu.toFixed(0)],
    ['broker RSS (MiB)', (r) => r.brokerRss.toFixed(0)],
    ['broker CPU (% of a core)', (r) => r.brokerCpu.toFixed(0)],
    ['box simulator CPU (% core)', (r) => r.simCpu.toFixed(0)],
    ['rejected messages', (r) => String(r.rejected)],
    ['sequence gaps seen', (r) => String(r.gaps)],
    ['load average (1 min) at end', (r) => r.loadDuring],
    ['broker child alive', (r) => r.brokerAlive],
    ['broker restarts', (r) => String(r.brokerRestarts)],
    ['fleet reconnects to broker', (r) => String(r.fleetReconnects)],
    ['router: deferred from depth', (r) => String(r.routerDeferred)],
    ['drain time (s)', (r) => r.drainS.toFixed(1)],
    ['events sent (whole run)', (r) => String(r.sentTotal)],
    ['acknowledged by the broker', (r) => String(r.ackedTotal)],
    ['box connections lost', (r) => String(r.boxDrops)],
    ['received by fleet ingest', (r) => String(r.fleetReceived)],
    ['duplicates at ingest', (r) => String(r.ingestDuplicates)],
    ['stored after drain', (r) => String(r.storedTotal)],
    ['sequence gaps left', (r) => `${r.gapsLeft} (${r.missingLeft} events)`],
  ];
  const w = 28;
  const out = [
    `machine: ${cpu[0]?.model ?? '?'} x${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${osType()} ${release()}, node ${process.version}`,
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other work on the machine shares its cores)`,
    `boxes: ${N}, events per box per s: ${RATE} (offered ${(N * RATE).toFixed(0)}/s), telemetry every 30 s, window ${SECONDS} s, store: SQLite`,
    '',
    `${''.padEnd(w)}${results.map((r) => r.mode.padEnd(22)).join('')}`,
    ...rows.map(([name, f]) => `${name.padEnd(w)}${results.map((r) => f(r).padEnd(22)).join('')}`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  process.exit(0);
}

await main();
