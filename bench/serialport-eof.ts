/**
 * npm run bench:serialport-eof — the minimal reproduction of why the modem
 * transport guards serialport's reader (issue 19; upstream
 * serialport/bindings-cpp#162, fix proposed in #164, not merged in 13.0.0):
 *
 *   socat makes a pty pair; serialport opens one end; socat is killed, so
 *   the other end closes and every read() on ours returns 0 (end of file).
 *   @serialport/bindings-cpp's unixRead treats 0 bytes as "try again" and
 *   calls itself at once: no 'close', no 'error', a reader thread spinning
 *   and a promise chain growing until the port is closed by hand.
 *
 * It prints, for the plain binding and for ours (device/modem/transport.ts):
 * how long until the port reported itself gone (or that it never did within
 * the window), and the CPU time the process used during the window. Exits
 * by itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { openByteStream } from '../device/modem/transport.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 500);

function ptyPair(dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      'socat',
      ['-d', '-d', `pty,raw,echo=0,link=${join(dir, 'a')}`, `pty,raw,echo=0,link=${join(dir, 'b')}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('starting data transfer loop')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`socat exited (${code}): ${err}`)));
  });
}

interface Round {
  goneAfterMs: number | null;
  cpuMs: number;
}

/** Open the port, kill the other end (alternately SIGTERM and SIGKILL), watch it for WINDOW_MS. */
async function round(
  dir: string,
  open: () => Promise<{ gone: Promise<void>; close: () => Promise<void> }>,
  i: number,
): Promise<Round> {
  const socat = await ptyPair(dir);
  const port = await open();
  let goneAt: number | null = null;
  const t0 = performance.now();
  void port.gone.then(() => {
    goneAt = performance.now() - t0;
  });
  const cpu0 = process.cpuUsage();
  await new Promise<void>((r) => {
    socat.once('exit', () => r());
    socat.kill(i % 2 ? 'SIGKILL' : 'SIGTERM');
  });
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const cpu = process.cpuUsage(cpu0);
  const goneAfterMs: number | null = goneAt;
  await port.close(); // for the plain binding, the only way to stop its reader
  return { goneAfterMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function show(name: string, rounds: Round[]): void {
  const never = rounds.filter((r) => r.goneAfterMs === null);
  const seen = rounds.filter((r) => r.goneAfterMs !== null).map((r) => r.goneAfterMs as number);
  const cpuNever = never.length ? Math.max(...never.map((r) => r.cpuMs)) : 0;
  const cpuAll = Math.max(...rounds.map((r) => r.cpuMs));
  console.log(
    `${name}: ${rounds.length} rounds; never reported gone within ${WINDOW_MS} ms: ${never.length}` +
      (seen.length ? `; reported gone after at most ${Math.max(...seen).toFixed(1)} ms` : '') +
      `; CPU in the window: max ${cpuAll.toFixed(0)} ms` +
      (never.length ? ` (${cpuNever.toFixed(0)} ms in a round that never reported it)` : ''),
  );
}

const dir = mkdtempSync(join(tmpdir(), 'callbox-eof-'));
try {
  const plain: Round[] = [];
  const guarded: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    plain.push(
      await round(
        dir,
        async () => {
          const port = new SerialPort({ path: join(dir, 'b'), baudRate: 115200, autoOpen: false });
          await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
          port.on('data', () => {});
          port.on('error', () => {});
          return {
            gone: new Promise<void>((r) => port.once('close', () => r())),
            close: () => new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r())),
          };
        },
        i,
      ),
    );
    guarded.push(
      await round(
        dir,
        async () => {
          const stream = await openByteStream({ path: join(dir, 'b'), baudRate: 115200, rtscts: false });
          return { gone: new Promise<void>((r) => stream.once('close', () => r())), close: () => stream.close() };
        },
        i,
      ),
    );
  }
  show('serialport 13, plain binding', plain);
  show('device/modem/transport.ts, guarded binding', guarded);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
