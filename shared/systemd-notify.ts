/**
 * sd_notify for both programs under systemd: READY=1 once started, WATCHDOG=1
 * at half of WatchdogSec (only while the main loop is healthy), STOPPING=1 on
 * shutdown; nothing at all when NOTIFY_SOCKET is absent (development, tests,
 * a program run by hand).
 *
 * How the datagram is sent: NOTIFY_SOCKET is a unix datagram socket, which
 * Node cannot open (node:dgram is UDP only). The process sends it itself
 * through unix-dgram (a small native addon, an optional dependency), so the
 * message carries the main PID's credentials and the units can keep
 * NotifyAccess=main. Where the addon is not installed (it failed to build) or
 * the socket is in the abstract namespace (`@…`, which unix-dgram cannot
 * address), it falls back to systemd's own `systemd-notify --pid=<our pid>`
 * tool; those messages come from a child, so such a unit would need
 * NotifyAccess=all. The sender is injectable for tests.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { getLogger, type Logger } from './log.js';

/** Sends one notification; `close` releases what it holds (the addon's socket). */
export type NotifySender = ((fields: string[]) => Promise<void>) & { close?: () => void };

function findTool(env: NodeJS.ProcessEnv): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, 'systemd-notify');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The fallback sender: `systemd-notify --pid=<pid> FIELD=value ...`. */
export function toolSender(tool: string, env: NodeJS.ProcessEnv, pid = process.pid): NotifySender {
  return (fields) =>
    new Promise((resolve, reject) => {
      execFile(tool, [`--pid=${pid}`, ...fields], { env, timeout: 5000 }, (err) => (err ? reject(err) : resolve()));
    });
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  close(): void;
}

/** The process's own sender over unix-dgram, or undefined when the addon is not installed. */
export function socketSender(path: string): NotifySender | undefined {
  if (path.startsWith('@')) return undefined;
  let socket: UnixDgramSocket;
  try {
    const dgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
    socket = dgram.createSocket('unix_dgram');
  } catch {
    return undefined;
  }
  // Send errors are reported through the callback; an 'error' event without a listener would throw.
  socket.on('error', () => undefined);
  const send: NotifySender = (fields) =>
    new Promise((resolve, reject) => {
      const buf = Buffer.from(`${fields.join('\n')}\n`);
      socket.send(buf, 0, buf.length, path, (err) => (err ? reject(err) : resolve()));
    });
  send.close = () => socket.close();
  return send;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** Replace the sender (tests). */
  send?: NotifySender;
  /** Use the systemd-notify tool even where the addon is installed (tests of the fallback). */
  preferTool?: boolean;
  log?: Logger;
}

export class SystemdNotifier {
  private readonly send: NotifySender | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly log: Logger;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(opts: NotifierOptions = {}) {
    this.env = opts.env ?? process.env;
    this.log = opts.log ?? getLogger('systemd');
    const path = this.env.NOTIFY_SOCKET;
    if (!path) return;
    if (opts.send) {
      this.send = opts.send;
      return;
    }
    this.send = opts.preferTool ? undefined : socketSender(path);
    if (this.send) return;
    const tool = findTool(this.env);
    if (tool) {
      this.send = toolSender(tool, this.env);
      this.log.warn(
        'notifying systemd through the systemd-notify tool (unix-dgram is not installed): the unit needs NotifyAccess=all',
      );
    } else
      this.log.warn(
        'NOTIFY_SOCKET is set but neither unix-dgram nor systemd-notify is installed: not notifying systemd',
      );
  }

  /** True when running under systemd with a way to notify it. */
  get enabled(): boolean {
    return this.send !== undefined;
  }

  /** Half the watchdog interval in ms, if systemd set one for this process. */
  get watchdogIntervalMs(): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.env.WATCHDOG_PID;
    if (pid && Number(pid) !== process.pid) return undefined;
    return Math.max(1, Math.floor(usec / 2000));
  }

  private async notify(fields: string[]): Promise<void> {
    if (!this.send) return;
    try {
      await this.send(fields);
    } catch (e) {
      this.log.warn({ err: e, fields }, 'systemd notification failed');
    }
  }

  ready(status?: string): Promise<void> {
    return this.notify(status ? ['READY=1', `STATUS=${status}`] : ['READY=1']);
  }

  status(text: string): Promise<void> {
    return this.notify([`STATUS=${text}`]);
  }

  /** STOPPING=1, then nothing more is sent (the addon's socket is closed). */
  async stopping(): Promise<void> {
    this.stopWatchdog();
    await this.notify(['STOPPING=1']);
    this.send?.close?.();
  }

  /**
   * Ping the watchdog at half its interval while healthy() says the main
   * loop works; an unhealthy or stuck loop stops the pings and systemd
   * restarts the box.
   */
  startWatchdog(healthy: () => Promise<boolean>): void {
    const every = this.watchdogIntervalMs;
    if (!this.send || every === undefined || this.watchdog) return;
    const tick = async () => {
      let ok = false;
      try {
        ok = await healthy();
      } catch {
        ok = false;
      }
      if (ok) await this.notify(['WATCHDOG=1']);
      else this.log.warn('main loop unhealthy: watchdog not fed');
      if (this.watchdog) this.watchdog = setTimeout(tick, every);
    };
    this.watchdog = setTimeout(tick, every);
  }

  stopWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }
}
