/**
 * Every benchmark exits by itself when its work is done (issue 19: after
 * `npm run bench:modem` printed its figures the process ran on for minutes,
 * a serial reader spinning on a closed pty).
 *
 * Why a spawned-child check and not vitest's leak detection: test files run
 * in worker processes that vitest tears down itself, so a handle a test
 * leaves open never keeps anything alive there and nothing fails; and
 * `--detectAsyncLeaks` hooks every async resource of every file (slow, and
 * it reports resources that are closed a moment later). What users and CI
 * run are these scripts as processes of their own: each is started here with
 * a small workload and must exit with code 0 on its own within a generous
 * deadline; one that does not is killed and the test fails, naming it.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '..');
/** Generous: the machine is shared; a hung process would never finish at all. */
const DEADLINE_MS = 120_000;

function runToExit(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; hung: boolean }> {
  return new Promise((done) => {
    const p = spawn(cmd, args, { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-4000);
    });
    p.stderr?.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-4000);
    });
    let hung = false;
    const t = setTimeout(() => {
      hung = true;
      p.kill('SIGKILL');
    }, DEADLINE_MS);
    p.once('exit', (code) => {
      clearTimeout(t);
      done({ code, out, hung });
    });
  });
}

describe('benchmark scripts exit by themselves', () => {
  it('npm run bench:modem', { timeout: DEADLINE_MS + 10_000 }, async () => {
    const r = await runToExit('npm', ['run', '--silent', 'bench:modem'], { BENCH_RINGS: '20' });
    expect(r.hung, `bench:modem still running after ${DEADLINE_MS} ms:\n${r.out}`).toBe(false);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/RING to 'ring' event over the pty \(20 rings\)/);
  });

  it('npm run bench:modem-replug (2 cycles)', { timeout: DEADLINE_MS + 10_000 }, async () => {
    const r = await runToExit('npm', ['run', '--silent', 'bench:modem-replug'], { BENCH_CYCLES: '2', BENCH_SEED: '1' });
    expect(r.hung, `bench:modem-replug still running after ${DEADLINE_MS} ms:\n${r.out}`).toBe(false);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/rings tracked 2\/2/);
  });

  it('npm run bench:serialport-eof (2 rounds)', { timeout: DEADLINE_MS + 10_000 }, async () => {
    const r = await runToExit('npm', ['run', '--silent', 'bench:serialport-eof'], { BENCH_ROUNDS: '2' });
    expect(r.hung, `bench:serialport-eof still running after ${DEADLINE_MS} ms:\n${r.out}`).toBe(false);
    expect(r.code, r.out).toBe(0);
    // The guarded transport always reports the port gone.
    expect(r.out).toMatch(/guarded binding: 2 rounds; never reported gone within \d+ ms: 0/);
  });
});
