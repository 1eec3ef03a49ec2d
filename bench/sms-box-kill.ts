/**
 * npm run faults:sms — the real box program (device/main.ts, as systemd runs
 * it, bundled once so that a start costs ~0.3 s) SIGKILLed again and again
 * while SMS and calls arrive at the modem emulator (in this process, on a
 * pty, like the modem that keeps running while the box's software
 * restarts). Then one last clean start, until the SIM is empty, and a
 * SIGTERM. Every SMS the emulator delivered (stored on its SIM) must be an
 * sms.received event in the box's outbox exactly once (the box has no
 * broker here, so every event it committed is still in box.db).
 *
 * Prints: SMS delivered, recorded, lost, duplicated, kills, seed. Exits 1
 * when one is lost or duplicated.
 *   BENCH_KILLS=50 (default) BENCH_SEED=<n> npm run faults:sms
 * test/sms-box-kill.test.ts runs a short version of the same scenario.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import sqlite3 from 'sqlite3';
import { ModemEmulator } from '../device/sim/modem/emulator.js';

export interface SmsKillOptions {
  kills: number;
  seed: number;
  /** Longest a box runs before it is killed (ms); each run is 100 ms up to this, at random. */
  maxRunMs?: number;
  log?: (line: string) => void;
}

export interface SmsKillResult {
  seed: number;
  kills: number;
  delivered: number;
  recorded: number;
  lost: string[];
  duplicated: string[];
  /** Calls rung during the run. */
  calls: number;
  /** SMS the box read more than once before deleting them (killed between reading and AT+CMGD). */
  rereads: number;
}

