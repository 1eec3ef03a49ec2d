/**
 * Fleet workers as processes of their own (tests and benchmarks of several
 * fleet processes on one store): startFleetWorker(name, config) forks
 * scripts/lib/fleet-worker-child.ts with the configuration values and
 * resolves once the fleet is connected; kill('SIGKILL') takes it away
 * without a goodbye, stop() ends it in order.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FleetMetrics } from '../../fleet/fleet.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface FleetWorker {
  name: string;
  proc: ChildProcess;
  metrics(): Promise<WorkerMetrics>;
  running(): boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export interface WorkerMetrics {
  metrics: FleetMetrics;
  /** The worker process's resident memory (bytes). */
  rss: number;
  /** Embedded mode: the broker's child process and its plaintext MQTT port. */
  brokerPid?: number;
  brokerPort?: number;
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

export async function startFleetWorker(
  name: string,
  config: Record<string, unknown>,
  opts: { alerts?: boolean; timeoutMs?: number } = {},
): Promise<FleetWorker> {
  const proc = fork(join(HERE, 'fleet-worker-child.ts'), [JSON.stringify({ config, alerts: opts.alerts })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let err = '';
  proc.stderr?.on('data', (d) => {
    err = (err + d).slice(-4000);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`fleet worker ${name} not ready within ${opts.timeoutMs ?? 60_000} ms: ${err}`));
    }, opts.timeoutMs ?? 60_000);
    proc.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fleet worker ${name} exited (${code}) before it was ready: ${err}`));
    });
  });
  let seq = 0;
  const running = () => proc.exitCode === null && proc.signalCode === null;
  return {
    name,
    proc,
    running,
    metrics: () =>
      new Promise((resolve, reject) => {
        if (!running()) return reject(new Error(`fleet worker ${name} is not running`));
        const id = ++seq;
        const on = (m: WorkerMetrics & { t: string; id?: number }) => {
          if (m.t !== 'metrics' || m.id !== id) return;
          proc.off('message', on);
          resolve({ metrics: m.metrics, rss: m.rss, brokerPid: m.brokerPid, brokerPort: m.brokerPort });
        };
        proc.on('message', on);
        proc.send({ t: 'metrics', id });
      }),
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (!running()) return;
      proc.kill(signal);
      await exited(proc);
    },
    stop: async () => {
      if (!running()) return;
      proc.send({ t: 'stop' });
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited(proc);
      clearTimeout(t);
    },
  };
}
