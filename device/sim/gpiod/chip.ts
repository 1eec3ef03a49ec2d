/**
 * A simulated GPIO chip for libgpiod's command-line tools, where no kernel offers gpio-sim or gpio-mockup (this
 * test machine, a container). The chip lives in the test's process behind a unix socket; device/sim/gpiod/tool.mjs
 * stands in for `gpioset`, `gpioget` and `gpiomon` of either generation (v1: Debian 12 and Raspberry Pi OS
 * Bookworm; v2: Debian 13), with their command lines and output formats, and talks to the chip. The box's
 * LibgpiodToolsBackend cannot tell: it spawns `gpioset` from PATH as on a Pi.
 *
 * Like the kernel's GPIO character device, a line is requested by one process at a time (a second request gets
 * "Device or resource busy"), and a process's lines are released when it exits. Inputs read the level the test
 * drives (drive()), or their bias when nothing drives them; outputs hold what their gpioset set, and keep it when
 * released.
 *
 * Wire protocol between tool and chip (JSON lines): tool -> chip {op:"request", pid, tool, line, dir:"in"|"out",
 * value?, bias?, watch?} and {op:"set", line, value}; chip -> tool {ok:true, value} or {ok:false, error}, then
 * {edge:{line, value}} for a watched input.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type GpiodVersion = 'v1' | 'v2';

interface Holder {
  socket: Socket;
  pid: number;
  tool: string;
  dir: 'in' | 'out';
  bias: string;
  watch: boolean;
}

const TOOL = join(dirname(fileURLToPath(import.meta.url)), 'tool.mjs');

export class SimulatedGpioChip {
  /** Levels driven from outside (a button); an undriven input reads its bias. */
  private readonly driven = new Map<number, 0 | 1>();
  /** Levels held by outputs (what an LED sees). */
  private readonly outputs = new Map<number, 0 | 1>();
  private readonly holders = new Map<number, Holder>();
  /** Every level an output line was set to, in order (tests read LED patterns from it). */
  readonly history = new Map<number, (0 | 1)[]>();
  private server: Server | undefined;
  private dir: string | undefined;
  /** The environment that makes `gpioset` & co. the stand-ins of this chip (PATH first). */
  env: NodeJS.ProcessEnv = {};

  constructor(
    readonly name = 'gpiochip0',
    readonly version: GpiodVersion = 'v2',
  ) {}

  async start(): Promise<this> {
    this.dir = mkdtempSync(join(tmpdir(), 'callbox-gpiochip-'));
    const socket = join(this.dir, 'chip.sock');
    this.server = createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(socket, resolve);
    });
    const bin = join(this.dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['gpioset', 'gpioget', 'gpiomon']) {
      const file = join(bin, tool);
      writeFileSync(file, `#!/bin/sh\nexec "${process.execPath}" "${TOOL}" ${tool} "$@"\n`);
      chmodSync(file, 0o755);
    }
    this.env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      CALLBOX_SIM_GPIOCHIP_SOCKET: socket,
      CALLBOX_SIM_GPIOCHIP_NAME: this.name,
      CALLBOX_SIM_GPIOD_VERSION: this.version,
    };
    return this;
  }

  async stop(): Promise<void> {
    for (const h of this.holders.values()) h.socket.destroy();
    this.holders.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** The level on a line: an output's, else the driven level, else its bias. */
  level(line: number): 0 | 1 {
    const out = this.outputs.get(line);
    if (out !== undefined) return out;
    const d = this.driven.get(line);
    if (d !== undefined) return d;
    return this.holders.get(line)?.bias === 'pull-up' ? 1 : 0;
  }

  /** Drive an input from outside (press a button: 0 on a pull-up line); watchers see the edge. */
  drive(line: number, value: 0 | 1): void {
    const before = this.level(line);
    this.driven.set(line, value);
    if (this.level(line) !== before) this.edge(line);
  }

  /** The pid of the process holding a line (tests kill it to play a dying tool). */
  holderPid(line: number): number | undefined {
    return this.holders.get(line)?.pid;
  }

  holderTool(line: number): string | undefined {
    return this.holders.get(line)?.tool;
  }

  private edge(line: number): void {
    const h = this.holders.get(line);
    if (h?.watch) h.socket.write(`${JSON.stringify({ edge: { line, value: this.level(line) } })}\n`);
  }

  private serve(socket: Socket): void {
    const mine = new Set<number>();
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const line of mine) {
        // Released: an output keeps its last level, as the kernel leaves a released line.
        if (this.holders.get(line)?.socket === socket) this.holders.delete(line);
      }
    });
    // readline re-emits the socket's errors (ECONNRESET from a killed tool): the 'close' above cleans up.
    const lines = createInterface({ input: socket });
    lines.on('error', () => undefined);
    lines.on('line', (text) => {
      let msg: {
        op: string;
        pid: number;
        tool: string;
        line: number;
        dir: 'in' | 'out';
        value?: 0 | 1;
        bias?: string;
        watch?: boolean;
      };
      try {
        msg = JSON.parse(text);
      } catch {
        socket.write(`${JSON.stringify({ ok: false, error: 'Invalid argument' })}\n`);
        return;
      }
      const reply = (r: object) => socket.write(`${JSON.stringify(r)}\n`);
      if (msg.op === 'request') {
        if (this.holders.has(msg.line)) return reply({ ok: false, error: 'Device or resource busy' });
        this.holders.set(msg.line, {
          socket,
          pid: msg.pid,
          tool: msg.tool,
          dir: msg.dir,
          bias: msg.bias ?? 'as-is',
          watch: msg.watch === true,
        });
        mine.add(msg.line);
        if (msg.dir === 'out') this.setOutput(msg.line, msg.value ?? 0);
        else this.outputs.delete(msg.line);
        return reply({ ok: true, value: this.level(msg.line) });
      }
      if (msg.op === 'set') {
        if (this.holders.get(msg.line)?.socket !== socket)
          return reply({ ok: false, error: 'Operation not permitted' });
        this.setOutput(msg.line, msg.value ?? 0);
        return reply({ ok: true, value: this.level(msg.line) });
      }
      reply({ ok: false, error: 'Invalid argument' });
    });
  }

  private setOutput(line: number, value: 0 | 1): void {
    this.outputs.set(line, value);
    const h = this.history.get(line) ?? [];
    if (h.at(-1) !== value) h.push(value);
    this.history.set(line, h);
  }
}