/** mulberry32: a small seeded PRNG so that a run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const repo = resolve(import.meta.dirname, '..');

/** The box program bundled (our code only; every package stays external, as installed). */
async function bundleBox(): Promise<string> {
  const outDir = join(repo, 'node_modules', '.cache', 'callbox-sms-kill');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `box-${process.pid}.mjs`);
  await build({
    entryPoints: [join(repo, 'device', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: out,
    logLevel: 'error',
  });
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function exited(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((r) => p.once('exit', (code) => r(code)));
}

async function readSms(dbFile: string): Promise<{ id: string; text: string }[]> {
  const db = new sqlite3.Database(dbFile, sqlite3.OPEN_READONLY);
  try {
    const rows = await new Promise<{ id: string; body: string }[]>((res, rej) =>
      db.all("SELECT id, body FROM events WHERE type = 'sms.received'", (e, r) =>
        e ? rej(e) : res(r as { id: string; body: string }[]),
      ),
    );
    return rows.map((r) => ({ id: r.id, text: (JSON.parse(r.body) as { text: string }).text }));
  } finally {
    await new Promise<void>((r) => db.close(() => r()));
  }
}

export async function runSmsKill(o: SmsKillOptions): Promise<SmsKillResult> {
  const log = o.log ?? (() => {});
  const rand = prng(o.seed);
  const maxRunMs = o.maxRunMs ?? 2500;
  const dir = mkdtempSync(join(tmpdir(), 'callbox-sms-kill-'));
  const emu = new ModemEmulator({ vendor: 'generic', ringIntervalMs: 400, dir: join(dir, 'modem') });
  mkdirSync(join(dir, 'modem'), { recursive: true });
  const delivered = new Set<string>();
  emu.on('sms-stored', (s: { text: string }) => delivered.add(s.text));
  let rereads = 0;
  emu.on('sms-deleted', (_i: number, s: { reads: number }) => {
    if (s.reads > 1) rereads++;
  });
  let child: ChildProcess | null = null;
  let feeding = false;
  let feeder: Promise<void> = Promise.resolve();
  let sent = 0;
  let calls = 0;
  try {
    const boxJs = await bundleBox();
    const { path } = await emu.start();
    const dataDir = join(dir, 'box');
    const configFile = join(dir, 'device.yaml');
    writeFileSync(
      configFile,
      [
        'box:',
        '  serial: CB-SMSKILL-01',
        `  dataDir: ${dataDir}`,
        'mqtt:',
        '  url: mqtt://127.0.0.1:1', // no fleet: every committed event stays in box.db to be counted
        'modem:',
        `  path: ${path}`,
        '  reopenMinMs: 100',
        '  reopenMaxMs: 1000',
        'io:',
        '  board: virtual',
        'log:',
        '  level: warn',
        '',
      ].join('\n'),
    );
    let stderr = '';
    const startBox = () => {
      const p = spawn(process.execPath, [boxJs, '--config', configFile], {
        cwd: repo,
        env: { ...process.env, CALLBOX_LOG_LEVEL: 'warn', CALLBOX_LOG_FORMAT: 'json', NOTIFY_SOCKET: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      p.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      return p;
    };
    // SMS and calls keep arriving, whatever the box is doing.
    feeding = true;
    feeder = (async () => {
      while (feeding) {
        await sleep(50 + rand() * 250);
        if (!feeding) break;
        if (rand() < 0.85) {
          sent++;
          emu.receiveSms(`+1555${String(1000000 + (sent % 9000000)).slice(1)}`, `sms ${sent} of seed ${o.seed}`);
        } else if (emu.calls.length === 0) {
          calls++;
          const idx = emu.incomingCall(`+1555000${String(calls % 10000).padStart(4, '0')}`);
          const ringMs = 300 + rand() * 1500;
          setTimeout(() => emu.callerHangsUp(idx), ringMs).unref();
        }
      }
    })();
    for (let k = 0; k < o.kills; k++) {
      child = startBox();
      await sleep(100 + rand() * (maxRunMs - 100));
      if (child.exitCode !== null) throw new Error(`the box exited by itself (${child.exitCode}): ${stderr}`);
      child.kill('SIGKILL');
      await exited(child);
      child = null;
      if ((k + 1) % 10 === 0) log(`${k + 1} kills, ${delivered.size} SMS delivered so far`);
    }
    feeding = false;
    await feeder;
    // One last clean run: it finds what is on the SIM, records it, deletes it.
    const listings = () => emu.commands.filter((c) => c === 'AT+CMGL=4').length;
    const before = listings();
    child = startBox();
    const end = Date.now() + 60_000;
    // Up (its modem ready and the SIM listed: its signal handlers are in place too), then until the SIM is empty.
    while (listings() === before || emu.smsStore.size > 0 || emu.smsAtNetwork.length > 0) {
      if (Date.now() > end)
        throw new Error(
          `after 60 s the SIM still holds ${emu.smsStore.size} SMS (listed: ${listings() > before}): ${stderr}`,
        );
      if (child.exitCode !== null) throw new Error(`the box exited by itself (${child.exitCode}): ${stderr}`);
      await sleep(50);
    }
    child.kill('SIGTERM');
    const code = await exited(child);
    child = null;
    if (code !== 0) throw new Error(`the box did not stop cleanly (exit ${code}): ${stderr}`);
    const rows = await readSms(join(dataDir, 'box.db'));
    const perText = new Map<string, number>();
    for (const r of rows) perText.set(r.text, (perText.get(r.text) ?? 0) + 1);
    const lost = [...delivered].filter((t) => !perText.has(t));
    const duplicated = [...perText].filter(([, n]) => n > 1).map(([t]) => t);
    return {
      seed: o.seed,
      kills: o.kills,
      delivered: delivered.size,
      recorded: [...delivered].filter((t) => perText.get(t) === 1).length,
      lost,
      duplicated,
      calls,
      rereads,
    };
  } finally {
    feeding = false;
    await feeder.catch(() => {});
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await emu.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const kills = Number(process.env.BENCH_KILLS ?? 50);
  const seed = Number(process.env.BENCH_SEED ?? Date.now() % 2 ** 31);
  console.log(`seed ${seed}, ${kills} kills (replay: BENCH_SEED=${seed} BENCH_KILLS=${kills} npm run faults:sms)`);
  const r = await runSmsKill({ kills, seed, log: (l) => console.log(l) });
  console.log(
    `SMS delivered ${r.delivered}, recorded ${r.recorded}, lost ${r.lost.length}, duplicated ${r.duplicated.length}; ` +
      `${r.rereads} read more than once before deletion; ${r.kills} SIGKILLs, ${r.calls} calls rung meanwhile, seed ${r.seed}`,
  );
  if (r.lost.length) console.log(`lost: ${r.lost.slice(0, 10).join(' | ')}`);
  if (r.duplicated.length) console.log(`duplicated: ${r.duplicated.slice(0, 10).join(' | ')}`);
  process.exitCode = r.lost.length || r.duplicated.length ? 1 : 0;
}
