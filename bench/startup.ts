/**
 * `npm run bench:startup`: the box program as production runs it (`node dist/device/main.js`, built by
 * `npm run build`, with the Node.js flags of systemd/callbox-device.service) side by side with the same build on Node's
 * default flags and the same program through tsx (`node --import tsx device/main.ts`), in one run:
 * time from spawn to "online" at a broker, and the process's RSS and CPU after 10 s idle online. Alternates the two
 * RUNS times (CALLBOX_BENCH_RUNS, default 3) and prints each run and the medians.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { CredentialsFile } from '../device/uplink/credentials.js';
import { procStat } from './proc.js';
import { unitNodeFlags } from './unit-flags.js';

const repo = resolve(import.meta.dirname, '..');
const RUNS = Number(process.env.CALLBOX_BENCH_RUNS ?? 3);
const IDLE_S = 10;

/** RSS (MiB) of a process and its children (tsx keeps an esbuild service process beside node). */
function treeRssMiB(pid: number): number {
  let total = procStat(pid).rssMiB;
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const c of children) total += treeRssMiB(Number(c));
  } catch {
    /* gone */
  }
  return total;
}

type Kind = 'built' | 'built-default' | 'tsx';

async function once(kind: Kind, brokerUrl: string, n: number) {
  const deviceId = `bench-start-${kind}-${n}`;
  const dataDir = mkdtempSync(join(os.tmpdir(), 'bench-start-'));
  await new CredentialsFile(dataDir).save({
    v: 1,
    deviceId,
    username: deviceId,
    password: 'bench-start-password-01',
    caPem: null,
    brokerUrl: null,
    provisionedAt: new Date().toISOString(),
  });
  const config = join(dataDir, 'device.yaml');
  writeFileSync(
    config,
    `box:\n  serial: CB-BENCH-${n}\n  dataDir: ${dataDir}\nmqtt:\n  url: ${brokerUrl}\nmodem:\n  path: ${join(dataDir, 'none')}\nio:\n  board: virtual\nlog:\n  level: warn\n`,
  );
  const watcher = await mqtt.connectAsync(brokerUrl, { clientId: `watch-${deviceId}`, protocolVersion: 4 });
  const online = new Promise<void>((r) =>
    watcher.on('message', (_t, p) => {
      if (p.toString().includes('"online"')) r();
    }),
  );
  await watcher.subscribeAsync(`callbox/v1/${deviceId}/status`, { qos: 1 });
  const args =
    kind === 'tsx'
      ? ['--import', 'tsx', join(repo, 'device', 'main.ts'), '--config', config]
      : [...(kind === 'built' ? unitNodeFlags() : []), join(repo, 'dist', 'device', 'main.js'), '--config', config];
  const t0 = performance.now();
  const proc = spawn(process.execPath, args, {
    stdio: 'ignore',
    cwd: repo,
    env: { ...process.env, NOTIFY_SOCKET: '' },
  });
  await online;
  const startMs = performance.now() - t0;
  const pid = proc.pid ?? 0;
  const a = procStat(pid);
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const b = procStat(pid);
  const result = {
    startMs,
    rssMiB: b.rssMiB,
    treeMiB: treeRssMiB(pid),
    cpuPct: ((b.cpuTicks - a.cpuTicks) / 100 / IDLE_S) * 100,
  };
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  await watcher.endAsync(true);
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN;

const cpus = os.cpus();
console.log(
  `machine: ${cpus[0]?.model ?? 'unknown cpu'} x${cpus.length}, node ${process.version}, load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
execFileSync(process.execPath, [join(repo, 'scripts', 'build.mjs')], { stdio: 'inherit' });
const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
const KINDS: Kind[] = ['built', 'built-default', 'tsx'];
const results: Record<Kind, Awaited<ReturnType<typeof once>>[]> = { built: [], 'built-default': [], tsx: [] };
console.log(`built: the unit's flags (${unitNodeFlags().join(' ') || 'none'}); built-default: Node's defaults`);
for (let n = 0; n < RUNS; n++) {
  for (const kind of KINDS) {
    const r = await once(kind, url, n);
    results[kind].push(r);
    console.log(
      `run ${n + 1} ${kind.padEnd(13)}: spawn to online ${r.startMs.toFixed(0)} ms, idle RSS ${r.rssMiB.toFixed(1)} MiB ` +
        `(with children ${r.treeMiB.toFixed(1)} MiB), idle CPU ${r.cpuPct.toFixed(2)} %`,
    );
  }
}
for (const kind of KINDS) {
  const rs = results[kind];
  console.log(
    `median ${kind.padEnd(13)}: spawn to online ${median(rs.map((r) => r.startMs)).toFixed(0)} ms, idle RSS ` +
      `${median(rs.map((r) => r.rssMiB)).toFixed(1)} MiB (with children ${median(rs.map((r) => r.treeMiB)).toFixed(1)} MiB)`,
  );
}
const ratio = median(results.tsx.map((r) => r.startMs)) / median(results.built.map((r) => r.startMs));
console.log(`the built box reaches online ${ratio.toFixed(2)}x as fast as through tsx`);
await new Promise<void>((r) => server.close(() => r()));
await new Promise<void>((r) => broker.close(() => r()));
process.exit(0);
