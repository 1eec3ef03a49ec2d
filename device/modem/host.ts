/**
 * What the driver lends the parts it composes (call tracking, SMS): the AT
 * channel (as `cmd`), its configuration, the vendor profile in use, its
 * logger and its events. A part never owns the port, never sees the stream,
 * and never changes the driver's state: it sends commands through `cmd`,
 * reports through `emit`, and is told about URCs and resets by the driver.
 * (The split follows zwave-js, whose Driver owns the serial API and whose
 * command classes are separate modules that reach it only through a host
 * interface, ZWaveHost; nothing of its code is used here.)
 */
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { CommandResult, CommandSpec, Priority } from './at/channel.js';
import type { ModemConfig } from './config.js';
import type { VendorProfile } from './profiles.js';
import type { ModemEventMap } from './types.js';

export type CommandRequest = Partial<CommandSpec> & { command: string };

export interface ModemHost {
  readonly config: ModemConfig;
  readonly log: Logger;
  /** The vendor profile in use (it may change at each initialisation). */
  profile(): VendorProfile;
  /** True once stop() was called (timers must not be re-armed). */
  stopped(): boolean;
  /** One AT command through the driver's channel, with the driver's default timeout. */
  cmd(spec: CommandRequest, priority?: Priority): Promise<CommandResult>;
  emit<K extends keyof ModemEventMap>(event: K, ...args: ModemEventMap[K]): void;
}

/** Runs jobs one after another (SMS mode switch + send must not interleave with a read). */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const p = this.tail.then(job, job);
    this.tail = p.catch(() => {});
    return p;
  }
}

/** Bad input (a RangeError from a formatter) becomes a ValidationFailed naming the operation. */
export async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RangeError) throw new CallboxError(ErrorCode.ValidationFailed, `${what}: ${e.message}`);
    throw e;
  }
}
