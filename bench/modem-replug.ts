/**
 * npm run bench:modem-replug — the modem unplugged and plugged back in,
 * again and again (issue 19): the real driver with the product's default
 * settings on the emulator's pty; each cycle pulls the USB cable (the pty
 * closes, its node disappears), waits a random gap of 0 to 2 s, plugs it
 * back in, and rings the box as soon as the driver is ready. Every ring must
 * be tracked (a 'ring' event with the caller's number and the call listed by
 * AT+CLCC).
 *
 * Prints: cycles, rings tracked, replug-to-ready (from the device node
 * appearing to the driver's 'ready', p50, p99, longest), the
 * process's CPU time and RSS before and after (after a GC), and the CPU used
 * in one idle second at the start and at the end (a reader left spinning on
 * a dead port would show here). Exits by itself; exit code 1 if a ring was
 * missed.
 *   BENCH_CYCLES=1000 (default) BENCH_SEED=<n> npm run bench:modem-replug
 */
import { modemConfig } from '../device/modem/config.js';
import { createModem, type GsmModem } from '../device/modem/driver.js';
import type { ModemEventMap } from '../device/modem/types.js';
import { ModemEmulator } from '../device/sim/modem/emulator.js';
import { setupLogging } from '../shared/log.js';

setupLogging({ level: 'error' });

const CYCLES = Number(process.env.BENCH_CYCLES ?? 1000);
const SEED = Number(process.env.BENCH_SEED ?? Date.now() % 2 ** 31);

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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function next<K extends keyof ModemEventMap>(
  modem: GsmModem,
  event: K,
  pred: (...a: ModemEventMap[K]) => boolean,
  timeoutMs: number,
): Promise<number | false> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      modem.off(event, on as never);
      resolve(false);
    }, timeoutMs);
    const on = (...a: ModemEventMap[K]) => {
      if (!pred(...a)) return;
      clearTimeout(t);
      modem.off(event, on as never);
      resolve(performance.now());
    };
    modem.on(event, on as never);
  });
}

async function idleCpuMs(): Promise<number> {
  const c0 = process.cpuUsage();
  await sleep(1000);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

function snapshot(): { cpuMs: number; rssMb: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const c = process.cpuUsage();
  return { cpuMs: (c.user + c.system) / 1000, rssMb: process.memoryUsage().rss / 2 ** 20 };
}

const rand = prng(SEED);
const emu = new ModemEmulator({ vendor: 'generic', ringIntervalMs: 3000 });
const { path } = await emu.start();
const modem = createModem(modemConfig({ path })); // the product's defaults
await modem.start();
if (modem.state !== 'ready') throw new Error(`modem not ready at start: ${modem.state}`);
console.log(`seed ${SEED}, ${CYCLES} cycles (replay: BENCH_SEED=${SEED} BENCH_CYCLES=${CYCLES})`);
const idleBefore = await idleCpuMs();
const before = snapshot();
const readyMs: number[] = [];
let tracked = 0;
const missed: number[] = [];
for (let i = 0; i < CYCLES; i++) {
  const gone = next(modem, 'state', (s) => s === 'disconnected', 5000);
  await emu.unplug();
  if ((await gone) === false && (modem.state as string) !== 'disconnected')
    throw new Error(`cycle ${i}: the unplug was not noticed in 5 s`);
  await sleep(rand() * 2000);
  const ready = next(modem, 'state', (s) => s === 'ready', 30_000);
  await emu.replug(); // resolves as the device node appears (the emulator listens by then)
  const back = performance.now();
  const at = await ready;
  if (at === false) throw new Error(`cycle ${i}: not ready 30 s after the replug (state ${modem.state})`);
  readyMs.push(Math.max(0, at - back));
  const number = `+1555${String(1000000 + i).slice(1)}`;
  const ring = next(modem, 'ring', (r) => r.number === number, 5000);
  const listed = next(modem, 'calls', (c) => c.some((x) => x.number === number && x.stat === 'incoming'), 5000);
  emu.incomingCall(number);
  if ((await ring) !== false && (await listed) !== false) tracked++;
  else missed.push(i);
  if ((i + 1) % 100 === 0)
    console.log(`${i + 1} cycles, longest replug-to-ready so far ${Math.max(...readyMs).toFixed(0)} ms`);
}
const after = snapshot();
const idleAfter = await idleCpuMs();
await modem.stop();
await emu.stop();
readyMs.sort((a, b) => a - b);
const pct = (p: number) => readyMs[Math.min(readyMs.length - 1, Math.floor((p / 100) * readyMs.length))] ?? Number.NaN;
console.log(
  `cycles ${CYCLES}, rings tracked ${tracked}/${CYCLES}${missed.length ? `, missed in cycles ${missed.slice(0, 20).join(',')}` : ''}`,
);
console.log(
  `replug to ready: p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms, longest ${(readyMs.at(-1) ?? 0).toFixed(0)} ms`,
);
console.log(
  `process CPU time: ${before.cpuMs.toFixed(0)} ms before, ${after.cpuMs.toFixed(0)} ms after (${((after.cpuMs - before.cpuMs) / CYCLES).toFixed(1)} ms per cycle); ` +
    `RSS ${before.rssMb.toFixed(1)} MB before, ${after.rssMb.toFixed(1)} MB after; ` +
    `CPU in an idle second: ${idleBefore.toFixed(0)} ms before, ${idleAfter.toFixed(0)} ms after`,
);
process.exitCode = missed.length > 0 ? 1 : 0;
