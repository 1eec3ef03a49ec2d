/**
 * A thin johnny-five IO plugin for the Raspberry Pi header over the Linux
 * GPIO character device (/dev/gpiochipN), the interface the kernel keeps
 * for both the Pi 4 (BCM2711) and the Pi 5 (RP1), where pigpio-based
 * plugins (pigpio, raspi-io over pigpio) cannot work because the Pi 5's
 * GPIO sits behind the RP1 chip and pigpio pokes BCM registers directly.
 *
 * Node has no ioctl, so the hardware calls go through one seam,
 * GpioBackend. The default backend runs libgpiod's command-line tools
 * (package gpiod): gpioset holds output lines, gpioget reads a level,
 * gpiomon reports input edges. Two generations of those tools are in the
 * field with different command lines: v1 (1.6 in Debian 12 and Raspberry
 * Pi OS Bookworm) and v2 (Debian 13, Raspberry Pi OS Trixie). The version
 * is detected at start (`gpioset --version`) and the matching dialect used.
 * A native binding (node-libgpiod) was considered: it builds against one
 * libgpiod major version only and has no prebuilt binaries for the Pi, the
 * same trap in another form; the tools are supervised instead.
 *
 * Supervision: a watcher (gpiomon) or holder (gpioset) that dies is
 * restarted with backoff, the input's level is read again before watching
 * (an edge lost while it was down is caught), and the death is logged and
 * counted; healthy() is false while an input has no live watcher, and the
 * box's systemd watchdog asks it (a dead gpiomon is a dead panic button).
 * Writes to a dying child's stdin never throw (EPIPE is handled).
 *
 * Limits (documented in hardware-schematics/README.md): digital in/out only,
 * no PWM (analogWrite > 0 is on, so buzzer volume is on/off on the Pi
 * header; use a Firmata board for volume), edge reporting latency of a few
 * ms through the child processes, and no test on real hardware here: the
 * plugin is tested with a fake backend, and the tool backend against
 * device/sim/gpiod (stand-ins for both generations of the tools over a
 * simulated chip), since no kernel here offers gpio-sim.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { backoffDelay } from '../../shared/backoff.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';

const log = getLogger('device:io:gpio');

export type Bias = 'pull-up' | 'pull-down' | 'disabled';

export interface GpioOutputLine {
  set(value: 0 | 1): void;
  close(): void;
}
export interface GpioInputLine {
  close(): void;
}

/** The hardware seam: request lines on a GPIO chip. */
export interface GpioBackend {
  output(chip: string, line: number, initial: 0 | 1): GpioOutputLine;
  /** Watch an input; onValue is called with the current level at once and on every edge. */
  input(chip: string, line: number, bias: Bias, onValue: (value: 0 | 1) => void): GpioInputLine;
  /** False while an input is not watched (a supervised watcher between death and restart). */
  healthy?(): boolean;
}

const MODES = { INPUT: 0x00, OUTPUT: 0x01, ANALOG: 0x02, PWM: 0x03, SERVO: 0x04, PULLUP: 0x0b } as const;

export class LinuxGpioIo extends EventEmitter {
  readonly name = 'LinuxGpio';
  readonly MODES = MODES;
  readonly HIGH = 1;
  readonly LOW = 0;
  readonly defaultLed = 17;
  readonly pins = Array.from({ length: 28 }, () => ({
    supportedModes: [MODES.INPUT, MODES.OUTPUT, MODES.PULLUP] as number[],
    mode: MODES.INPUT as number,
    value: 0,
    report: 0,
    analogChannel: 127,
  }));
  readonly analogPins: number[] = [];
  isReady = false;
  private readonly chip: string;
  private readonly backend: GpioBackend;
  private readonly outputs = new Map<number, GpioOutputLine>();
  private readonly inputs = new Map<number, GpioInputLine>();
  private readonly bias = new Map<number, Bias>();

