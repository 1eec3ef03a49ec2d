/**
 * The files and ports of a NATS engine cluster on one machine (tests,
 * benchmarks, a demo): everything under one folder, each node in its own.
 *
 *   <dir>/cluster.json              this layout (ports, names; pids while up by the CLI)
 *   <dir>/secrets/<user>.secret     the fleet users' and the auth agent's secrets (0600)
 *   <dir>/static-users.json         their bcrypt hashes (the agent puts them in every auth.conf)
 *   <dir>/<node>/node.conf          the node's configuration (includes auth.conf)
 *   <dir>/<node>/auth.conf          users and permissions, rewritten by the auth agent
 *   <dir>/<node>/js/                JetStream store
 *   <dir>/<node>/nats.pid, nats.log
 *
 * Ports, with --base-port B: node i (0, 1, 2) listens on B+10i (NATS
 * clients), B+10i+1 (cluster routes), B+10i+2 (MQTT), B+10i+3 (monitoring
 * HTTP). Without a base port, free ports are picked once and kept in
 * cluster.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bcryptHashes } from '../../fleet/auth/bcrypt.js';
import { newSecret } from '../../fleet/auth/password.js';
import { AUTH_AGENT_USER, agentPermissions } from '../../fleet/cluster/auth-agent.js';
import { type NatsUser, natsUserFor, renderAuthorization } from '../../fleet/cluster/nats-acl.js';
import { freePort } from '../lib/mosquitto.js';

export interface NodeLayout {
  name: string;
  dir: string;
  clientPort: number;
  routePort: number;
  mqttPort: number;
  httpPort: number;
}

export interface ClusterLayout {
  dir: string;
  host: string;
  clusterName: string;
  nodes: NodeLayout[];
  /** Fleet users (fleet:<name>), each with its secret file. */
  fleetUsers: { username: string; secretFile: string }[];
  agent: { username: string; secretFile: string };
  mqttStreamReplicas: number;
  /** Pids of the nodes and the auth agent while brought up by the CLI. */
  pids?: { nodes: Record<string, number>; agent?: number };
}

export interface LayoutOptions {
  dir: string;
  nodes?: number;
  basePort?: number;
  host?: string;
  /** Fleet users to create (default ["fleet:core"]); each fleet worker logs in as one. */
  fleetUsers?: string[];
}

const secretFileOf = (dir: string, username: string) => join(dir, 'secrets', `${username.replace(':', '-')}.secret`);

