/**
 * `npm run bench:fleet -- --cluster [--boxes 2000 --rate 2 --batch 20 --seconds 15 --workers 1,2,3]`
 *
 * The cluster on this machine: a three-node NATS engine (scripts/cluster), fleet workers (processes of
 * their own, ingest.source jetstream) on one PostgreSQL database, and N simulated boxes
 * (bench/cluster-boxes.ts) with their own engine users sending EventBatches of `batch` events, spread
 * over the three MQTT listeners. For 1, 2 and 3 workers in turn on the same offered load: sustained ingest
 * events/s (rows stored in the window / window), and the resident memory of the whole cluster (engine
 * nodes + workers) per connected box. Before them, the same offered load on the single-process fleet
 * (embedded aedes broker, one process, the same PostgreSQL store): the peer the cluster is measured against
 * (`--no-single` leaves it out). The alert engine is off in the workers (ingest only).
 * Environment: BENCH_BOXES, BENCH_RATE, BENCH_BATCH, BENCH_SECONDS, BENCH_WORKERS override the defaults.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import pg from 'pg';
import { procStat } from './proc.js';

process.env.CALLBOX_LOG_LEVEL ??= 'error';
const { bcryptHash } = await import('../fleet/auth/bcrypt.js');
const { hashSecret } = await import('../fleet/auth/password.js');
const { AUTH_BUCKET, authKey } = await import('../fleet/cluster/auth-agent.js');
const { retryJetStream } = await import('../fleet/cluster/auth-sink.js');
const { EVENTS_CONSUMER, EVENTS_STREAM } = await import('../fleet/ingest-jetstream.js');
const { PostgresStore } = await import('../fleet/store/postgres.js');
const { startCluster } = await import('../scripts/cluster/cluster.js');
const { startFleetWorker } = await import('../scripts/lib/fleet-workers.js');
const { waitFor } = await import('../shared/wait.js');
type FleetWorker = import('../scripts/lib/fleet-workers.js').FleetWorker;

function arg(name: string, env: string, def: number | string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1] as string;
  return process.env[env] ?? String(def);
}
const N = Math.min(10_000, Math.max(1, Number(arg('boxes', 'BENCH_BOXES', 2000))));
const RATE = Number(arg('rate', 'BENCH_RATE', 2));
const BATCH = Math.min(1000, Math.max(1, Number(arg('batch', 'BENCH_BATCH', 20))));
const SECONDS = Number(arg('seconds', 'BENCH_SECONDS', 15));
const WORKERS = arg('workers', 'BENCH_WORKERS', '1,2,3').split(',').map(Number);
const SINGLE = !process.argv.includes('--no-single');
const HERE = dirname(fileURLToPath(import.meta.url));
const PG_BASE = process.env.CALLBOX_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432';

/**
 * On a loaded machine the engine sometimes refuses a fleet subscription (SUBACK 0x80: JetStream's store timed
 * out; docs/CLUSTER.md) and the worker exits at start: tried again, up to three times.
 */
async function startWorkerRetrying(...args: Parameters<typeof startFleetWorker>): Promise<FleetWorker> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startFleetWorker(...args);
    } catch (e) {
      if (attempt >= 6) throw e;
      await new Promise((r) => setTimeout(r, 5000));
      process.stderr.write(`  worker ${args[0]} did not start (${(e as Error).message.split('\n')[0]}); again\n`);
    }
  }
}

interface Row {
  /** Column heading: "single process" or "N worker(s)". */
  label: string;
  workers: number;
  offered: number;
  stored: number;
  engineRss: number;
  workersRss: number;
  held: number;
  pendingAfter: number;
}

