/**
 * A Firmata board (Arduino Uno with StandardFirmata) on a pseudo-terminal:
 * socat makes the pty pair, the emulator opens one end with serialport and
 * speaks Firmata (protocol.ts); the driver opens `path` as it would open
 * /dev/ttyACM0. Tests press buttons with setInput() and read LEDs with
 * level() or the 'output' event.
 */
import { EventEmitter } from 'node:events';
import { SerialPort } from 'serialport';
import { FirmataBoard } from './protocol.js';
import { openPtyPair, type PtyPair } from './pty-pair.js';

export interface FirmataEmulatorEvents {
  output: [pin: number, value: number];
  mode: [pin: number, mode: number];
}

export class FirmataEmulator extends EventEmitter<FirmataEmulatorEvents> {
  readonly board = new FirmataBoard();

  private constructor(
    private readonly pty: PtyPair,
    private readonly port: SerialPort,
  ) {
    super();
    this.board.on('send', (bytes) => this.port.write(bytes));
    this.board.on('output', (p, v) => this.emit('output', p, v));
    this.board.on('mode', (p, m) => this.emit('mode', p, m));
    this.port.on('data', (d: Buffer) => this.board.receive(d));
  }

  /** The serial port path for the driver. */
  get path(): string {
    return this.pty.hostPath;
  }

  static async start(): Promise<FirmataEmulator> {
    const pty = await openPtyPair();
    const port = new SerialPort({ path: pty.devicePath, baudRate: 57600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    return new FirmataEmulator(pty, port);
  }

  setInput(pin: number, level: 0 | 1 | null): void {
    this.board.setInput(pin, level);
  }

  level(pin: number): number {
    return this.board.pins[pin]?.value ?? 0;
  }

  mode(pin: number): number | undefined {
    return this.board.pins[pin]?.mode;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.port.isOpen ? this.port.close(() => resolve()) : resolve()));
    await this.pty.close();
  }
}
