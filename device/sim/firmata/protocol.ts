/**
 * The board side of the Firmata protocol (Firmata 2.x, as StandardFirmata
 * speaks it) for an Arduino Uno/Nano: 20 pins, PWM on 3, 5, 6, 9, 10, 11,
 * analog inputs A0-A5 on pins 14-19. Bytes in, bytes out; no transport.
 *
 * Handled: REPORT_VERSION, QUERY_FIRMWARE, CAPABILITY_QUERY,
 * ANALOG_MAPPING_QUERY, PIN_STATE_QUERY, SET_PIN_MODE, DIGITAL_MESSAGE,
 * SET_DIGITAL_PIN_VALUE, ANALOG_MESSAGE / EXTENDED_ANALOG (PWM),
 * REPORT_DIGITAL, REPORT_ANALOG, SAMPLING_INTERVAL, SYSTEM_RESET.
 * Unknown messages are counted in `discarded` and skipped.
 */
import { EventEmitter } from 'node:events';

export const FIRMATA = {
  DIGITAL_MESSAGE: 0x90,
  ANALOG_MESSAGE: 0xe0,
  REPORT_ANALOG: 0xc0,
  REPORT_DIGITAL: 0xd0,
  SET_PIN_MODE: 0xf4,
  SET_DIGITAL_PIN_VALUE: 0xf5,
  REPORT_VERSION: 0xf9,
  SYSTEM_RESET: 0xff,
  START_SYSEX: 0xf0,
  END_SYSEX: 0xf7,
  QUERY_FIRMWARE: 0x79,
  CAPABILITY_QUERY: 0x6b,
  CAPABILITY_RESPONSE: 0x6c,
  ANALOG_MAPPING_QUERY: 0x69,
  ANALOG_MAPPING_RESPONSE: 0x6a,
  PIN_STATE_QUERY: 0x6d,
  PIN_STATE_RESPONSE: 0x6e,
  EXTENDED_ANALOG: 0x6f,
  SAMPLING_INTERVAL: 0x7a,
} as const;

export const PIN_MODES = { INPUT: 0, OUTPUT: 1, ANALOG: 2, PWM: 3, SERVO: 4, PULLUP: 0x0b } as const;

const PWM_PINS = new Set([3, 5, 6, 9, 10, 11]);
const PIN_COUNT = 20;
const FIRMWARE = 'StandardFirmata.ino';

interface Pin {
  mode: number;
  /** Output value (0/1, PWM 0..255), or the input level. */
  value: number;
  pullup: boolean;
  /** Level driven from outside (a switch); null = floating (reads the pull-up). */
  external: number | null;
}

export interface FirmataBoardEvents {
  /** Bytes for the host. */
  send: [bytes: Buffer];
  output: [pin: number, value: number];
  mode: [pin: number, mode: number];
}

export class FirmataBoard extends EventEmitter<FirmataBoardEvents> {
  readonly pins: Pin[] = Array.from({ length: PIN_COUNT }, () => ({
    mode: PIN_MODES.OUTPUT,
    value: 0,
    pullup: false,
    external: null,
  }));
  private readonly reportPorts = new Set<number>();
  private buf: number[] = [];
  samplingIntervalMs = 19;
  discarded = 0;

  /** What a freshly reset board announces (StandardFirmata does this in setup()). */
  announce(): void {
    this.send([FIRMATA.REPORT_VERSION, 2, 5]);
    this.sendFirmware();
  }

  /** Bytes from the host. */
  receive(data: Buffer | number[]): void {
    for (const b of data) this.byte(b);
  }

  private byte(b: number): void {
    const buf = this.buf;
    if (buf.length === 0) {
      if (b === FIRMATA.REPORT_VERSION) {
        this.send([FIRMATA.REPORT_VERSION, 2, 5]);
        return;
      }
      if (b === FIRMATA.SYSTEM_RESET) {
        this.reset();
        return;
      }
      if (b < 0x80) {
        this.discarded++;
        return;
      }
      buf.push(b);
      return;
    }
    const first = buf[0]!;
    if (first === FIRMATA.START_SYSEX) {
      if (b === FIRMATA.END_SYSEX) {
        this.sysex(buf.slice(1));
        this.buf = [];
      } else buf.push(b);
      return;
    }
    if (b >= 0x80) {
      // a new command before the last was complete: drop the partial one
      this.discarded++;
      this.buf = [];
      this.byte(b);
      return;
    }
    buf.push(b);
    const cmd = first < 0xf0 ? first & 0xf0 : first;
    const need = cmd === FIRMATA.REPORT_ANALOG || cmd === FIRMATA.REPORT_DIGITAL ? 2 : 3;
    if (buf.length < need) return;
    this.buf = [];
    this.midi(cmd, first & 0x0f, buf[1]!, buf[2] ?? 0);
  }

  private midi(cmd: number, channel: number, a: number, b: number): void {
    switch (cmd) {
      case FIRMATA.DIGITAL_MESSAGE: {
        const bits = a | (b << 7);
        for (let i = 0; i < 8; i++) this.writeDigital(channel * 8 + i, (bits >> i) & 1);
        return;
      }
      case FIRMATA.SET_PIN_MODE:
        this.setMode(a, b);
        return;
      case FIRMATA.SET_DIGITAL_PIN_VALUE:
        this.writeDigital(a, b ? 1 : 0);
        return;
      case FIRMATA.ANALOG_MESSAGE:
        this.writeAnalog(channel, a | (b << 7));
        return;
      case FIRMATA.REPORT_DIGITAL:
        if (a) {
          this.reportPorts.add(channel);
          this.reportPort(channel);
        } else this.reportPorts.delete(channel);
        return;
      case FIRMATA.REPORT_ANALOG:
        return; // no analog inputs are wired on the box
      default:
        this.discarded++;
    }
  }

