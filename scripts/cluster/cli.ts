/**
 * npm run cluster -- up|down|status [--nodes 3] [--dir var/cluster] [--base-port 14222]
 *                                   [--fleet-users fleet:w1,fleet:w2] [--host 127.0.0.1]
 *
 * up:     write the configurations (scripts/cluster/layout.ts), start the
 *         nodes and the auth agent in the background, wait until the
 *         cluster has formed (routes, JetStream meta leader), print the
 *         URLs and the fleet's settings; pids go into <dir>/cluster.json.
 * down:   SIGTERM the agent and the nodes and wait until they are gone.
 * status: each node's process, routes, JetStream leader and ports (--json).
 * agent:  (started by up) the auth agent for the nodes in --dir; on an engine
 *         machine of a production cluster: agent --config agent.json, with
 *         { "servers": [...], "user": "engine:auth-agent", "passwordFile": ...,
 *           "staticUsersFile": ..., "targets": [{ "authFile": ..., "pidFile": ... }] }
 * users:  write the fixed users for a production cluster: --out <dir> gets
 *         secrets/<user>.secret and static-users.json (fleet users from
 *         --fleet-users, and the auth agent's).
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { AUTH_AGENT_USER, startAuthAgent } from '../../fleet/cluster/auth-agent.js';
import type { NatsUser } from '../../fleet/cluster/nats-acl.js';
import { waitFor } from '../../shared/wait.js';
import { ensureAuthBucket, nodeReady, spawnNode, waitClusterReady } from './cluster.js';
import {
  type ClusterLayout,
  prepareCluster,
  readLayout,
  readSecret,
  saveLayout,
  secretFileIn,
  writeStaticUsers,
} from './layout.js';

function int(what: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${what} "${v}" is not a whole number`);
    return n;
  };
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function mustLayout(dir: string): ClusterLayout {
  const l = readLayout(dir);
  if (!l) throw new Error(`no cluster in ${dir} (no cluster.json): run \`npm run cluster -- up --dir ${dir}\` first`);
  return l;
}

function fleetSettings(l: ClusterLayout): string[] {
  const f = l.fleetUsers[0];
  return [
    `MQTT (boxes):   ${l.nodes.map((n) => `mqtt://${l.host}:${n.mqttPort}`).join(',')}`,
    `NATS (fleet):   ${l.nodes.map((n) => `nats://${l.host}:${n.clientPort}`).join(',')}`,
    `fleet users:    ${l.fleetUsers.map((u) => `${u.username} (secret in ${u.secretFile})`).join(', ')}`,
    'fleet settings: CALLBOX_FLEET__MQTT__MODE=cluster ' +
      `CALLBOX_FLEET__MQTT__CLUSTER_MQTT_URLS=${l.nodes.map((n) => `mqtt://${l.host}:${n.mqttPort}`).join(',')} ` +
      `CALLBOX_FLEET__MQTT__CLUSTER_NATS_URLS=${l.nodes.map((n) => `nats://${l.host}:${n.clientPort}`).join(',')} ` +
      `CALLBOX_FLEET__MQTT__EXTERNAL_USERNAME=${f?.username} CALLBOX_FLEET__MQTT__EXTERNAL_PASSWORD_FILE=${f?.secretFile}`,
  ];
}

async function up(o: { dir: string; nodes: number; basePort?: number; host?: string; fleetUsers?: string }) {
  const old = readLayout(o.dir);
  if (old?.pids && Object.values(old.pids.nodes).some(alive)) {
    throw new Error(`the cluster in ${o.dir} is already up (npm run cluster -- status --dir ${o.dir})`);
  }
  const layout = await prepareCluster({
    dir: o.dir,
    nodes: o.nodes,
    ...(o.basePort !== undefined ? { basePort: o.basePort } : {}),
    ...(o.host ? { host: o.host } : {}),
    ...(o.fleetUsers ? { fleetUsers: o.fleetUsers.split(',').map((s) => s.trim()) } : {}),
  });
  const nodes: Record<string, number> = {};
  for (const n of layout.nodes) nodes[n.name] = spawnNode(n, true).pid as number;
  layout.pids = { nodes };
  saveLayout(layout);
  await waitClusterReady(layout);
  const servers = layout.nodes.map((n) => `nats://${layout.host}:${n.clientPort}`);
  await ensureAuthBucket(layout, servers);
  const log = openSync(join(layout.dir, 'agent.log'), 'a');
  const agent = spawn(
    process.execPath,
    [...process.execArgv, process.argv[1] as string, 'agent', '--dir', layout.dir],
    {
      detached: true,
      stdio: ['ignore', log, log],
    },
  );
  agent.unref();
  layout.pids = { nodes, ...(agent.pid ? { agent: agent.pid } : {}) };
  saveLayout(layout);
  console.log(`cluster up in ${layout.dir}: ${layout.nodes.length} nodes, JetStream has a leader`);
  for (const line of fleetSettings(layout)) console.log(line);
}

async function down(dir: string) {
  const l = mustLayout(dir);
  const pids = [l.pids?.agent, ...Object.values(l.pids?.nodes ?? {})].filter((p): p is number => alive(p));
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  await waitFor(() => pids.every((p) => !alive(p)), `cluster processes ${pids.join(', ')} to end`, {
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  delete l.pids;
  saveLayout(l);
  console.log(`cluster in ${l.dir} stopped (${pids.length} processes); its data stays in ${l.dir}`);
}

async function status(dir: string, json: boolean) {
  const l = mustLayout(dir);
  const rows = await Promise.all(
    l.nodes.map(async (n) => {
      const pid = l.pids?.nodes[n.name];
      const running = alive(pid);
      return {
        node: n.name,
        pid: running ? pid : null,
        ready: running ? await nodeReady(n, l.host, l.nodes.length - 1) : false,
        client: n.clientPort,
        route: n.routePort,
        mqtt: n.mqttPort,
        http: n.httpPort,
      };
    }),
  );
  const agent = alive(l.pids?.agent) ? l.pids?.agent : null;
  if (json) {
    console.log(JSON.stringify({ dir: l.dir, nodes: rows, agent }, null, 2));
  } else {
    console.table(rows);
    console.log(`auth agent: ${agent ? `running (pid ${agent})` : 'not running'}`);
    for (const line of fleetSettings(l)) console.log(line);
  }
  process.exitCode = rows.every((r) => r.ready) && agent ? 0 : 1;
}

interface AgentFile {
  servers: string[];
  user: string;
  passwordFile: string;
  staticUsersFile: string;
  targets: { authFile: string; pidFile: string }[];
}

function agentSettings(o: { dir: string; config?: string }): AgentFile {
  if (o.config) {
    const c = JSON.parse(readFileSync(o.config, 'utf8')) as Partial<AgentFile>;
    for (const k of ['servers', 'user', 'passwordFile', 'staticUsersFile', 'targets'] as const) {
      if (!c[k]) throw new Error(`${o.config}: "${k}" is missing (see scripts/cluster/cli.ts)`);
    }
    return c as AgentFile;
  }
  const l = mustLayout(o.dir);
  return {
    servers: l.nodes.map((n) => `nats://${l.host}:${n.clientPort}`),
    user: l.agent.username,
    passwordFile: l.agent.secretFile,
    staticUsersFile: join(l.dir, 'static-users.json'),
    targets: l.nodes.map((n) => ({ authFile: join(n.dir, 'auth.conf'), pidFile: join(n.dir, 'nats.pid') })),
  };
}

async function agent(o: { dir: string; config?: string }) {
  const c = agentSettings(o);
  const a = await startAuthAgent({
    servers: c.servers,
    user: c.user,
    password: readSecret(c.passwordFile),
    staticUsers: JSON.parse(readFileSync(c.staticUsersFile, 'utf8')) as NatsUser[],
    targets: c.targets,
  });
  const stop = () => void a.stop().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

const program = new Command('cluster').description('a NATS engine cluster on this machine (tests, benchmarks)');
const dirOpt = ['--dir <dir>', 'folder for configurations, stores and logs', 'var/cluster'] as const;
program
  .command('up')
  .option(...dirOpt)
  .option('--nodes <n>', 'nodes (1..9)', int('nodes'), 3)
  .option('--base-port <port>', 'node i listens on port+10i (clients), +1 (routes), +2 (MQTT), +3 (HTTP)', int('port'))
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--fleet-users <list>', 'fleet users, comma separated (fleet:<name>)')
  .action((o) => up(o));
program
  .command('down')
  .option(...dirOpt)
  .action((o) => down(o.dir));
program
  .command('status')
  .option(...dirOpt)
  .option('--json', 'as JSON')
  .action((o) => status(o.dir, !!o.json));
program
  .command('agent')
  .option(...dirOpt)
  .option('--config <file>', 'settings of an agent on a production engine machine (JSON, see the header)')
  .action((o) => agent(o));
program
  .command('users')
  .requiredOption('--out <dir>', 'folder for secrets/ and static-users.json')
  .option('--fleet-users <list>', 'fleet users, comma separated (fleet:<name>)', 'fleet:core')
  .action(async (o: { out: string; fleetUsers: string }) => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(o.out, 'secrets'), { recursive: true, mode: 0o700 });
    const names = [...o.fleetUsers.split(',').map((s) => s.trim()), AUTH_AGENT_USER];
    const users = await writeStaticUsers(
      o.out,
      names.map((username) => ({ username, secretFile: secretFileIn(o.out, username) })),
    );
    console.log(`wrote ${join(o.out, 'static-users.json')} (${users.map((u) => u.user).join(', ')}) and their secrets`);
  });
program.parseAsync().catch((e: Error) => {
  console.error(`cluster: ${e.message}`);
  process.exit(1);
});
