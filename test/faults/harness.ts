/**
 * The fault suite: the real fleet program (fleet/main.ts, in its own process
 * group with its embedded broker child) or the fleet against a Mosquitto of
 * the suite's own, and real box uplinks (test/faults/boxes.ts) sending over
 * TCP, while faults are injected:
 *
 * - sigkill:   the whole fleet process group SIGKILLed at seeded random
 *              moments, started again at once;
 * - stall:     a write lock held on the fleet's SQLite file for ~4 s (a slow
 *              SD card, a PostgreSQL failover), then the group SIGKILLed
 *              while it holds events it could not store;
 * - broker:    the embedded broker child alone SIGKILLed (the supervisor
 *              starts it again);
 * - mosquitto: external mode (configuration from the fleet's own
 *              `mosquitto-config` generator): Mosquitto SIGKILLed and
 *              started again;
 * - outage:    external mode, the fleet down for outageS seconds while the
 *              boxes keep recording.
 *
 * After each scenario the boxes stop producing and drain; then the fleet
 * store is read and compared with the boxes' ledgers:
 * - receipted: events the boxes were told are stored (and forgot);
 * - lost: receipted but not in the store (must be 0);
 * - stored twice: one box event (device, seq) stored under two rows (must be 0);
 * - unreceipted: recorded but never receipted by the end of the drain;
 * - panics without alert: stored panic.pressed events not counted in any
 *   panic alert of the box's clinic.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import sqlite3 from 'sqlite3';
import { FleetBus } from '../../fleet/bus.js';
import { generateMosquittoConfig } from '../../fleet/mosquitto.js';
import { Registry } from '../../fleet/registry.js';
import { SqliteStore } from '../../fleet/store/sqlite.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../../scripts/lib/mosquitto.js';
import { seeded } from '../helpers/seeded.js';
import type { BoxStats, LedgerEntry } from './boxes.js';

const REPO = resolve(import.meta.dirname, '..', '..');

export type Scenario = 'sigkill' | 'stall' | 'broker' | 'mosquitto' | 'outage';
export const ALL_SCENARIOS: Scenario[] = ['sigkill', 'stall', 'broker', 'mosquitto', 'outage'];

export interface FaultOptions {
  seed: number;
  boxes: number;
  /** SIGKILLs of the fleet group in the sigkill scenario. */
  kills: number;
  /** Events per box per second. */
  eventsPerS: number;
  panicEvery: number;
  scenarios: Scenario[];
  /** Fleet down this long in the outage scenario (s). */
  outageS: number;
  /** Box receipt timeout (ms). */
  receiptTimeoutMs: number;
  drainTimeoutMs: number;
  log: (line: string) => void;
}

export interface FaultFigures {
  scenario: Scenario;
  faults: number;
  recorded: number;
  receipted: number;
  stored: number;
  lost: number;
  storedTwice: number;
  unreceipted: number;
  panics: number;
  panicsWithoutAlert: number;
  resends: number;
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fleet program in its own process group (main + broker child). */
class FleetProcess {
  proc: ChildProcess | undefined;
  starts = 0;
  private readonly logStream;

  constructor(
    private readonly configFile: string,
    logFile: string,
  ) {
    this.logStream = createWriteStream(logFile, { flags: 'a' });
  }