/** The simulated boxes (bench/cluster-boxes.ts) in a process of their own: started paused, then 'resume'. */
function forkBoxes() {
  const sim = fork(join(HERE, 'cluster-boxes.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const stats = () =>
    new Promise<{ connected: number; sent: number }>((resolve) => {
      sim.once('message', (m: { connected: number; sent: number }) => resolve(m));
      sim.send({ t: 'stats' });
    });
  const start = (urls: string[], boxes: string[], password: string) =>
    sim.send({ t: 'start', urls, boxes, password, connectPerSec: 300, eventsPerBoxPerSec: RATE, batch: BATCH });
  return { sim, stats, start };
}

/**
 * The single-process fleet (the default deployment: one process, its embedded aedes broker in a child
 * process) on the same store, with the same boxes at the same offered load, in a simulator process of its own.
 */
async function singleRound(o: {
  dir: string;
  pgUrl: string;
  ids: string[];
  password: string;
  storedRows: () => Promise<number>;
}): Promise<Row> {
  const fleet = await startWorkerRetrying(
    'single',
    {
      data: { dir: join(o.dir, 'single') },
      instance: { id: 'single' },
      mqtt: { port: 0, host: '127.0.0.1', ratePerSecond: 1000, rateBurst: 10_000 },
      store: { kind: 'postgres', postgresUrl: o.pgUrl, keyFile: join(o.dir, 'keys', 'fleet-data.key') },
      ingest: { batchMax: 2000, flushMs: 10 },
      presence: { offlineAfterS: 600 },
      http: { port: 0 },
    },
    { alerts: false },
  );
  const { sim, stats, start } = forkBoxes();
  try {
    const m0 = await fleet.metrics();
    if (!m0.brokerPort) throw new Error('the single-process fleet reports no MQTT port');
    const c0 = Date.now();
    start([`mqtt://127.0.0.1:${m0.brokerPort}`], o.ids, o.password);
    await waitFor(async () => (await stats()).connected >= N, 'every box connected to the single-process fleet', {
      timeoutMs: 600_000,
      intervalMs: 1000,
    });
    process.stderr.write(`single process: ${N} boxes connected in ${((Date.now() - c0) / 1000).toFixed(1)} s\n`);
    sim.send({ t: 'resume' });
    await new Promise((r) => setTimeout(r, 3000));
    const s0 = await o.storedRows();
    const sent0 = (await stats()).sent;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const wall = (Date.now() - t0) / 1000;
    const s1 = await o.storedRows();
    const end = await stats();
    const m1 = await fleet.metrics();
    const row: Row = {
      label: 'single process',
      workers: 0,
      offered: (end.sent - sent0) / wall,
      stored: (s1 - s0) / wall,
      engineRss: m1.brokerPid ? procStat(m1.brokerPid).rssMiB : 0,
      workersRss: m1.rss / 2 ** 20,
      held: end.connected,
      pendingAfter: -1,
    };
    process.stderr.write(`  single process: ${row.stored.toFixed(0)} events/s stored\n`);
    sim.send({ t: 'pause' });
    return row;
  } finally {
    sim.kill('SIGKILL');
    await fleet.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
  const dbName = `callbox_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const pgUrl = `${PG_BASE}/${dbName}`;
  const names = Array.from({ length: Math.max(...WORKERS) }, (_, i) => `fleet:w${i + 1}`);
  const cluster = await startCluster({ dir: join(dir, 'engine'), nodes: 3, fleetUsers: names });
  const workers: FleetWorker[] = [];
  const { sim, stats, start } = forkBoxes();
  try {
    const f = cluster.fleetUsers[0] as { username: string; password: string };
    const nc = await connect({ servers: cluster.clientUrls, user: f.username, pass: f.password });
    const kv = await waitFor(
      () =>
        nc
          .jetstream()
          .views.kv(AUTH_BUCKET, { bindOnly: true })
          .catch(() => undefined),
      'the auth bucket',
      { timeoutMs: 30_000 },
    );
    // One secret for every simulated box (one bcrypt hash to make); each box is still a user of its own.
    const password = 'bench-box-secret-0123456789';
    const hash = await bcryptHash(password);
    const ids = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
    const p0 = Date.now();
    for (let i = 0; i < N; i += 200) {
      await Promise.all(
        ids
          .slice(i, i + 200)
          .map((id) => retryJetStream(`user ${id}`, () => kv.put(authKey(id), JSON.stringify({ username: id, hash })))),
      );
    }
    await waitFor(() => (cluster.agent?.users() ?? 0) >= N, 'box users on the engine', { timeoutMs: 120_000 });
    process.stderr.write(`engine users for ${N} boxes in ${((Date.now() - p0) / 1000).toFixed(1)} s\n`);
    const store = await PostgresStore.open(pgUrl, { max: 2 });
    await store.migrate();
    // The single-process fleet's embedded broker checks this one (scrypt); the engine has the bcrypt one.
    const scrypt = await hashSecret(password);
    // The boxes are active credentials in the store too: a worker in cluster mode removes from the engine every
    // user the store does not hold active (and the engine then closes their connections).
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        ids
          .slice(i, i + 100)
          .map((id) =>
            store.putCredential({ username: id, kind: 'device', subject: id, hash: scrypt, mosquittoHash: null }),
          ),
      );
    }
    const storedRows = async () =>
      Number((await store.connection().driver.query('SELECT COALESCE(MAX(pos), 0) AS n FROM events', []))[0]?.n ?? 0);
    const rows: Row[] = [];
    if (SINGLE) rows.push(await singleRound({ dir, pgUrl, ids, password, storedRows }));
    const jsm = await nc.jetstreamManager();
    const c0 = Date.now();
    start(cluster.mqttUrls, ids, password);
    await waitFor(
      async () => {
        const { connected } = await stats();
        if (Date.now() - c0 > 10_000 && Math.floor((Date.now() - c0) / 1000) % 10 === 0)
          process.stderr.write(`  ${connected}/${N} boxes connected\n`);
        return connected >= N;
      },
      'every box connected',
      { timeoutMs: 600_000, intervalMs: 1000 },
    );
    process.stderr.write(`${N} boxes connected in ${((Date.now() - c0) / 1000).toFixed(1)} s\n`);
    for (const k of WORKERS) {
      sim.send({ t: 'pause' });
      for (const w of workers.splice(0)) await w.stop();
      for (let i = 0; i < k; i++) {
        const u = cluster.fleetUsers[i] as { username: string; secretFile: string };
        const name = `w${i + 1}`;
        workers.push(
          await startWorkerRetrying(
            name,
            {
              data: { dir: join(dir, name) },
              instance: { id: name },
              mqtt: {
                mode: 'cluster',
                clusterMqttUrls: [0, 1, 2].map((n) => cluster.mqttUrls[(i + n) % 3]),
                clusterNatsUrls: cluster.clientUrls,
                externalUsername: u.username,
                externalPasswordFile: u.secretFile,
              },
              store: { kind: 'postgres', postgresUrl: pgUrl, keyFile: join(dir, 'keys', 'fleet-data.key') },
              ingest: {
                source: 'jetstream',
                natsUrls: cluster.clientUrls,
                streamReplicas: 3,
                batchMax: 2000,
                flushMs: 10,
              },
              presence: { offlineAfterS: 600 },
              http: { port: 0 },
            },
            { alerts: false },
          ),
        );
      }
      // What the previous round left in the stream is stored before this one is measured.
      await waitFor(
        async () => {
          const info = await jsm.consumers.info(EVENTS_STREAM, EVENTS_CONSUMER).catch(() => undefined);
          return info && info.num_pending === 0 && info.num_ack_pending === 0;
        },
        'the stream drained',
        { timeoutMs: 300_000, intervalMs: 500 },
      );
      sim.send({ t: 'resume' });
      await new Promise((r) => setTimeout(r, 3000));
      const s0 = await storedRows();
      const sent0 = (await stats()).sent;
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const wall = (Date.now() - t0) / 1000;
      const s1 = await storedRows();
      const end = await stats();
      const engineRss = cluster.nodes.reduce((n, node) => n + (node.pid ? procStat(node.pid).rssMiB : 0), 0);
      const workersRss = (await Promise.all(workers.map((w) => w.metrics()))).reduce((n, m) => n + m.rss / 2 ** 20, 0);
      const info = await jsm.consumers.info(EVENTS_STREAM, EVENTS_CONSUMER).catch(() => undefined);
      rows.push({
        label: `${k} worker(s)`,
        workers: k,
        offered: (end.sent - sent0) / wall,
        stored: (s1 - s0) / wall,
        engineRss,
        workersRss,
        held: end.connected,
        pendingAfter: info ? info.num_pending + info.num_ack_pending : -1,
      });
      process.stderr.write(`  ${k} worker(s): ${((s1 - s0) / wall).toFixed(0)} events/s stored\n`);
    }
    await nc.close();
    await store.close();
    const w = 34;
    const cpu = cpus();
    const out = [
      `machine: ${cpu[0]?.model ?? '?'} x${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}; load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      'single process: one fleet with its embedded aedes broker; cluster: 3 NATS nodes (JetStream R3, MQTT) and fleet workers; all on PostgreSQL',
      `${N} boxes x ${RATE} events/s in batches of ${BATCH} (offered ${(N * RATE).toFixed(0)}/s), window ${SECONDS} s`,
      '',
      `${''.padEnd(w)}${rows.map((r) => r.label.padEnd(16)).join('')}`,
      ...(
        [
          ['boxes connected', (r) => `${r.held}/${N}`],
          ['offered events/s', (r) => r.offered.toFixed(0)],
          ['sustained ingest events/s', (r) => r.stored.toFixed(0)],
          ['left in the stream at the end', (r) => (r.pendingAfter < 0 ? '-' : String(r.pendingAfter))],
          ['broker / engine RSS (MiB)', (r) => r.engineRss.toFixed(0)],
          ['fleet process(es) RSS (MiB)', (r) => r.workersRss.toFixed(0)],
          ['total RSS (MiB)', (r) => (r.engineRss + r.workersRss).toFixed(0)],
          ['total RSS per box (KiB)', (r) => (((r.engineRss + r.workersRss) * 1024) / Math.max(1, r.held)).toFixed(1)],
        ] as [string, (r: Row) => string][]
      ).map(([name, f]) => `${name.padEnd(w)}${rows.map((r) => f(r).padEnd(16)).join('')}`),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    sim.kill('SIGKILL');
    for (const w of workers) await w.stop().catch(() => undefined);
    await cluster.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
