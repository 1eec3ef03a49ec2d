/**
 * Presence: is a box online? The heartbeat timeout is the truth: any
 * message from a box (status, telemetry, events, answers) is a sign of
 * life, and a box silent for offlineAfterMs is offline whatever its retained
 * status says. Status messages are hints: a live "offline" (the box's last
 * will, or a clean shutdown) marks it offline at once; a retained status
 * (replayed by the broker when the fleet subscribes) proves nothing and
 * only seeds boxes never seen. Changes go on the bus ('presence.changed')
 * and last-seen times are written to the store in batches.
 */
import type { Status } from '../shared/contract/messages.js';
import { getLogger } from '../shared/log.js';
import type { FleetBus } from './bus.js';
import type { Store } from './store/types.js';

const log = getLogger('fleet:presence');

export interface PresenceOptions {
  offlineAfterMs: number;
  flushMs: number;
  now?: () => number;
}

interface Entry {
  online: boolean;
  lastSeen: number;
}

export class Presence {
  private readonly boxes = new Map<string, Entry>();
  private readonly dirty = new Set<string>();
  private checkTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly bus: FleetBus,
    private readonly store: Store | undefined,
    private readonly opts: PresenceOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    const every = Math.max(100, Math.min(5000, Math.floor(this.opts.offlineAfterMs / 4)));
    this.checkTimer = setInterval(() => this.check(), every);
    this.flushTimer = setInterval(() => void this.flush(), this.opts.flushMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.checkTimer);
    clearInterval(this.flushTimer);
    await this.flush();
  }

  private set(deviceId: string, online: boolean, reason: 'traffic' | 'status' | 'will' | 'timeout'): void {
    const e = this.boxes.get(deviceId);
    const was = e?.online ?? false;
    if (e) e.online = online;
    this.dirty.add(deviceId);
    if (was !== online) {
      const at = new Date(this.now()).toISOString();
      log.info({ deviceId, online, reason }, 'presence changed');
      this.bus.emit('presence.changed', { deviceId, online, at, reason });
    }
  }

  /** Boxes known online before this start (from the store): online until their heartbeat times out. */
  seed(entries: { deviceId: string; lastSeen: number }[]): void {
    for (const e of entries) {
      if (!this.boxes.has(e.deviceId)) this.boxes.set(e.deviceId, { online: true, lastSeen: e.lastSeen });
    }
  }

  /** Any live message from the box. */
  seen(deviceId: string): void {
    const t = this.now();
    const e = this.boxes.get(deviceId);
    if (e) e.lastSeen = t;
    else this.boxes.set(deviceId, { online: false, lastSeen: t });
    this.dirty.add(deviceId);
    if (!e?.online) this.set(deviceId, true, 'traffic');
  }

  status(deviceId: string, status: Status, retained: boolean): void {
    if (retained) return; // a replay from the broker: no sign of life
    if (status.state === 'offline') {
      if (!this.boxes.has(deviceId)) this.boxes.set(deviceId, { online: true, lastSeen: this.now() });
      this.set(deviceId, false, status.reason === 'will' ? 'will' : 'status');
      return;
    }
    this.seen(deviceId);
  }

  /** Mark boxes silent too long offline (run by the timer; public for tests). */
  check(): void {
    const limit = this.now() - this.opts.offlineAfterMs;
    for (const [id, e] of this.boxes) {
      if (e.online && e.lastSeen < limit) this.set(id, false, 'timeout');
    }
  }

  isOnline(deviceId: string): boolean {
    return this.boxes.get(deviceId)?.online ?? false;
  }

  lastSeen(deviceId: string): number | undefined {
    return this.boxes.get(deviceId)?.lastSeen;
  }

  onlineCount(): number {
    let n = 0;
    for (const e of this.boxes.values()) if (e.online) n++;
    return n;
  }

  /** Forget a box (decommissioned). */
  forget(deviceId: string): void {
    const e = this.boxes.get(deviceId);
    if (e?.online) this.set(deviceId, false, 'status');
    this.boxes.delete(deviceId);
  }

  async flush(): Promise<void> {
    if (!this.store || this.dirty.size === 0) return;
    const updates = [...this.dirty].flatMap((deviceId) => {
      const e = this.boxes.get(deviceId);
      return e ? [{ deviceId, lastSeenAt: new Date(e.lastSeen).toISOString(), online: e.online }] : [];
    });
    this.dirty.clear();
    try {
      await this.store.touchBoxes(updates);
    } catch (err) {
      log.warn({ err }, 'writing presence failed; retried at the next flush');
      for (const u of updates) this.dirty.add(u.deviceId);
    }
  }
}
