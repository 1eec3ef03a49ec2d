/**
 * A whole NATS engine cluster on one machine, for tests, benchmarks and the
 * CLI (scripts/cluster/cli.ts, `npm run cluster -- up|down|status`):
 *
 *   const c = await startCluster({ dir, nodes: 3 });
 *   c.nodes[0].clientUrl / .mqttUrl / .pid / .kill('SIGKILL') / .restart()
 *   c.clientUrls, c.mqttUrls, c.fleetUsers[0].{username,password}
 *   await c.stop();   // SIGTERM every node and the auth agent, wait for them
 *
 * startCluster writes the configurations (layout.ts), starts the nodes,
 * waits until the routes are up and JetStream has a meta leader
 * (monitoring /routez and /jsz), creates the callbox_auth bucket and starts
 * the auth agent (in this process), which keeps every node's users in step
 * with the bucket.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { connect } from 'nats';
import { AUTH_BUCKET, type AuthAgent, startAuthAgent } from '../../fleet/cluster/auth-agent.js';
import type { NatsUser } from '../../fleet/cluster/nats-acl.js';
import { waitFor } from '../../shared/wait.js';
import { type ClusterLayout, type LayoutOptions, type NodeLayout, prepareCluster, readSecret } from './layout.js';

export const NATS_SERVER = process.env.CALLBOX_NATS_SERVER ?? '/usr/sbin/nats-server';

export interface ClusterNode {
  name: string;
  clientUrl: string;
  mqttUrl: string;
  monitorUrl: string;
  dir: string;
  /** The running process's pid (undefined while down). */
  readonly pid: number | undefined;
  running(): boolean;
  /** Send a signal and wait for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again (same ports, same store) and wait until it has rejoined (routes, JetStream meta leader). */
  restart(): Promise<void>;
}