  async start(timeoutMs = 90_000): Promise<void> {
    this.starts++;
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'fleet', 'main.ts'), '--config', this.configFile],
      {
        cwd: REPO,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CALLBOX_LOG_LEVEL: 'info', CALLBOX_LOG_FORMAT: 'json' },
      },
    );
    this.proc = proc;
    proc.stderr?.pipe(this.logStream, { end: false });
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    const ready = new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`fleet not running after ${timeoutMs} ms`)), timeoutMs);
      lines.on('line', (line) => {
        this.logStream.write(`${line}\n`);
        if (line.includes('fleet running')) {
          clearTimeout(timer);
          res();
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        rej(new Error(`fleet exited (${code ?? signal}) before it was running`));
      });
    });
    await ready;
  }

  /** SIGKILL the whole process group: the fleet and its broker child die at once. */
  async killGroup(): Promise<void> {
    const p = this.proc;
    if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await exited;
    // The broker child may outlive the main process by a moment.
    await sleep(100);
  }

  /** The embedded broker child (a child of the fleet main process). */
  brokerPid(): number | undefined {
    const pid = this.proc?.pid;
    if (!pid) return undefined;
    try {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      return kids.length ? Number(kids[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
    if (!done) await this.killGroup();
  }
}

class Boxes {
  private readonly proc: ChildProcess;
  private readonly waiters = new Map<string, ((m: Record<string, unknown>) => void)[]>();

  constructor() {
    this.proc = fork(join(REPO, 'test', 'faults', 'boxes.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, CALLBOX_LOG_LEVEL: 'fatal' },
    });
    this.proc.on('message', (m: Record<string, unknown>) => {
      const list = this.waiters.get(String(m.t));
      list?.shift()?.(m);
    });
  }

  private ask<T>(msg: Record<string, unknown>, reply: string): Promise<T> {
    return new Promise((res) => {
      const list = this.waiters.get(reply) ?? [];
      list.push((m) => res(m as T));
      this.waiters.set(reply, list);
      this.proc.send(msg);
    });
  }

  start(m: Record<string, unknown>): Promise<unknown> {
    return this.ask({ t: 'start', ...m }, 'started');
  }
  stats(): Promise<BoxStats> {
    return this.ask({ t: 'stats' }, 'stats');
  }
  drain(timeoutMs: number) {
    return this.ask<{ ledger: Record<string, LedgerEntry[]>; receipted: Record<string, number>; stats: BoxStats }>(
      { t: 'drain', timeoutMs },
      'drained',
    );
  }
  async exit(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.send({ t: 'exit' });
    await Promise.race([exited, sleep(10_000)]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

/** Provision boxes (one clinic each) in a new fleet store. */
async function prepareStore(file: string, n: number): Promise<{ deviceId: string; password: string }[]> {
  const store = await SqliteStore.open(file);
  await store.migrate();
  const registry = new Registry({
    store,
    bus: new FleetBus(),
    sink: { put: () => undefined, revoke: () => undefined },
    mqtt: () => undefined,
    caPem: null,
    publicUrl: null,
  });
  const creds: { deviceId: string; password: string }[] = [];
  for (let i = 0; i < n; i++) {
    const clinic = await store.createClinic({
      organisationId: null,
      name: `Fault clinic ${i}`,
      timezone: 'UTC',
      phoneNumbers: [],
      answeringService: null,
      contacts: [],
    });
    creds.push(await registry.provision('faults', `FAULT-${String(i).padStart(4, '0')}`, clinic.id));
  }
  await store.close();
  return creds;
}

function query<T>(file: string, sql: string): Promise<T[]> {
  return new Promise((res, rej) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => {
      if (err) return rej(err);
      db.all(sql, [], (e, rows) => {
        db.close();
        if (e) rej(e);
        else res(rows as T[]);
      });
    });
  });
}

/** Hold the write lock on a SQLite file (another process in the real world: a backup, a slow disk). */
async function holdWriteLock(file: string, ms: number, during: () => Promise<void>): Promise<void> {
  const db = new sqlite3.Database(file);
  const exec = (sql: string) => new Promise<void>((res, rej) => db.exec(sql, (e) => (e ? rej(e) : res())));
  db.configure('busyTimeout', 10_000);
  await exec('BEGIN IMMEDIATE');
  try {
    await sleep(ms);
    await during();
  } finally {
    await exec('ROLLBACK');
    await new Promise<void>((res) => db.close(() => res()));
  }
}

interface Panics {
  panics: number;
  without: number;
}

async function panicsWithoutAlert(storeFile: string): Promise<Panics> {
  const pressed = await query<{ clinic_id: string; n: number }>(
    storeFile,
    "SELECT b.clinic_id AS clinic_id, COUNT(*) AS n FROM events e JOIN boxes b ON b.device_id = e.device_id WHERE e.type = 'panic.pressed' GROUP BY b.clinic_id",
  );
  let alerted: { clinic_id: string; n: number }[] = [];
  try {
    // The alert tables are in the fleet's database (fleet/alerts/store.ts).
    alerted = await query(
      storeFile,
      "SELECT clinic_id, SUM(occurrences) AS n FROM alerts WHERE condition = 'panic' GROUP BY clinic_id",
    );
  } catch {
    /* no alerts table: nothing alerted */
  }
  const by = new Map(alerted.map((a) => [a.clinic_id, a.n]));
  let panics = 0;
  let without = 0;
  for (const p of pressed) {
    panics += p.n;
    without += Math.max(0, p.n - (by.get(p.clinic_id) ?? 0));
  }
  return { panics, without };
}

async function runScenario(scenario: Scenario, o: FaultOptions, rand: () => number): Promise<FaultFigures> {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), `callbox-faults-${scenario}-`));
  const storeFile = join(dir, 'fleet.db');
  const creds = await prepareStore(storeFile, o.boxes);
  const external = scenario === 'mosquitto' || scenario === 'outage';
  const port = await freePort();
  let mosq: RunningMosquitto | undefined;
  let mosqConf = '';
  const mqtt: Record<string, unknown> = external
    ? { mode: 'external', externalUrl: `mqtt://127.0.0.1:${port}`, reconnectMs: 200 }
    : { mode: 'embedded', host: '127.0.0.1', port, ratePerSecond: 1000, rateBurst: 10_000, reconnectMs: 200 };
  if (external) {
    const store = await SqliteStore.open(storeFile);
    const gen = await generateMosquittoConfig(store, { dir: join(dir, 'mosquitto'), port });
    await store.close();
    mosqConf = gen.confFile;
    mqtt.externalPasswordFile = gen.fleetSecretFile;
    mosq = await startMosquitto(mosqConf, port);
  }
  const configFile = join(dir, 'fleet.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      mqtt,
      data: { dir },
      store: { sqlitePath: storeFile },
      http: { port: 0 },
      voicemail: { dir: join(dir, 'voicemail') },
      ops: { bootstrapPasswordFile: join(dir, 'admin.secret') },
      presence: { offlineAfterS: 600 },
    }),
  );
  const fleet = new FleetProcess(configFile, join(dir, 'fleet.log'));
  const boxes = new Boxes();
  let faults = 0;
  try {
    await fleet.start();
    mkdirSync(join(dir, 'boxes'));
    await boxes.start({
      url: `mqtt://127.0.0.1:${port}`,
      boxes: creds,
      dir: join(dir, 'boxes'),
      eventsPerS: o.eventsPerS,
      panicEvery: o.panicEvery,
      receiptTimeoutMs: o.receiptTimeoutMs,
    });
    const up = (min: number, max: number) => sleep(min + rand() * (max - min));
    await up(1500, 3000);
    switch (scenario) {
      case 'sigkill':
        for (let k = 0; k < o.kills; k++) {
          await up(500, 4000);
          await fleet.killGroup();
          faults++;
          await up(0, 1000);
          await fleet.start();
        }
        break;
      case 'stall':
        for (let k = 0; k < Math.max(1, Math.round(o.kills / 10)); k++) {
          await holdWriteLock(storeFile, 4000, async () => {
            await fleet.killGroup();
            faults++;
          });
          await fleet.start();
          await up(1000, 3000);
        }
        break;
      case 'broker':
        for (let k = 0; k < Math.max(1, Math.round(o.kills / 5)); k++) {
          await up(1000, 4000);
          const pid = fleet.brokerPid();
          if (!pid) throw new Error('no broker child found');
          process.kill(pid, 'SIGKILL');
          faults++;
        }
        break;
      case 'mosquitto':
        for (let k = 0; k < Math.max(1, Math.round(o.kills / 5)); k++) {
          await up(1000, 4000);
          mosq?.proc.kill('SIGKILL');
          await new Promise((r) => (mosq?.proc.exitCode !== null ? r(undefined) : mosq?.proc.once('exit', r)));
          faults++;
          await up(500, 2000);
          mosq = await startMosquitto(mosqConf, port);
        }
        break;
      case 'outage':
        await fleet.killGroup();
        faults++;
        await sleep(o.outageS * 1000);
        await fleet.start();
        break;
    }
    await up(1000, 2000);
    const drained = await boxes.drain(o.drainTimeoutMs);
    // Let the alert engine finish with what was stored: until its count stops moving.
    let panic = await panicsWithoutAlert(storeFile);
    for (let still = 0; still < 6 && panic.without > 0; ) {
      await sleep(500);
      const next = await panicsWithoutAlert(storeFile);
      still = next.without === panic.without ? still + 1 : 0;
      panic = next;
    }
    await fleet.stop();
    const rows = await query<{ id: string; device_id: string; seq: number }>(
      storeFile,
      'SELECT id, device_id, seq FROM events',
    );
    const storedIds = new Set(rows.map((r) => r.id));
    const twice = await query<{ extra: number | null }>(
      storeFile,
      'SELECT SUM(c - 1) AS extra FROM (SELECT COUNT(*) AS c FROM events GROUP BY device_id, seq HAVING COUNT(*) > 1)',
    );
    let recorded = 0;
    let receipted = 0;
    let lost = 0;
    let unreceipted = 0;
    for (const [deviceId, entries] of Object.entries(drained.ledger)) {
      const mark = drained.receipted[deviceId] ?? 0;
      for (const e of entries) {
        recorded++;
        if (e.seq <= mark) {
          receipted++;
          if (!storedIds.has(e.id)) lost++;
        } else unreceipted++;
      }
    }
    return {
      scenario,
      faults,
      recorded,
      receipted,
      stored: storedIds.size,
      lost,
      storedTwice: twice[0]?.extra ?? 0,
      unreceipted,
      panics: panic.panics,
      panicsWithoutAlert: panic.without,
      resends: drained.stats.resends,
      seconds: (Date.now() - t0) / 1000,
    };
  } catch (e) {
    o.log(`${scenario}: failed; fleet log in ${join(dir, 'fleet.log')}`);
    throw e;
  } finally {
    await boxes.exit();
    await fleet.killGroup();
    await mosq?.stop();
  }
}

export function formatFigures(f: FaultFigures): string {
  return (
    `${f.scenario.padEnd(9)} faults ${String(f.faults).padStart(3)}  recorded ${f.recorded}  receipted ${f.receipted}  ` +
    `stored ${f.stored}  lost ${f.lost}  stored twice ${f.storedTwice}  unreceipted ${f.unreceipted}  ` +
    `panics ${f.panics} (without alert ${f.panicsWithoutAlert})  resends ${f.resends}  ${f.seconds.toFixed(0)} s`
  );
}

export async function runFaultSuite(o: FaultOptions): Promise<FaultFigures[]> {
  const rand = seeded(o.seed);
  const out: FaultFigures[] = [];
  o.log(
    `fault suite: seed ${o.seed} (replay: CALLBOX_FAULT_SEED=${o.seed}), ${o.boxes} boxes x ${o.eventsPerS} events/s, scenarios ${o.scenarios.join(',')}`,
  );
  for (const s of o.scenarios) {
    const f = await runScenario(s, o, rand);
    o.log(formatFigures(f));
    out.push(f);
  }
  return out;
}
