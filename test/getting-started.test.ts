/**
 * docs/GETTING-STARTED.md, followed command by command from a fresh data folder: the fleet (`npm start`), the
 * CLI (`npx fleet ...`), the emulated hardware (`npm run sim`), the real box program (`npx callbox-device`), a
 * box online, a call rung through it, an alert acknowledged. Each step is timed and the total printed. The only
 * difference with a newcomer's run: the fleet's data folder is a fresh temporary one and its ports are ephemeral
 * (CALLBOX_FLEET__DATA__DIR, CALLBOX_FLEET__MQTT__PORT=0, set here, not in the doc), so the test runs beside
 * the machine's Mosquitto on 1883. Every command run is checked to be in the doc, verbatim.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../shared/wait.js';

const repo = join(import.meta.dirname, '..');
const doc = readFileSync(join(repo, 'docs', 'GETTING-STARTED.md'), 'utf8');

const tmp = mkdtempSync(join(tmpdir(), 'getting-started-'));
const data = join(tmp, 'var');
const env: NodeJS.ProcessEnv = { ...process.env };
for (const k of Object.keys(env)) if (k.startsWith('CALLBOX_')) delete env[k];
Object.assign(env, {
  CALLBOX_FLEET__DATA__DIR: data,
  CALLBOX_FLEET__MQTT__PORT: '0',
  CALLBOX_FLEET__MQTT__HOST: '127.0.0.1',
  CALLBOX_FLEET__HTTP__PORT: '0',
});

/** The doc's command with its placeholders filled and ./var replaced by the fresh data folder. */
function fromDoc(command: string, fill: Record<string, string> = {}): string {
  expect(doc, `docs/GETTING-STARTED.md has \`${command}\``).toContain(command);
  let c = command.replace(/(^|\s)var\//g, `$1${data}/`);
  for (const [k, v] of Object.entries(fill)) c = c.replaceAll(`<${k}>`, v);
  return c;
}

const running: ChildProcess[] = [];
function start(command: string): { proc: ChildProcess; out: () => string } {
  const proc = spawn('sh', ['-c', `exec ${command}`], {
    cwd: repo,
    env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.push(proc);
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  proc.stderr?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  return { proc, out: () => out };
}

function run(command: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', command], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Polls every 200 ms (the conditions run the CLI), for up to a minute unless told. */
const poll = (timeoutMs = 120_000) => ({ timeoutMs, intervalMs: 200 });

afterAll(async () => {
  for (const p of running.reverse()) {
    if (p.exitCode !== null || p.pid === undefined) continue;
    const gone = new Promise((r) => p.once('exit', r));
    try {
      process.kill(-p.pid, 'SIGTERM');
    } catch {
      continue;
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    if (p.exitCode === null) process.kill(-p.pid, 'SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('docs/GETTING-STARTED.md', () => {
  it('from a fresh data folder to a box online, a call and an acknowledged alert', async () => {
    const t0 = Date.now();
    const times: [string, number][] = [];
    let last = t0;
    const step = (name: string) => {
      const now = Date.now();
      times.push([name, now - last]);
      last = now;
    };

    const fleet = start(fromDoc('npm start'));
    await waitFor(
      () => existsSync(join(data, 'connection.json')) || fleet.proc.exitCode !== null,
      'var/connection.json',
      poll(),
    );
    expect(fleet.proc.exitCode, fleet.out()).toBeNull();
    step('fleet started');

    const ping = await run(fromDoc('npx fleet ping'));
    expect(ping.err).toBe('');
    expect(ping.out).toMatch(/^callbox-fleet \S+ answers; you are ops:admin/);
    const created = await run(
      fromDoc(
        `npx fleet clinics create --name "Main St" --timezone America/New_York --answering-service +15550009999 --contact '{"name":"Front desk","phone":"+15550001111"}'`,
      ),
    );
    const clinicId = /clinic (\S+) created/.exec(created.out)?.[1];
    expect(clinicId, created.err).toBeDefined();
    const fill = { 'clinic-id': clinicId as string };
    const defaults = await run(
      fromDoc('npx fleet clinics set-defaults <clinic-id> docs/getting-started/clinic-defaults.yaml', fill),
    );
    expect(defaults.out, defaults.err).toMatch(/box defaults set/);
    step('CLI: a clinic with box defaults');

    const sim = start(fromDoc('npm run sim'));
    await waitFor(
      () => sim.out().includes('box configuration:') || sim.proc.exitCode !== null,
      'the sim',
      poll(120_000),
    );
    expect(sim.out()).toContain(`box configuration: ${join(data, 'sim', 'device.yaml')}`);
    const box = start(fromDoc('npx callbox-device --config var/sim/device.yaml'));
    step('sim and box started');

    await waitFor(
      async () => (await run(fromDoc('npx fleet claims list'))).out.includes('CB-SIM-0001'),
      'the claim',
      poll(180_000),
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\nbox:\n${box.out().slice(-3000)}`);
    });
    step('box claimed');
    const approve = await run(fromDoc('npx fleet claims approve CB-SIM-0001 --clinic <clinic-id>', fill));
    expect(approve.out, approve.err).toMatch(/CB-SIM-0001 approved as cb-cb-sim-0001/);
    const tApproved = Date.now();
    await waitFor(
      async () => {
        const r = await run(`${fromDoc('npx fleet boxes list')} --json`);
        return (JSON.parse(r.out || '[]') as { serial: string; online: boolean }[]).some(
          (b) => b.serial === 'CB-SIM-0001' && b.online,
        );
      },
      'the box online',
      poll(),
    );
    const onlineAfterApproval = Date.now() - tApproved;
    const onlineAfterStart = Date.now() - t0;
    step('box online');
    const cfg = JSON.parse((await run('npx fleet --json boxes config get CB-SIM-0001')).out);
    expect(cfg.settings.clinic.timezone).toBe('America/New_York');
    expect(cfg.settings.calls.ringTimeoutS).toBe(5);

    expect(doc).toMatch(/\n```\nring\n```\n/);
    sim.proc.stdin?.write('ring\n');
    const rolled = await waitFor(
      async () => {
        const r = await run(fromDoc('npx fleet events --box CB-SIM-0001 --type call.rolled_over'));
        return /call\.rolled_over/.test(r.out) ? r.out : undefined;
      },
      'the call rolled over',
      poll(),
    );
    expect(rolled).toMatch(/cb-cb-sim-0001/);
    step('a call rung and rolled over');

    expect(doc).toMatch(/\n```\npanic\n```\n/);
    sim.proc.stdin?.write('panic\n');
    const code = await waitFor(
      async () => {
        const r = await run(`${fromDoc('npx fleet alerts list')} --json`);
        const list = JSON.parse(r.out || '[]') as { condition: string; shortCode: string }[];
        return list.find((a) => a.condition === 'panic')?.shortCode;
      },
      'the panic alert',
      poll(),
    );
    const ack = await run(fromDoc('npx fleet alerts ack <code>', { code }));
    expect(ack.out, ack.err).toMatch(new RegExp(`alert ${code} is acknowledged`));
    step('an alert raised and acknowledged');

    const total = Date.now() - t0;
    console.log(
      [
        ...times.map(([n, ms]) => `${n.padEnd(36)} ${(ms / 1000).toFixed(1)} s`),
        `${'total'.padEnd(36)} ${(total / 1000).toFixed(1)} s`,
        `box online ${(onlineAfterStart / 1000).toFixed(1)} s after starting the fleet, ${(onlineAfterApproval / 1000).toFixed(1)} s after the approval`,
      ].join('\n'),
    );
    // The time to a box online is a figure to read (goal 60 s on an idle machine), not an assertion: a timed test
    // fails on a loaded machine (130 s at load 20 on 2 cores) without anything being wrong. Each step above waits on
    // its condition.
  }, 600_000);
});
