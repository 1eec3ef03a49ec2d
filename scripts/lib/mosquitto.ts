/** A Mosquitto started on its own ephemeral port with a generated configuration (never the machine's 1883), for tests and benches. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { waitFor } from '../../shared/wait.js';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ port, host: '127.0.0.1' }, () => {
      c.end();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

export interface RunningMosquitto {
  proc: ChildProcess;
  stop(): Promise<void>;
  output(): string;
}

export async function startMosquitto(confFile: string, port: number): Promise<RunningMosquitto> {
  const proc = spawn('/usr/sbin/mosquitto', ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    out += d;
  });
  try {
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`exited (${proc.exitCode})`);
        return accepts(port);
      },
      `mosquitto listening on ${port}`,
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`mosquitto did not start on ${port} (${(e as Error).message}): ${out}`);
  }
  return {
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
