/**
 * The few johnny-five (CommonJS, untyped) and firmata-io pieces the box
 * uses, loaded through createRequire and typed here by what we call.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** What johnny-five needs of an IO plugin (the IO-plugin interface), as far as the box uses it. */
export interface IoPlugin extends EventEmitter {
  readonly name: string;
  isReady: boolean;
  readonly pins: { supportedModes: number[]; mode?: number; value?: number; analogChannel?: number }[];
  readonly MODES: Record<string, number>;
  pinMode(pin: number, mode: number): unknown;
  digitalWrite(pin: number, value: number): unknown;
  analogWrite?(pin: number, value: number): unknown;
  digitalRead(pin: number, handler: (value: number) => void): unknown;
  /** False while the plugin cannot see its inputs (linux-gpio: a watcher between death and restart). */
  healthy?(): boolean;
}

export interface FiveBoard extends EventEmitter {
  isReady: boolean;
  io: IoPlugin;
}
export interface FiveLed {
  on(): unknown;
  off(): unknown;
  brightness(v: number): unknown;
  stop(): unknown;
}
export interface FiveButton extends EventEmitter {
  readonly isDown: boolean;
}

interface FiveModule {
  Board: new (opts: Record<string, unknown>) => FiveBoard;
  Led: new (opts: { pin: number; board: FiveBoard }) => FiveLed;
  Button: new (opts: {
    pin: number;
    board: FiveBoard;
    isPullup?: boolean;
    invert?: boolean;
    holdtime?: number;
  }) => FiveButton;
}

let five: FiveModule | null = null;
export function johnnyFive(): FiveModule {
  five ??= require('johnny-five') as FiveModule;
  return five;
}

export type FirmataCtor = new (
  transport: unknown,
  options?: { reportVersionTimeout?: number; samplingInterval?: number },
) => IoPlugin & { transport: unknown; firmware: { name?: string } };

/** firmata-io's Firmata class, bound to no default transport: we always hand it our own serialport 13 port. */
export function firmataClass(): FirmataCtor {
  const bind = require('firmata-io') as { Firmata: FirmataCtor };
  return bind.Firmata;
}