export function readLayout(dir: string): ClusterLayout | undefined {
  const file = join(resolve(dir), 'cluster.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterLayout) : undefined;
}

export function saveLayout(layout: ClusterLayout): void {
  writeFileSync(join(layout.dir, 'cluster.json'), `${JSON.stringify(layout, null, 2)}\n`);
}

export function readSecret(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/** Make (or reuse, when the folder has one with as many nodes) the layout, secrets and node configurations. */
export async function prepareCluster(o: LayoutOptions): Promise<ClusterLayout> {
  const dir = resolve(o.dir);
  const n = o.nodes ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`nodes ${o.nodes}: accepted 1..9`);
  if (o.basePort !== undefined && (!Number.isInteger(o.basePort) || o.basePort < 1024 || o.basePort > 65_000)) {
    throw new Error(`base port ${o.basePort}: accepted 1024..65000`);
  }
  mkdirSync(join(dir, 'secrets'), { recursive: true, mode: 0o700 });
  const old = readLayout(dir);
  const host = o.host ?? '127.0.0.1';
  const fleetNames = o.fleetUsers ?? old?.fleetUsers.map((f) => f.username) ?? ['fleet:core'];
  for (const u of fleetNames) {
    if (!/^fleet:[a-z0-9][a-z0-9-]{0,30}$/.test(u)) throw new Error(`fleet user "${u}": accepted fleet:<name>`);
  }
  let nodes: NodeLayout[];
  if (old && old.nodes.length === n && (o.basePort === undefined || old.nodes[0]?.clientPort === o.basePort)) {
    nodes = old.nodes;
  } else {
    nodes = [];
    for (let i = 0; i < n; i++) {
      const b = o.basePort;
      nodes.push({
        name: `n${i + 1}`,
        dir: join(dir, `n${i + 1}`),
        clientPort: b ? b + 10 * i : await freePort(),
        routePort: b ? b + 10 * i + 1 : await freePort(),
        mqttPort: b ? b + 10 * i + 2 : await freePort(),
        httpPort: b ? b + 10 * i + 3 : await freePort(),
      });
    }
  }
  const layout: ClusterLayout = {
    dir,
    host,
    clusterName: 'callbox',
    nodes,
    fleetUsers: fleetNames.map((username) => ({ username, secretFile: secretFileOf(dir, username) })),
    agent: { username: AUTH_AGENT_USER, secretFile: secretFileOf(dir, AUTH_AGENT_USER) },
    mqttStreamReplicas: Math.min(3, n),
  };
  const staticUsers = await writeStaticUsers(dir, [...layout.fleetUsers, layout.agent]);
  for (const node of nodes) {
    mkdirSync(join(node.dir, 'js'), { recursive: true });
    const authFile = join(node.dir, 'auth.conf');
    // The agent rewrites it with the boxes' users; until it runs, the static users only.
    if (!existsSync(authFile)) writeFileSync(authFile, renderAuthorization(staticUsers), { mode: 0o600 });
    writeFileSync(join(node.dir, 'node.conf'), nodeConfig(layout, node));
  }
  saveLayout(layout);
  return layout;
}

/**
 * The engine's fixed users (fleet workers, the auth agent): a secret file
 * each (made if missing, 0600) and their bcrypt hashes with permissions in
 * <dir>/static-users.json, which the auth agent puts in every auth.conf.
 */
export async function writeStaticUsers(
  dir: string,
  users: { username: string; secretFile: string }[],
): Promise<NatsUser[]> {
  for (const u of users) {
    if (!existsSync(u.secretFile)) writeFileSync(u.secretFile, `${newSecret()}\n`, { mode: 0o600 });
  }
  const hashes = await bcryptHashes(users.map((u) => readSecret(u.secretFile)));
  const staticUsers: NatsUser[] = users.map((u, i) => {
    const hash = hashes[i] as string;
    if (u.username === AUTH_AGENT_USER) return { user: u.username, password: hash, permissions: agentPermissions() };
    const user = natsUserFor(u.username, hash);
    if (!user) throw new Error(`"${u.username}" names no engine identity (fleet:<name>)`);
    return user;
  });
  writeFileSync(join(dir, 'static-users.json'), `${JSON.stringify(staticUsers, null, 2)}\n`, { mode: 0o600 });
  return staticUsers;
}

/** Where a fixed user's secret is kept under a folder. */
export function secretFileIn(dir: string, username: string): string {
  return secretFileOf(dir, username);
}

/** One node's nats-server configuration. */
export function nodeConfig(layout: ClusterLayout, node: NodeLayout): string {
  const h = layout.host;
  const routes = layout.nodes.map((x) => `    "nats-route://${h}:${x.routePort}"`);
  return [
    '# Generated by scripts/cluster (npm run cluster): one node of the Callbox engine.',
    `server_name: "${node.name}"`,
    `listen: "${h}:${node.clientPort}"`,
    `http: "${h}:${node.httpPort}"`,
    `pid_file: "${join(node.dir, 'nats.pid')}"`,
    `log_file: "${join(node.dir, 'nats.log')}"`,
    'max_payload: 1MB',
    'jetstream {',
    `  store_dir: "${join(node.dir, 'js')}"`,
    '  max_memory_store: 256MB',
    '  max_file_store: 8GB',
    '}',
    'cluster {',
    `  name: "${layout.clusterName}"`,
    `  listen: "${h}:${node.routePort}"`,
    '  routes: [',
    ...routes,
    '  ]',
    '}',
    'mqtt {',
    `  listen: "${h}:${node.mqttPort}"`,
    // sessions, retained messages and QoS 1 messages in replicated streams
    `  stream_replicas: ${layout.mqttStreamReplicas}`,
    '  ack_wait: "30s"',
    '  max_ack_pending: 1024',
    '}',
    'include "./auth.conf"',
    '',
  ].join('\n');
}