  /** `backend`: libgpiod's tools (LibgpiodToolsBackend, after detectGpiod) or a test's stand-in. */
  constructor(opts: { chip: string; backend: GpioBackend }) {
    super();
    this.chip = opts.chip;
    this.backend = opts.backend;
    process.nextTick(() => {
      this.isReady = true;
      this.emit('connect');
      this.emit('ready');
    });
  }

  private pin(n: number) {
    const p = this.pins[n];
    if (!p) throw new RangeError(`LinuxGpio: GPIO ${n} is not on the header (0..27)`);
    return p;
  }

  pinMode(pin: number, mode: number): this {
    const p = this.pin(pin);
    p.mode = mode;
    if (mode === MODES.OUTPUT || mode === MODES.PWM) {
      this.inputs.get(pin)?.close();
      this.inputs.delete(pin);
      if (!this.outputs.has(pin)) this.outputs.set(pin, this.backend.output(this.chip, pin, 0));
    } else {
      this.outputs.get(pin)?.close();
      this.outputs.delete(pin);
      if (mode === MODES.PULLUP) this.bias.set(pin, 'pull-up');
    }
    return this;
  }

  digitalWrite(pin: number, value: number): this {
    const p = this.pin(pin);
    const out = this.outputs.get(pin);
    if (!out) {
      // Firmata convention: HIGH on an input enables the pull-up, LOW disables it.
      this.bias.set(pin, value ? 'pull-up' : 'disabled');
      return this;
    }
    p.value = value ? 1 : 0;
    out.set(p.value as 0 | 1);
    return this;
  }

  /** No PWM on this plugin: any value above 0 is on. */
  analogWrite(pin: number, value: number): this {
    if (!this.outputs.has(pin)) this.pinMode(pin, MODES.OUTPUT);
    return this.digitalWrite(pin, value > 0 ? 1 : 0);
  }

  digitalRead(pin: number, handler: (value: number) => void): this {
    const p = this.pin(pin);
    this.inputs.get(pin)?.close();
    const line = this.backend.input(this.chip, pin, this.bias.get(pin) ?? 'disabled', (v) => {
      p.value = v;
      handler(v);
      this.emit(`digital-read-${pin}`, v);
    });
    this.inputs.set(pin, line);
    return this;
  }

  analogRead(): this {
    return this;
  }
  reportAnalogPin(): this {
    return this;
  }
  setSamplingInterval(): this {
    return this;
  }
  normalize(pin: number): number {
    return pin;
  }

  /** False while an input line has no live watcher (the box's watchdog asks). */
  healthy(): boolean {
    return this.backend.healthy?.() ?? true;
  }

  async close(): Promise<void> {
    for (const l of this.outputs.values()) l.close();
    for (const l of this.inputs.values()) l.close();
    this.outputs.clear();
    this.inputs.clear();
  }
}

export type GpiodDialect = 'v1' | 'v2';

/** The command lines of libgpiod's tools in each generation (pure; tested). */
export interface GpiodCommands {
  /** Hold an output line at `initial` until killed (v2: and take `set` lines on stdin). */
  set(chip: string, line: number, initial: 0 | 1): string[];
  /** v2 only: the stdin line that changes a held output; v1 must restart gpioset with the new value. */
  setLine: ((line: number, value: 0 | 1) => string) | null;
  get(chip: string, line: number, bias: Bias): string[];
  mon(chip: string, line: number, bias: Bias): string[];
  /** One line of gpiomon's output in the format mon() asked for. */
  parseEvent(text: string): { line: number; value: 0 | 1 } | null;
}

/** libgpiod 2.x: `--chip`, interactive gpioset, edge numbers 1 (rising) and 2 (falling). */
export const gpiodV2: GpiodCommands = {
  set: (chip, line, initial) => ['gpioset', '--chip', chip, '--interactive', `${line}=${initial}`],
  setLine: (line, value) => `set ${line}=${value}\n`,
  get: (chip, line, bias) => ['gpioget', '--chip', chip, '--numeric', '--bias', bias, `${line}`],
  mon: (chip, line, bias) => [
    'gpiomon',
    '--chip',
    chip,
    '--bias',
    bias,
    '--edges',
    'both',
    '--format',
    '%o %e',
    `${line}`,
  ],
  parseEvent: (text) => {
    const m = /^(\d+)\s+([12])$/.exec(text.trim());
    return m ? { line: Number(m[1]), value: m[2] === '1' ? 1 : 0 } : null;
  },
};

