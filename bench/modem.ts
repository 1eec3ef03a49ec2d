/**
 * npm run bench:modem — modem driver figures (a benchmark, not a test):
 *   1. AT line layer throughput: framing + routing + parsing of a realistic
 *      mix of unsolicited and reply lines (lines/s), and the pure parsers alone;
 *   2. RING-to-event latency over a real pty (emulator -> socat -> serialport
 *      -> driver 'ring' event), p50/p99;
 *   3. the machine it ran on.
 * BENCH_RINGS=n changes the number of rings timed (default 300).
 */
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseClcc, parseClip } from '../device/modem/at/calls.js';
import { AtChannel, Priority } from '../device/modem/at/channel.js';
import { parseCsq, parseRegistration } from '../device/modem/at/network.js';
import { matchUrc } from '../device/modem/at/urc.js';
import { modemConfig } from '../device/modem/config.js';
import { createModem } from '../device/modem/driver.js';
import { ModemEmulator } from '../device/sim/modem/emulator.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { setupLogging } from '../shared/log.js';

setupLogging({ level: 'error' });

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function lineLayer(): Promise<void> {
  const mix = [
    'RING',
    '+CLIP: "+15551234567",145,,,,0',
    '+CREG: 1,"00C3","0000A13B",7',
    '^RSSI: 17',
    '+CMTI: "SM",3',
    '+CLCC: 1,1,4,0,0,"+15551234567",145',
    'NO CARRIER',
    '+CUSD: 0,"Your balance is 5.00",15',
    'SMS Ready',
    'some unknown vendor line',
  ];
  const block = Buffer.from(
    mix
      .map((l) => `\r\n${l}\r\n`)
      .join('')
      .repeat(1000),
  );
  const linesPerBlock = mix.length * 1000;
  let urcs = 0;
  const ch = new AtChannel(
    {
      onUrc: (line) => {
        const u = matchUrc(line);
        if (u) urcs++;
        return u !== null;
      },
      onDiscard: () => {},
      onTimeout: () => {},
    },
    { quietMs: 100, timeoutMs: 1000 },
  );
  ch.attach(async () => {});
  // Keep a command in flight so that prefix claiming is exercised too.
  void ch.run({ command: 'AT+CSQ', prefixes: ['+CSQ:'], timeoutMs: 600_000, priority: Priority.Poll }).catch(() => {});
  const rounds = 40;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    // Feed in serial-sized chunks (64 bytes) as a USB modem would deliver them.
    for (let o = 0; o < block.length; o += 64) ch.feed(block.subarray(o, o + 64));
  }
  const s = (performance.now() - t0) / 1000;
  const lines = rounds * linesPerBlock;
  ch.detach(new CallboxError(ErrorCode.Internal, 'bench done'));
  console.log(
    `line layer (framing + URC table + parsers, 64-byte chunks): ${Math.round(lines / s).toLocaleString('en')} lines/s (${lines.toLocaleString('en')} lines, ${urcs.toLocaleString('en')} URCs)`,
  );

  const samples = [
    () => parseClcc('+CLCC: 1,1,4,0,0,"+15551234567",145'),
    () => parseClip('+CLIP: "+15551234567",145,,,,0'),
    () => parseRegistration('+CREG: 2,1,"00C3","0000A13B",7', true),
    () => parseCsq('+CSQ: 17,99'),
  ];
  const n = 200_000;
  const t1 = performance.now();
  for (let i = 0; i < n; i++) (samples[i % samples.length] as () => unknown)();
  const s1 = (performance.now() - t1) / 1000;
  console.log(`pure parsers (CLCC/CLIP/CREG/CSQ): ${Math.round(n / s1).toLocaleString('en')} lines/s`);
}

async function ringLatency(): Promise<void> {
  const rings = Number(process.env.BENCH_RINGS ?? 300);
  const emu = new ModemEmulator({ vendor: 'generic' });
  const { path } = await emu.start();
  const modem = createModem(modemConfig({ path, ringEndMs: 60_000, callPollMs: 60_000, clipWaitMs: 300 }));
  await modem.start();
  const lat: number[] = [];
  let t0 = 0;
  let resolveRing: (() => void) | null = null;
  modem.on('ring', () => {
    lat.push(performance.now() - t0);
    resolveRing?.();
  });
  for (let i = 0; i < rings; i++) {
    const got = new Promise<void>((r) => {
      resolveRing = r;
    });
    t0 = performance.now();
    emu.urc('RING');
    emu.urc('+CLIP: "+15551234567",145,,,,0');
    await got;
    await new Promise((r) => setTimeout(r, 5));
  }
  await modem.stop();
  await emu.stop();
  lat.sort((a, b) => a - b);
  console.log(
    `RING to 'ring' event over the pty (${rings} rings): p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms, max ${(lat.at(-1) ?? 0).toFixed(2)} ms`,
  );
}

const cpu = cpus();
console.log(
  `machine: ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${process.platform}/${process.arch}`,
);
await lineLayer();
await ringLatency();
