/**
 * npm run bench:figures — how fast a clinic's call figures answer (a benchmark, not a test).
 *
 * One clinic (America/New_York), BENCH_CALLS calls a day (default 100) for BENCH_DAYS days (default 365),
 * random times and outcomes from a fixed seed, as the events a box sends (call.incoming, call.answered or
 * call.rolled_over, call.ended, call.followup_sms). They are written with Store.insertEvents (the one
 * INSERT ingest uses) in batches of 1000 and applied to the rollups by the fleet's own figures reader
 * (fleet/figures/reader.ts: the cursor, one transaction per batch): the real rollup path, without MQTT.
 * Then, BENCH_RUNS times each (default 200): figures.clinic for the whole range by day and by week and
 * the 52-week heatmap (FiguresService, the ops handlers' code, clinic named by name). Prints p50/p99 ms
 * for SQLite and for PostgreSQL (CALLBOX_TEST_PG or postgres://postgres@127.0.0.1:5432; skipped, said so,
 * when it cannot be reached). Goal: under 50 ms. BENCH_STORES=sqlite: SQLite only; BENCH_SQLITE_DIR: keep
 * the SQLite file there (an empty folder).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { FleetBus } from '../fleet/bus.js';
import { numberHasher } from '../fleet/figures/feature.js';
import { addDays } from '../fleet/figures/math.js';
import { FiguresReader } from '../fleet/figures/reader.js';
import { FiguresService } from '../fleet/figures/service.js';
import { FiguresStore } from '../fleet/figures/store.js';
import { Registry } from '../fleet/registry.js';
import { PostgresStore } from '../fleet/store/postgres.js';
import type { SqlStore } from '../fleet/store/sql-store.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import type { AnyEvent } from '../shared/contract/events.js';
import { newBootId, newEventId } from '../shared/ids.js';
import { getLogger, setupLogging } from '../shared/log.js';

setupLogging({ level: 'error' });

const CALLS = Number(process.env.BENCH_CALLS ?? 100);
const DAYS = Number(process.env.BENCH_DAYS ?? 365);
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const FIRST = '2025-12-01';
const PG_BASE = process.env.CALLBOX_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432';

/** mulberry32: a small seeded PRNG, so every run inserts the same year. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* yearOfEvents(deviceId: string): Generator<AnyEvent> {
  const rnd = prng(42);
  const bootId = newBootId();
  let seq = 0;
  const ev = (at: number, type: AnyEvent['type'], body: Record<string, unknown>) =>
    ({ v: 1, id: newEventId(), deviceId, bootId, seq: ++seq, at: new Date(at).toISOString(), type, body }) as AnyEvent;
  for (let d = 0; d < DAYS; d++) {
    const date = addDays(FIRST, d);
    // 08:00-18:00 New York (UTC-5 in winter, UTC-4 in summer: a 13:00 UTC start keeps every call inside the day).
    const open = Date.parse(`${date}T13:00:00Z`);
    const starts = Array.from({ length: CALLS }, () => open + Math.floor(rnd() * 10 * 3_600_000)).sort((a, b) => a - b);
    const day: { at: number; e: () => AnyEvent }[] = [];
    starts.forEach((start, i) => {
      const callId = `d${d}-c${i}`;
      const number = `+1555${String(Math.floor(rnd() * 2000)).padStart(7, '0')}`;
      const base = { callId, number, withheld: false };
      const r = rnd();
      const outcome =
        r < 0.7 ? 'answered' : r < 0.8 ? 'abandoned' : r < 0.88 ? 'missed' : r < 0.94 ? 'voicemail' : 'rolled_over';
      const ringMs = Math.floor((outcome === 'answered' ? rnd() * 60 : rnd() * 40) * 1000);
      const talkMs = outcome === 'answered' ? Math.floor(rnd() * 300_000) : 0;
      day.push({
        at: start,
        e: () => ev(start, 'call.incoming', { ...base, inHours: true, repeatCaller: false, waiting: false }),
      });
      if (outcome === 'answered') {
        day.push({
          at: start + ringMs,
          e: () => ev(start + ringMs, 'call.answered', { ...base, by: 'handset', rings: 1, timeToAnswerMs: ringMs }),
        });
      }
      const end = start + ringMs + talkMs;
      day.push({
        at: end,
        e: () =>
          ev(end, 'call.ended', {
            ...base,
            outcome,
            rings: 1,
            timeToAnswerMs: outcome === 'answered' ? ringMs : null,
            durationMs: talkMs,
            repeatCaller: false,
            inHours: true,
          }),
      });
      if (outcome === 'missed') {
        day.push({ at: end + 1000, e: () => ev(end + 1000, 'call.followup_sms', { callId, number, status: 'sent' }) });
      }
    });
    day.sort((a, b) => a.at - b.at);
    for (const x of day) yield x.e();
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

async function time(runs: number, fn: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 5; i++) await fn(); // warm up
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: pct(ms, 50), p99: pct(ms, 99) };
}

async function benchStore(kind: string, store: SqlStore): Promise<void> {
  await store.migrate();
  const figures = FiguresStore.over(store);
  await figures.migrate();
  const clinic = await store.createClinic({
    organisationId: null,
    name: 'Main St',
    timezone: 'America/New_York',
    phoneNumbers: [],
    answeringService: null,
    contacts: [],
  });
  await store.createBox({ serial: 'CB-BENCH', claimState: 'approved', clinicId: clinic.id });
  await store.updateBox('CB-BENCH', { deviceId: 'cb-cb-bench' });
  const reader = new FiguresReader(
    store,
    figures,
    { hashNumber: numberHasher(Buffer.from('bench')), seal: (n) => n },
    { owner: 'bench', batch: 2000, leaseS: 600, log: getLogger('bench:figures') },
  );
  const t0 = performance.now();
  let batch: AnyEvent[] = [];
  let events = 0;
  for (const e of yearOfEvents('cb-cb-bench')) {
    batch.push(e);
    if (batch.length === 1000) {
      await store.insertEvents(batch);
      events += batch.length;
      batch = [];
    }
  }
  await store.insertEvents(batch);
  events += batch.length;
  const inserted = performance.now() - t0;
  const t1 = performance.now();
  await reader.kick();
  const rolled = performance.now() - t1;
  await reader.stop();
  const registry = new Registry({
    store,
    bus: new FleetBus(),
    sink: { put: () => undefined, revoke: () => undefined },
    mqtt: () => undefined,
    caPem: null,
    publicUrl: null,
  });
  const service = new FiguresService(store, registry, figures, undefined);
  const to = addDays(FIRST, DAYS - 1);
  const year = await service.clinicFigures({ clinic: 'Main St', from: FIRST, to, bucket: 'day' });
  console.log(
    `${kind}: ${events} events (${CALLS * DAYS} calls) inserted in ${(inserted / 1000).toFixed(1)} s, ` +
      `rolled up in ${(rolled / 1000).toFixed(1)} s (${Math.round(reader.counters.calls / (rolled / 1000))} calls/s); ` +
      `year: offered ${year.totals.offered}, answered ${year.totals.answered}, ASA ${year.totals.asaS} s, ` +
      `p90 ${year.totals.p90AnswerS} s, service level ${((year.totals.serviceLevel ?? 0) * 100).toFixed(1)}%`,
  );
  if (year.totals.offered !== CALLS * DAYS)
    throw new Error(`expected ${CALLS * DAYS} calls, counted ${year.totals.offered}`);
  for (const [what, fn] of [
    ['year by day  ', () => service.clinicFigures({ clinic: 'Main St', from: FIRST, to, bucket: 'day' })],
    ['year by week ', () => service.clinicFigures({ clinic: 'Main St', from: FIRST, to, bucket: 'week' })],
    ['heatmap 52 wk', () => service.heatmap({ clinic: 'Main St', weeks: 52, to })],
  ] as const) {
    const t = await time(RUNS, fn);
    const verdict = t.p99 < 50 ? 'under 50 ms' : 'OVER 50 ms';
    console.log(
      `  ${kind} ${what}: p50 ${t.p50.toFixed(2)} ms  p99 ${t.p99.toFixed(2)} ms  (${RUNS} runs; ${verdict})`,
    );
  }
}

async function main(): Promise<void> {
  console.log(
    `figures benchmark: one clinic, ${CALLS} calls a day for ${DAYS} days; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`,
  );
  const dir = process.env.BENCH_SQLITE_DIR ?? mkdtempSync(join(tmpdir(), 'bench-figures-'));
  const sqlite = await SqliteStore.open(join(dir, 'fleet.db'));
  try {
    await benchStore('sqlite', sqlite);
  } finally {
    await sqlite.close();
    if (!process.env.BENCH_SQLITE_DIR) rmSync(dir, { recursive: true, force: true });
  }
  if (process.env.BENCH_STORES === 'sqlite') return;
  const name = `callbox_bench_figures_${process.pid}`;
  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
  try {
    await admin.connect();
  } catch (e) {
    console.log(`postgres: skipped, ${PG_BASE} cannot be reached (${(e as Error).message})`);
    return;
  }
  await admin.query(`CREATE DATABASE ${name}`);
  try {
    const store = await PostgresStore.open(`${PG_BASE}/${name}`);
    try {
      await benchStore('postgres', store);
    } finally {
      await store.close();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

await main();
