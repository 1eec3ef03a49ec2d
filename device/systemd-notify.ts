/**
 * sd_notify for the box under systemd: READY=1 once started, WATCHDOG=1 at
 * half of WatchdogSec (only while the main loop is healthy), STOPPING=1 on
 * shutdown; nothing at all when NOTIFY_SOCKET is absent (development, tests,
 * a box run by hand).
 *
 * How the datagram is sent: NOTIFY_SOCKET is a unix datagram socket, which
 * Node cannot open (node:dgram is UDP only). The choices were a native
 * addon (unix-dgram, or sd-notify which links libsystemd) — a compile step
 * on every Pi image and every Node upgrade, for a few bytes a minute — or
 * systemd's own `systemd-notify` tool, which every systemd machine has. We
 * spawn `systemd-notify --pid=<our pid> ...` when NOTIFY_SOCKET is set and
 * the tool exists. The message then comes from a child process, so the unit
 * needs NotifyAccess=all (systemd/callbox-device.service); a spawn costs a
 * few milliseconds once per WatchdogSec/2. The sender is injectable for
 * tests and for a future addon.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { getLogger, type Logger } from '../shared/log.js';

export type NotifySender = (fields: string[]) => Promise<void>;

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

/** The default sender: `systemd-notify --pid=<pid> FIELD=value ...`. */
export function toolSender(tool: string, env: NodeJS.ProcessEnv, pid = process.pid): NotifySender {
  return (fields) =>
    new Promise((resolve, reject) => {
      execFile(tool, [`--pid=${pid}`, ...fields], { env, timeout: 5000 }, (err) => (err ? reject(err) : resolve()));
    });
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** Replace the systemd-notify tool (tests). */
  send?: NotifySender;
  log?: Logger;
}

export class SystemdNotifier {
  private readonly send: NotifySender | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly log: Logger;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(opts: NotifierOptions = {}) {
    this.env = opts.env ?? process.env;
    this.log = opts.log ?? getLogger('device:systemd');
    if (!this.env.NOTIFY_SOCKET) return;
    if (opts.send) this.send = opts.send;
    else {
      const tool = findTool(this.env);
      if (tool) this.send = toolSender(tool, this.env);
      else this.log.warn('NOTIFY_SOCKET is set but systemd-notify was not found: not notifying systemd');
    }
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

  async stopping(): Promise<void> {
    this.stopWatchdog();
    await this.notify(['STOPPING=1']);
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