export interface RunningCluster {
  layout: ClusterLayout;
  nodes: ClusterNode[];
  clientUrls: string[];
  mqttUrls: string[];
  fleetUsers: { username: string; password: string; secretFile: string }[];
  agent: AuthAgent | undefined;
  /**
   * Resolves once every running node has its routes and JetStream a meta
   * leader, and (health, default) each reports healthy (/healthz: its
   * streams current).
   */
  waitReady(timeoutMs?: number, health?: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions extends LayoutOptions {
  /** Run the auth agent in this process (default true). */
  authAgent?: boolean;
  /** Ready within (default 30 s). */
  timeoutMs?: number;
}

async function getJson(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return r.ok ? ((await r.json()) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Is this node part of a formed cluster: routes to the others, a JetStream meta leader, MQTT enabled? */
export async function nodeReady(node: NodeLayout, host: string, peers: number, health = true): Promise<boolean> {
  const base = `http://${host}:${node.httpPort}`;
  const routez = await getJson(`${base}/routez`);
  if (!routez || Number(routez.num_routes ?? 0) < peers) return false;
  const jsz = await getJson(`${base}/jsz`);
  const meta = jsz?.meta_cluster as { leader?: string } | undefined;
  if (!meta?.leader) return false;
  if (!health) return true;
  const healthz = await getJson(`${base}/healthz`);
  return healthz?.status === 'ok';
}

/** Start one node (detached: outlives this process, for the CLI; its log is <node>/nats.log either way). */
export function spawnNode(node: NodeLayout, detached = false): ChildProcess {
  const p = spawn(NATS_SERVER, ['-c', join(node.dir, 'node.conf')], {
    stdio: ['ignore', 'ignore', detached ? 'ignore' : 'pipe'],
    detached,
  });
  let err = '';
  p.stderr?.on('data', (d) => {
    err = (err + d).slice(-4000);
  });
  p.on('exit', (code, signal) => {
    // nats-server ends with status 1 after SIGTERM too: only an exit nobody asked for is reported.
    if (code && !signal && !p.killed) process.stderr.write(`nats-server ${node.name} exited ${code}: ${err}\n`);
  });
  if (detached) p.unref();
  return p;
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

/** Wait until the nodes that are running have formed the cluster. */
export async function waitClusterReady(
  layout: ClusterLayout,
  names?: string[],
  timeoutMs = 30_000,
  health = true,
): Promise<void> {
  const nodes = layout.nodes.filter((n) => !names || names.includes(n.name));
  await waitFor(
    async () =>
      (await Promise.all(nodes.map((n) => nodeReady(n, layout.host, nodes.length - 1, health)))).every(Boolean),
    `cluster of ${nodes.map((n) => n.name).join(', ')}: routes up, JetStream meta leader${health ? ', healthy' : ''}`,
    { timeoutMs, intervalMs: 100 },
  );
}

/** Create the auth bucket (replicated on every node, up to 3) as a fleet user. */
export async function ensureAuthBucket(layout: ClusterLayout, servers: string[]): Promise<void> {
  const f = layout.fleetUsers[0];
  if (!f) throw new Error('no fleet user');
  const nc = await connect({ servers, user: f.username, pass: readSecret(f.secretFile) });
  try {
    await nc.jetstream().views.kv(AUTH_BUCKET, { replicas: layout.mqttStreamReplicas, history: 1 });
  } finally {
    await nc.close();
  }
}

export async function startCluster(o: ClusterOptions): Promise<RunningCluster> {
  const layout = await prepareCluster(o);
  const h = layout.host;
  const procs = new Map<string, ChildProcess>();
  const start = (n: NodeLayout) => procs.set(n.name, spawnNode(n));
  for (const n of layout.nodes) start(n);
  const running = (name: string) => {
    const p = procs.get(name);
    return !!p && p.exitCode === null && p.signalCode === null;
  };
  let agent: AuthAgent | undefined;
  const clientUrls = layout.nodes.map((n) => `nats://${h}:${n.clientPort}`);
  const stopAll = async () => {
    await agent?.stop().catch(() => undefined);
    await Promise.all(
      [...procs.values()].map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        p.kill('SIGTERM');
        await exited(p);
      }),
    );
  };
  const waitReady = (timeoutMs = o.timeoutMs ?? 30_000, health = true) =>
    waitClusterReady(
      layout,
      layout.nodes.filter((n) => running(n.name)).map((n) => n.name),
      timeoutMs,
      health,
    );
  try {
    await waitReady();
    await ensureAuthBucket(layout, clientUrls);
    if (o.authAgent !== false) {
      const staticUsers = JSON.parse(
        (await import('node:fs')).readFileSync(join(layout.dir, 'static-users.json'), 'utf8'),
      ) as NatsUser[];
      agent = await startAuthAgent({
        servers: clientUrls,
        user: layout.agent.username,
        password: readSecret(layout.agent.secretFile),
        staticUsers,
        targets: layout.nodes.map((n) => ({ authFile: join(n.dir, 'auth.conf'), pidFile: join(n.dir, 'nats.pid') })),
      });
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  const nodes: ClusterNode[] = layout.nodes.map((n) => ({
    name: n.name,
    clientUrl: `nats://${h}:${n.clientPort}`,
    mqttUrl: `mqtt://${h}:${n.mqttPort}`,
    monitorUrl: `http://${h}:${n.httpPort}`,
    dir: n.dir,
    get pid() {
      return running(n.name) ? procs.get(n.name)?.pid : undefined;
    },
    running: () => running(n.name),
    kill: async (signal: NodeJS.Signals = 'SIGTERM') => {
      const p = procs.get(n.name);
      if (!p || !running(n.name)) return;
      p.kill(signal);
      await exited(p);
    },
    restart: async () => {
      if (running(n.name)) throw new Error(`${n.name} is running`);
      start(n);
      // Rejoined: routed to the others and following the JetStream meta leader (its streams catch up after).
      await waitReady(o.timeoutMs ?? 30_000, false);
    },
  }));
  return {
    layout,
    nodes,
    clientUrls,
    mqttUrls: nodes.map((n) => n.mqttUrl),
    fleetUsers: layout.fleetUsers.map((f) => ({ ...f, password: readSecret(f.secretFile) })),
    get agent() {
      return agent;
    },
    waitReady,
    stop: stopAll,
  };
}