/** libgpiod 1.x: the chip is the first operand, gpioset holds with --mode=signal, edges 1 (rising) and 0 (falling). */
export const gpiodV1: GpiodCommands = {
  set: (chip, line, initial) => ['gpioset', '--mode=signal', chip, `${line}=${initial}`],
  setLine: null,
  get: (chip, line, bias) => ['gpioget', `--bias=${v1Bias(bias)}`, chip, `${line}`],
  mon: (chip, line, bias) => ['gpiomon', `--bias=${v1Bias(bias)}`, '--format=%o %e', chip, `${line}`],
  parseEvent: (text) => {
    const m = /^(\d+)\s+([01])$/.exec(text.trim());
    return m ? { line: Number(m[1]), value: m[2] === '1' ? 1 : 0 } : null;
  },
};

function v1Bias(bias: Bias): string {
  return bias === 'disabled' ? 'disable' : bias;
}

/** Which generation `gpioset --version` names ("gpioset (libgpiod) v1.6.3", "gpioset (libgpiod) v2.1.3"). */
export function parseGpiodVersion(text: string): GpiodDialect | null {
  const m = /\(libgpiod\)\s+v?(\d+)\./.exec(text);
  if (!m) return null;
  return m[1] === '1' ? 'v1' : m[1] === '2' ? 'v2' : null;
}

/**
 * Find libgpiod's tools and their generation. Rejects with a message that says what to install when they are
 * missing, instead of a board that reports ready and then fails every spawn.
 */
export function detectGpiod(env: NodeJS.ProcessEnv = process.env): Promise<GpiodDialect> {
  return new Promise((resolve, reject) => {
    execFile('gpioset', ['--version'], { env, timeout: 5000 }, (err, stdout) => {
      const dialect = parseGpiodVersion(String(stdout));
      if (dialect) return resolve(dialect);
      const why =
        (err as NodeJS.ErrnoException | null)?.code === 'ENOENT'
          ? 'gpioset is not installed'
          : `gpioset --version answered ${JSON.stringify(String(stdout).trim().slice(0, 80))}`;
      reject(
        new CallboxError(
          ErrorCode.IoBoardFailed,
          `io.board linux-gpio needs libgpiod's tools, version 1 or 2: ${why}. ` +
            'Install the Debian package gpiod (scripts/install-deps.sh does), or set io.board to firmata or virtual',
        ),
      );
    });
  });
}

export interface ToolsBackendOptions {
  dialect: GpiodDialect;
  env?: NodeJS.ProcessEnv;
  /** First restart delay of a dead tool (ms); doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called when a tool died and is being restarted (the box logs and counts it). */
  onToolDied?: (what: { cmd: string; line: number; code: number | null; signal: string | null }) => void;
}

/** GpioBackend over libgpiod's gpioset/gpioget/gpiomon, supervised. */
export class LibgpiodToolsBackend implements GpioBackend {
  readonly dialect: GpiodDialect;
  private readonly cmds: GpiodCommands;
  private readonly watchers = new Set<{ alive: () => boolean }>();
  /** Tools that died and were restarted, since start. */
  restarts = 0;

  constructor(private readonly opts: ToolsBackendOptions) {
    this.dialect = opts.dialect;
    this.cmds = opts.dialect === 'v1' ? gpiodV1 : gpiodV2;
  }

  /** False while an input has no live watcher (between a death and its restart). */
  healthy(): boolean {
    for (const w of this.watchers) if (!w.alive()) return false;
    return true;
  }

