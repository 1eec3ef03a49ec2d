/**
 * A johnny-five IO plugin with no hardware behind it: the simulation board
 * of the box. It implements the IO-plugin interface johnny-five drives
 * (pins, MODES, pinMode, digitalWrite, analogWrite, digitalRead, ...), so
 * the real Led and Button components run on it unchanged; tests and the
 * demo drive its inputs (press(), setInput()) and read its outputs
 * (level(), the 'output' event, writes).
 *
 * Pins are the Pi header's BCM lines 0..27 (the numbering of pinmap.json's
 * `gpio`); every pin can be input, output or PWM. An input with a pull-up
 * (johnny-five writes HIGH to an input pin to enable it) idles high.
 */
import { EventEmitter } from 'node:events';

export const MODES = {
  INPUT: 0x00,
  OUTPUT: 0x01,
  ANALOG: 0x02,
  PWM: 0x03,
  SERVO: 0x04,
  PULLUP: 0x0b,
} as const;

interface PinState {
  supportedModes: number[];
  mode: number;
  value: number;
  report: number;
  analogChannel: number;
}

export interface PinWrite {
  pin: number;
  value: number;
  at: number;
}

export interface VirtualIoOptions {
  pinCount?: number;
  /** Emit 'ready' on the next tick (default) or wait for ready() (tests of start-up). */
  autoReady?: boolean;
}

export class VirtualIo extends EventEmitter {
  readonly name = 'VirtualIo';
  readonly MODES = MODES;
  readonly HIGH = 1;
  readonly LOW = 0;
  readonly defaultLed = 17;
  readonly RESOLUTION = { ADC: 1023, DAC: null, PWM: 255 };
  readonly pins: PinState[];
  readonly analogPins: number[] = [];
  isReady = false;
  /** Every output write, in order (tests read it). */
  readonly writes: PinWrite[] = [];
  private readonly readers = new Map<number, ((value: number) => void)[]>();
  private readonly inputs = new Map<number, number>();
  private readonly pullups = new Set<number>();

  constructor(opts: VirtualIoOptions = {}) {
    super();
    this.pins = Array.from({ length: opts.pinCount ?? 28 }, () => ({
      supportedModes: [MODES.INPUT, MODES.OUTPUT, MODES.PWM, MODES.PULLUP],
      mode: MODES.INPUT,
      value: 0,
      report: 0,
      analogChannel: 127,
    }));
    if (opts.autoReady !== false) process.nextTick(() => this.ready());
  }

  ready(): void {
    if (this.isReady) return;
    this.isReady = true;
    this.emit('connect');
    this.emit('ready');
  }

  private pin(n: number): PinState {
    const p = this.pins[n];
    if (!p) throw new RangeError(`VirtualIo: pin ${n} does not exist (0..${this.pins.length - 1})`);
    return p;
  }

  pinMode(pin: number, mode: number): this {
    const p = this.pin(pin);
    p.mode = mode;
    if (mode === MODES.PULLUP) this.pullups.add(pin);
    return this;
  }

  digitalWrite(pin: number, value: number): this {
    const p = this.pin(pin);
    if (p.mode === MODES.INPUT || p.mode === MODES.PULLUP) {
      // Firmata convention: writing HIGH to an input enables its pull-up.
      if (value) this.pullups.add(pin);
      else this.pullups.delete(pin);
      return this;
    }
    this.output(pin, value ? 1 : 0);
    return this;
  }

  analogWrite(pin: number, value: number): this {
    this.output(pin, Math.max(0, Math.min(255, Math.round(value))));
    return this;
  }

  pwmWrite(pin: number, value: number): this {
    return this.analogWrite(pin, value);
  }

  servoWrite(pin: number, value: number): this {
    return this.analogWrite(pin, value);
  }

  private output(pin: number, value: number): void {
    const p = this.pin(pin);
    const changed = p.value !== value;
    p.value = value;
    this.writes.push({ pin, value, at: Date.now() });
    if (changed) this.emit('output', pin, value);
  }

  digitalRead(pin: number, handler: (value: number) => void): this {
    const p = this.pin(pin);
    p.report = 1;
    const list = this.readers.get(pin) ?? [];
    list.push(handler);
    this.readers.set(pin, list);
    const value = this.inputLevel(pin);
    process.nextTick(() => handler(value));
    return this;
  }

  analogRead(_pin: number, _handler: (value: number) => void): this {
    return this;
  }

  reportDigitalPin(pin: number, value: 0 | 1): this {
    this.pin(pin).report = value;
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

  /** The level an input pin reads: what the test set, else its pull-up (1) or 0. */
  inputLevel(pin: number): number {
    return this.inputs.get(pin) ?? (this.pullups.has(pin) ? 1 : 0);
  }

  /** Drive an input pin (0 or 1), as a switch or a bouncing contact would. */
  setInput(pin: number, value: 0 | 1): void {
    this.pin(pin);
    if (this.inputLevel(pin) === value && this.inputs.has(pin)) return;
    this.inputs.set(pin, value);
    this.pins[pin]!.value = value;
    for (const h of this.readers.get(pin) ?? []) h(value);
  }

  /** A button wired to ground (active low) pressed or released. */
  press(pin: number, pressed = true, activeLow = true): void {
    this.setInput(pin, pressed === activeLow ? 0 : 1);
  }

  /** The current output level of a pin (PWM: 0..255). */
  level(pin: number): number {
    return this.pin(pin).value;
  }

  /** Whether johnny-five put the pin in an output mode. */
  inOutputMode(pin: number): boolean {
    const m = this.pin(pin).mode;
    return m === MODES.OUTPUT || m === MODES.PWM;
  }
}
