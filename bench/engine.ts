/**
 * `npm run bench:engine [-- --publishers 50 --messages 200 --inflight 8 --target nats|<mqtt url>]`
 *
 * The engine alone, for choosing it (docs/DEPENDENCIES.md, nats-server):
 * P MQTT publishers send QoS 1 messages (an event batch's size, 600 bytes)
 * with at most --inflight unacknowledged each; one persistent-session
 * subscriber (the fleet's shape: clean false, QoS 1, callbox/v1/+/events)
 * receives them. Printed: messages/s acknowledged to the publishers and
 * delivered to the subscriber, publish-to-delivery latency p50/p99,
 * messages lost (acknowledged, never delivered within 30 s) and the
 * engine's RSS.
 *
 * --target nats (default): a three-node NATS cluster started here
 * (scripts/cluster, JetStream R3). --target mqtt://user:pass@host:port: any
 * other MQTT broker already running (a RabbitMQ node with its MQTT plugin).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';

process.env.CALLBOX_LOG_LEVEL ??= 'error';
const { startCluster } = await import('../scripts/cluster/cluster.js');
const { waitFor } = await import('../shared/wait.js');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}
const P = Number(arg('publishers', '50'));
const M = Number(arg('messages', '200'));
const INFLIGHT = Number(arg('inflight', '8'));
const TARGET = arg('target', 'nats');

const pct = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;

function rssMb(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function run(urls: string[], login: { username: string; password: string }, pids: (number | undefined)[]) {
  const opts = { ...login, reconnectPeriod: 500, connectTimeout: 30_000, protocolVersion: 4 as const };
  const sub = await mqtt.connectAsync(urls[0] as string, { ...opts, clientId: 'bench-sub', clean: false });
  const sent = new Map<string, number>();
  const latencies: number[] = [];
  let delivered = 0;
  sub.on('message', (_t, payload) => {
    const id = payload.subarray(0, 24).toString().trim();
    const at = sent.get(id);
    if (at !== undefined) {
      latencies.push(Date.now() - at);
      sent.delete(id);
      delivered++;
    }
  });
  await sub.subscribeAsync('callbox/v1/+/events', { qos: 1 });
  const pubs: MqttClient[] = [];
  for (let i = 0; i < P; i++) {
    pubs.push(
      await mqtt.connectAsync(urls[i % urls.length] as string, { ...opts, clientId: `bench-pub-${i}`, clean: true }),
    );
  }
  const pad = 'x'.repeat(600);
  const t0 = Date.now();
  let acked = 0;
  await Promise.all(
    pubs.map(async (c, i) => {
      let next = 0;
      const worker = async () => {
        while (next < M) {
          const n = next++;
          const id = `${i}-${n}`.padEnd(24);
          sent.set(id.trim(), Date.now());
          await c.publishAsync(`callbox/v1/bench-${i}/events`, `${id}${pad}`, { qos: 1 });
          acked++;
        }
      };
      await Promise.all(Array.from({ length: INFLIGHT }, worker));
    }),
  );
  const ackS = (Date.now() - t0) / 1000;
  await waitFor(() => delivered >= acked, 'every acknowledged message delivered', 30_000).catch(() => undefined);
  const allS = (Date.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const rss = pids.reduce((s: number, p) => s + rssMb(p), 0);
  for (const c of pubs) c.end(true);
  await sub.endAsync(true);
  return {
    target: TARGET.replace(/\/\/[^@/]*@/, '//'),
    messages: P * M,
    ackedPerS: Math.round(acked / ackS),
    deliveredPerS: Math.round(delivered / allS),
    p50ms: pct(latencies, 50),
    p99ms: pct(latencies, 99),
    lost: acked - delivered,
    engineRssMb: Math.round(rss),
  };
}

console.log(
  `engine bench: ${P} publishers x ${M} QoS 1 messages, ${INFLIGHT} in flight each; ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}`,
);
if (TARGET === 'nats') {
  const dir = mkdtempSync(join(tmpdir(), 'callbox-engine-bench-'));
  const c = await startCluster({ dir, nodes: 3 });
  try {
    const f = c.fleetUsers[0] as { username: string; password: string };
    console.table([
      await run(
        c.mqttUrls,
        f,
        c.nodes.map((n) => n.pid),
      ),
    ]);
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  const u = new URL(TARGET);
  const login = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  u.username = '';
  u.password = '';
  console.table([await run([u.toString().replace(/\/$/, '')], login, [Number(arg('pid', '0')) || undefined])]);
}