  private run(argv: string[]): ChildProcess {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'], env: this.opts.env ?? process.env });
    child.on('error', (e) => log.error({ err: e, cmd }, `${cmd} failed to start`));
    // A write racing the child's death fails with EPIPE: the exit handler deals with the death itself.
    child.stdin?.on('error', (e) => log.debug({ err: e, cmd }, `${cmd} stdin closed`));
    child.stderr?.on('data', (d: Buffer) => log.warn({ cmd }, d.toString().trim()));
    return child;
  }

  private backoff(attempt: number): number {
    return backoffDelay(attempt, { initial: this.opts.minBackoffMs ?? 100, max: this.opts.maxBackoffMs ?? 5000 });
  }

  private died(cmd: string, line: number, code: number | null, signal: string | null): void {
    this.restarts++;
    log.error({ cmd, line, code, signal }, `${cmd} for GPIO ${line} died: restarting it`);
    this.opts.onToolDied?.({ cmd, line, code, signal });
  }

  output(chip: string, line: number, initial: 0 | 1): GpioOutputLine {
    let value = initial;
    let child: ChildProcess | null = null;
    let closed = false;
    let attempt = 0;
    let restartTimer: NodeJS.Timeout | undefined;
    /** v1: the value to hold once the previous gpioset has let go of the line. */
    let respawnPending = false;
    const start = () => {
      if (closed) return;
      const c = this.run(this.cmds.set(chip, line, value));
      child = c;
      const startedAt = Date.now();
      c.once('exit', (code, signal) => {
        if (child !== c) return;
        child = null;
        if (closed) return;
        if (respawnPending) {
          respawnPending = false;
          // v1 gpioset exits 0 on our SIGTERM; anything else is a death that raced the change of value.
          if (code !== 0 || signal !== null) this.died('gpioset', line, code, signal);
          start();
          return;
        }
        if (Date.now() - startedAt > 60_000) attempt = 0;
        this.died('gpioset', line, code, signal);
        restartTimer = setTimeout(start, this.backoff(attempt++));
      });
    };
    start();
    return {
      set: (v) => {
        if (v === value && child) return;
        value = v;
        if (this.cmds.setLine) {
          child?.stdin?.write(this.cmds.setLine(line, v));
        } else if (child) {
          // v1 holds one value per process: release the line, then hold the new value.
          respawnPending = true;
          child.kill('SIGTERM');
        }
      },
      close: () => {
        closed = true;
        clearTimeout(restartTimer);
        child?.kill('SIGTERM');
      },
    };
  }

  input(chip: string, line: number, bias: Bias, onValue: (value: 0 | 1) => void): GpioInputLine {
    let mon: ChildProcess | null = null;
    let get: ChildProcess | null = null;
    let closed = false;
    let attempt = 0;
    let restartTimer: NodeJS.Timeout | undefined;
    const watcher = { alive: () => closed || mon !== null };
    this.watchers.add(watcher);
    // Read the level first, then watch edges (a line is requested by one process at a time).
    const start = () => {
      if (closed) return;
      const g = this.run(this.cmds.get(chip, line, bias));
      get = g;
      g.stdout?.on('data', (d: Buffer) => {
        const v = d.toString().trim();
        if (v === '0' || v === '1') onValue(Number(v) as 0 | 1);
      });
      g.once('exit', () => {
        get = null;
        if (closed) return;
        const m = this.run(this.cmds.mon(chip, line, bias));
        mon = m;
        const startedAt = Date.now();
        if (m.stdout) {
          const lines = createInterface({ input: m.stdout });
          lines.on('error', () => undefined); // the exit handler deals with the watcher's death
          lines.on('line', (text) => {
            const ev = this.cmds.parseEvent(text);
            if (ev && ev.line === line) onValue(ev.value);
          });
        }
        m.once('exit', (code, signal) => {
          mon = null;
          if (closed) return;
          if (Date.now() - startedAt > 60_000) attempt = 0;
          this.died('gpiomon', line, code, signal);
          restartTimer = setTimeout(start, this.backoff(attempt++));
        });
      });
    };
    start();
    return {
      close: () => {
        closed = true;
        this.watchers.delete(watcher);
        clearTimeout(restartTimer);
        get?.kill();
        mon?.kill();
      },
    };
  }
}
