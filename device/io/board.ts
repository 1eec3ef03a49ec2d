/**
 * Opens the johnny-five Board on the IO plugin the configuration names:
 *  - virtual: device/sim/virtual-io (simulation, tests, demo);
 *  - firmata: a USB microcontroller running StandardFirmata. johnny-five's
 *    own serial path would load serialport 8 (its native build is disabled
 *    here), so we open the port with the project's serialport 13 and hand
 *    it to firmata-io's Firmata, which takes any port-like stream;
 *  - linux-gpio: the Pi header through the GPIO character device
 *    (device/io/linux-gpio.ts).
 * The pin numbering follows: BCM lines for virtual and linux-gpio, Arduino
 * pins for firmata (pinmap.json has both).
 */
import { SerialPort } from 'serialport';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { VirtualIo } from '../sim/virtual-io/virtual-io.js';
import { type FiveBoard, firmataClass, type IoPlugin, johnnyFive } from './five.js';
import { detectGpiod, type GpioBackend, LibgpiodToolsBackend, LinuxGpioIo } from './linux-gpio.js';
import type { PinNumbering } from './pinmap.js';

const log = getLogger('device:io:board');

export interface BoardConfig {
  board: 'virtual' | 'firmata' | 'linux-gpio';
  firmataPath: string;
  firmataBaudRate: number;
  gpioChip: string;
}

export interface OpenBoardOptions {
  /** The virtual board to use (tests and the demo drive it); a new one if absent. */
  virtualIo?: VirtualIo;
  /** The GPIO seam for linux-gpio (tests inject a fake); default: libgpiod's tools, detected. */
  gpioBackend?: GpioBackend;
  /** Environment of libgpiod's tools (PATH: tests point it at device/sim/gpiod's stand-ins). */
  env?: NodeJS.ProcessEnv;
  /** Give up when the board is not ready within this time. */
  readyTimeoutMs?: number;
  /** Firmata: ask for the firmware version after this long if the board has not announced it. */
  reportVersionTimeoutMs?: number;
}

export interface OpenedBoard {
  board: FiveBoard;
  io: IoPlugin;
  numbering: PinNumbering;
  close(): Promise<void>;
}

export async function openBoard(cfg: BoardConfig, opts: OpenBoardOptions = {}): Promise<OpenedBoard> {
  let io: IoPlugin;
  let numbering: PinNumbering = 'gpio';
  let closeIo: () => Promise<void> = async () => {};
  let startIo: () => Promise<void> = async () => {};
  switch (cfg.board) {
    case 'virtual': {
      // The stand-in is loaded only when configured: a box on real hardware never evaluates it (the build keeps it
      // in a chunk of its own, dist/device/chunks/, loaded by this import).
      io = opts.virtualIo ?? new (await import('../sim/virtual-io/virtual-io.js')).VirtualIo();
      break;
    }
    case 'firmata': {
      numbering = 'firmata';
      const port = new SerialPort({ path: cfg.firmataPath, baudRate: cfg.firmataBaudRate, autoOpen: false });
      const Firmata = firmataClass();
      // Firmata must be listening before the port opens: it turns 'open' into johnny-five's 'connect'.
      io = new Firmata(port, { reportVersionTimeout: opts.reportVersionTimeoutMs ?? 2000 });
      // johnny-five's Board must exist before the port opens too: it waits for 'connect' before 'ready'.
      startIo = () =>
        new Promise<void>((resolve, reject) =>
          port.open((err) =>
            err
              ? reject(
                  new CallboxError(
                    ErrorCode.IoBoardFailed,
                    `Firmata board ${cfg.firmataPath} cannot be opened: ${err.message}`,
                    { path: cfg.firmataPath },
                    { cause: err },
                  ),
                )
              : resolve(),
          ),
        );
      closeIo = () =>
        new Promise<void>((resolve) => {
          if (!port.isOpen) return resolve();
          port.close(() => resolve());
        });
      break;
    }
    case 'linux-gpio': {
      const backend = opts.gpioBackend ?? new LibgpiodToolsBackend({ dialect: await detectGpiod(opts.env) });
      if (backend instanceof LibgpiodToolsBackend) log.info({ dialect: backend.dialect }, "using libgpiod's tools");
      const gpio = new LinuxGpioIo({ chip: cfg.gpioChip, backend });
      io = gpio;
      closeIo = () => gpio.close();
      break;
    }
  }
  const five = johnnyFive();
  const board = new five.Board({ io, repl: false, debug: false, sigint: false });
  const timeoutMs = opts.readyTimeoutMs ?? 15_000;
  try {
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new CallboxError(ErrorCode.IoBoardFailed, `${cfg.board} IO board not ready within ${timeoutMs} ms`)),
        timeoutMs,
      );
      board.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
      board.once('error', (e: unknown) => {
        clearTimeout(timer);
        reject(new CallboxError(ErrorCode.IoBoardFailed, `${cfg.board} IO board failed: ${describeError(e)}`));
      });
    });
    await startIo();
    await ready;
  } catch (e) {
    await closeIo();
    throw e;
  }
  board.on('error', (e: unknown) => log.error({ err: e }, 'IO board error'));
  log.info({ board: cfg.board, io: io.name }, 'IO board ready');
  return { board, io, numbering, close: closeIo };
}
