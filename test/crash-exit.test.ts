/**
 * Both programs, run for real as child processes (node --import tsx, as the
 * systemd units do), exit with 70 after an unhandled promise rejection or an
 * uncaught exception, logging it, so that systemd (Restart=always) starts
 * them again. The failure is injected by a preloaded module on SIGUSR2
 * (test/fixtures/inject-unhandled.mjs) once the program says it runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT_CRASH } from '../shared/crash.js';
import { waitFor } from '../shared/wait.js';

const repo = resolve(import.meta.dirname, '..');
const inject = join(repo, 'test', 'fixtures', 'inject-unhandled.mjs');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function run(program: string, args: string[], env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--import', inject, join(repo, program), ...args], {
    cwd: repo,
    env: { ...process.env, CALLBOX_LOG_FORMAT: 'json', CALLBOX_LOG_LEVEL: 'info', NOTIFY_SOCKET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const io = { out: '', err: '' };
  proc.stdout?.on('data', (d: Buffer) => {
    io.out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    io.err += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return { proc, io, exited };
}

/** waitFor, failing at once (with the child's stderr) if the child exits first. */
async function until(pred: () => boolean, what: string, p: ChildProcess, io: { out: string; err: string }) {
  try {
    await waitFor(
      () => {
        if (p.exitCode !== null) throw new Error(`exited (${p.exitCode}) before ${what}: ${io.err.slice(-2000)}`);
        return pred();
      },
      what,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
  } catch (e) {
    if (p.exitCode === null) throw new Error(`${(e as Error).message}: ${io.out.slice(-2000)}`);
    throw e;
  }
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'callbox-crash-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('exit on an unhandled failure', () => {
  it('the box program logs an unhandled rejection and exits 70', async () => {
    const dir = tempDir();
    const config = join(dir, 'device.yaml');
    writeFileSync(
      config,
      [
        'box:',
        '  serial: CB-CRASH-0001',
        `  dataDir: ${dir}`,
        'mqtt:',
        '  url: mqtt://127.0.0.1:9', // nobody there: the box keeps trying to claim
        'modem:',
        `  path: ${join(dir, 'no-modem')}`,
        '',
      ].join('\n'),
    );
    const { proc, io, exited } = run('device/main.ts', ['--config', config]);
    await until(() => io.out.includes('"msg":"box started"'), 'the box to start', proc, io);
    proc.kill('SIGUSR2');
    expect(await exited).toBe(EXIT_CRASH);
    expect(io.out).toMatch(/"level":"fatal".*"kind":"unhandledRejection".*exiting with 70 so that systemd restarts/);
    expect(io.err).toContain('callbox-device: unhandledRejection: Error: injected: a rejection nobody handles');
  }, 90_000);

  it('the fleet logs an uncaught exception and exits 70', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'fleet.yaml'), 'log:\n  level: info\n');
    const { proc, io, exited } = run('fleet/main.ts', [], {
      CALLBOX_TEST_THROW: '1',
      CALLBOX_FLEET_CONFIG: join(dir, 'fleet.yaml'),
      CALLBOX_FLEET__MQTT__PORT: '0',
      CALLBOX_FLEET__MQTT__HOST: '127.0.0.1',
      CALLBOX_FLEET__HTTP__PORT: '0',
      CALLBOX_FLEET__STORE__SQLITEPATH: join(dir, 'fleet.db'),
      CALLBOX_FLEET__VOICEMAIL__DIR: join(dir, 'voicemail'),
      CALLBOX_FLEET__OPS__BOOTSTRAPPASSWORDFILE: join(dir, 'admin.secret'),
    });
    await until(() => io.out.includes('fleet running'), 'the fleet to run', proc, io);
    proc.kill('SIGUSR2');
    expect(await exited).toBe(EXIT_CRASH);
    expect(io.out).toMatch(/"level":"fatal".*"kind":"uncaughtException"/);
    expect(io.err).toContain('fleet: uncaughtException: Error: injected: an exception nobody catches');
  }, 90_000);
});