  private sysex(data: number[]): void {
    const [cmd, ...rest] = data;
    switch (cmd) {
      case FIRMATA.QUERY_FIRMWARE:
        this.sendFirmware();
        return;
      case FIRMATA.CAPABILITY_QUERY: {
        const out: number[] = [FIRMATA.START_SYSEX, FIRMATA.CAPABILITY_RESPONSE];
        for (let p = 0; p < PIN_COUNT; p++) {
          out.push(PIN_MODES.INPUT, 1, PIN_MODES.OUTPUT, 1, PIN_MODES.PULLUP, 1);
          if (p >= 14) out.push(PIN_MODES.ANALOG, 10);
          if (PWM_PINS.has(p)) out.push(PIN_MODES.PWM, 8);
          out.push(0x7f);
        }
        out.push(FIRMATA.END_SYSEX);
        this.send(out);
        return;
      }
      case FIRMATA.ANALOG_MAPPING_QUERY: {
        const map = Array.from({ length: PIN_COUNT }, (_, p) => (p >= 14 ? p - 14 : 0x7f));
        this.send([FIRMATA.START_SYSEX, FIRMATA.ANALOG_MAPPING_RESPONSE, ...map, FIRMATA.END_SYSEX]);
        return;
      }
      case FIRMATA.PIN_STATE_QUERY: {
        const p = rest[0] ?? 0;
        const pin = this.pins[p];
        if (!pin) return;
        const state = pin.mode === PIN_MODES.INPUT ? (pin.pullup ? 1 : 0) : pin.value;
        this.send([
          FIRMATA.START_SYSEX,
          FIRMATA.PIN_STATE_RESPONSE,
          p,
          pin.mode,
          state & 0x7f,
          (state >> 7) & 0x7f,
          FIRMATA.END_SYSEX,
        ]);
        return;
      }
      case FIRMATA.EXTENDED_ANALOG: {
        const [p = 0, ...v] = rest;
        const value = v.reduce((acc, byte, i) => acc | (byte << (7 * i)), 0);
        this.writeAnalog(p, value);
        return;
      }
      case FIRMATA.SAMPLING_INTERVAL:
        this.samplingIntervalMs = (rest[0] ?? 0) | ((rest[1] ?? 0) << 7);
        return;
      default:
        this.discarded++;
    }
  }

  private sendFirmware(): void {
    const name: number[] = [];
    for (const c of Buffer.from(FIRMWARE)) name.push(c & 0x7f, c >> 7);
    this.send([FIRMATA.START_SYSEX, FIRMATA.QUERY_FIRMWARE, 2, 5, ...name, FIRMATA.END_SYSEX]);
  }

  private setMode(p: number, mode: number): void {
    const pin = this.pins[p];
    if (!pin) {
      this.discarded++;
      return;
    }
    pin.mode = mode;
    pin.pullup = mode === PIN_MODES.PULLUP;
    this.emit('mode', p, mode);
    if (this.isInput(pin)) this.reportPort(p >> 3);
  }

  private isInput(pin: Pin): boolean {
    return pin.mode === PIN_MODES.INPUT || pin.mode === PIN_MODES.PULLUP;
  }

  private writeDigital(p: number, v: number): void {
    const pin = this.pins[p];
    if (!pin) return;
    if (this.isInput(pin)) {
      // StandardFirmata: writing HIGH to an input enables its pull-up.
      const was = this.inputLevel(pin);
      pin.pullup = v === 1;
      if (this.inputLevel(pin) !== was) this.reportPort(p >> 3);
      return;
    }
    if (pin.mode !== PIN_MODES.OUTPUT) return;
    if (pin.value !== v) {
      pin.value = v;
      this.emit('output', p, v);
    }
  }

  private writeAnalog(p: number, v: number): void {
    const pin = this.pins[p];
    if (!pin || pin.mode !== PIN_MODES.PWM) return;
    if (pin.value !== v) {
      pin.value = v;
      this.emit('output', p, v);
    }
  }

  private inputLevel(pin: Pin): number {
    return pin.external ?? (pin.pullup ? 1 : 0);
  }

  private reportPort(port: number): void {
    if (!this.reportPorts.has(port)) return;
    let bits = 0;
    for (let i = 0; i < 8; i++) {
      const pin = this.pins[port * 8 + i];
      if (pin && this.isInput(pin) && this.inputLevel(pin)) bits |= 1 << i;
    }
    this.send([FIRMATA.DIGITAL_MESSAGE | port, bits & 0x7f, (bits >> 7) & 0x7f]);
  }

  /** Drive an input from outside (a switch): 0/1, or null to let it float to its pull-up. */
  setInput(p: number, level: 0 | 1 | null): void {
    const pin = this.pins[p];
    if (!pin) throw new RangeError(`no pin ${p}`);
    const was = this.inputLevel(pin);
    pin.external = level;
    if (this.isInput(pin) && this.inputLevel(pin) !== was) this.reportPort(p >> 3);
  }

  private reset(): void {
    this.reportPorts.clear();
    for (const pin of this.pins) Object.assign(pin, { mode: PIN_MODES.OUTPUT, value: 0, pullup: false });
    this.buf = [];
  }

  private send(bytes: number[]): void {
    this.emit('send', Buffer.from(bytes));
  }
}
