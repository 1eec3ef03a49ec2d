/**
 * A thin johnny-five IO plugin for the Raspberry Pi header over the Linux
 * GPIO character device (/dev/gpiochipN), the interface the kernel keeps
 * for both the Pi 4 (BCM2711) and the Pi 5 (RP1), where pigpio-based
 * plugins (pigpio, raspi-io over pigpio) cannot work because the Pi 5's
 * GPIO sits behind the RP1 chip and pigpio pokes BCM registers directly.
 *
 * Node has no ioctl, so the hardware calls go through one seam,
 * GpioBackend. The default backend runs libgpiod v2's tools (gpioset in
 * interactive mode holds output lines; gpiomon reports input edges), which
 * Raspberry Pi OS ships (package gpiod); no native npm module is needed.
 *
 * Limits (documented in hardware-schematics/README.md): digital in/out only,
 * no PWM (analogWrite > 0 is on, so buzzer volume is on/off on the Pi
 * header; use a Firmata board for volume), edge reporting latency of a few
 * ms through the child processes, and no test on real hardware here: the
 * plugin is tested with a fake backend, the tool backend only for its
 * command lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
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

  constructor(opts: { chip: string; backend?: GpioBackend }) {
    super();
    this.chip = opts.chip;
    this.backend = opts.backend ?? new LibgpiodToolsBackend();
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

  async close(): Promise<void> {
    for (const l of this.outputs.values()) l.close();
    for (const l of this.inputs.values()) l.close();
    this.outputs.clear();
    this.inputs.clear();
  }
}

/** The command lines of the libgpiod v2 tools (pure; tested). */
export const gpiodCommands = {
  set: (chip: string, line: number, initial: 0 | 1) => [
    'gpioset',
    '--chip',
    chip,
    '--interactive',
    `${line}=${initial}`,
  ],
  setLine: (line: number, value: 0 | 1) => `set ${line}=${value}\n`,
  get: (chip: string, line: number, bias: Bias) => ['gpioget', '--chip', chip, '--numeric', '--bias', bias, `${line}`],
  mon: (chip: string, line: number, bias: Bias) => [
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
  /** "%o %e": offset, then 1 for a rising and 2 for a falling edge. */
  parseEvent: (text: string): { line: number; value: 0 | 1 } | null => {
    const m = /^(\d+)\s+([12])$/.exec(text.trim());
    return m ? { line: Number(m[1]), value: m[2] === '1' ? 1 : 0 } : null;
  },
};

/** GpioBackend over libgpiod v2's gpioset/gpioget/gpiomon (Raspberry Pi OS package gpiod). */
export class LibgpiodToolsBackend implements GpioBackend {
  private run(argv: string[]): ChildProcess {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.on('error', (e) => log.error({ err: e, cmd }, `${cmd} failed to start (is the gpiod package installed?)`));
    child.stderr?.on('data', (d: Buffer) => log.warn({ cmd }, d.toString().trim()));
    return child;
  }

  output(chip: string, line: number, initial: 0 | 1): GpioOutputLine {
    const child = this.run(gpiodCommands.set(chip, line, initial));
    return {
      set: (v) => child.stdin?.write(gpiodCommands.setLine(line, v)),
      close: () => child.kill(),
    };
  }

  input(chip: string, line: number, bias: Bias, onValue: (value: 0 | 1) => void): GpioInputLine {
    // Read the level first, then watch edges: a line can be requested by one process at a time.
    let mon: ChildProcess | null = null;
    let closed = false;
    const get = this.run(gpiodCommands.get(chip, line, bias));
    get.stdout?.on('data', (d: Buffer) => {
      const v = d.toString().trim();
      if (v === '0' || v === '1') onValue(Number(v) as 0 | 1);
    });
    get.on('exit', () => {
      if (closed) return;
      mon = this.run(gpiodCommands.mon(chip, line, bias));
      if (mon.stdout) {
        createInterface({ input: mon.stdout }).on('line', (text) => {
          const ev = gpiodCommands.parseEvent(text);
          if (ev && ev.line === line) onValue(ev.value);
        });
      }
    });
    return {
      close: () => {
        closed = true;
        mon?.kill();
      },
    };
  }
}
