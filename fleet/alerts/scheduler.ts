/**
 * The alert engine's scheduler: a tick runs the due escalation steps (side
 * by side, not awaited: a slow channel on one alert must not hold the
 * others), reopens acknowledged alerts whose time ran out, and sweeps
 * (configuration drift, pending conditions past their grace time, scheduled
 * rollover ends). Ticks come from the wake timer (armed for the earliest
 * next step or deadline), the sweep interval and kick(); the poll interval
 * wakes the stored-event reader.
 */
import { background } from '../../shared/background.js';
import type { Logger } from '../../shared/log.js';
import type { Clock } from './clinics.js';
import type { PendingConditions } from './conditions.js';
import type { AlertsConfig } from './config.js';
import type { Escalator } from './escalator.js';
import { isoOf } from './lifecycle.js';
import type { RolloverService } from './rollover.js';
import { SingleFlight } from './single-flight.js';
import type { Alert, AlertStore } from './types.js';

/** A due step that is running or failed is looked at again after this long. */
const RETRY_MS = 1000;

export interface SchedulerDeps {
  alerts: AlertStore;
  config: AlertsConfig;
  clock: Clock;
  log: Logger;
  escalator: Escalator;
  pending: PendingConditions;
  rollover: RolloverService;
  /** Is the engine running? */
  active: () => boolean;
  /** Open an acknowledged alert again (its acknowledgement ran out). */
  reopen: (a: Alert) => Promise<void>;
  /** Wake the stored-event reader. */
  consume: () => Promise<void>;
}

export class Scheduler {
  private readonly ticks: SingleFlight;
  private wakeTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Reopens in progress (not awaited by the tick, but by idle()). */
  private readonly reopening = new Set<Promise<void>>();

  constructor(private readonly deps: SchedulerDeps) {
    this.ticks = new SingleFlight(() => this.tick(), {
      active: deps.active,
      onError: (e) => {
        if (deps.active()) deps.log.error({ err: e }, 'alert engine tick failed'); // else: stopped under it
      },
      after: () => this.arm(),
    });
  }

  start(): void {
    const { config: cfg } = this.deps;
    this.sweepTimer = setInterval(() => this.kick(), cfg.sweepS * 1000);
    this.sweepTimer.unref?.();
    this.pollTimer = setInterval(() => void this.deps.consume(), cfg.eventPollMs);
    this.pollTimer.unref?.();
    void this.kick(); // never rejects: a failed tick is logged
  }

  stop(): void {
    clearTimeout(this.wakeTimer);
    clearInterval(this.sweepTimer);
    clearInterval(this.pollTimer);
  }

  /** Run the due work now (and re-arm the wake timer). */
  kick(): Promise<void> {
    return this.ticks.run();
  }

  /** Set the wake timer for the earliest next step or acknowledgement deadline (at most one sweep away). */
  async arm(): Promise<void> {
    const { active, log } = this.deps;
    if (!active()) return;
    clearTimeout(this.wakeTimer);
    let wait = this.deps.config.sweepS * 1000;
    try {
      const next = await this.deps.alerts.nextWake();
      // Something already due is running (or failed and will be retried): look again in a second,
      // and at once when a step finishes (the escalator re-arms), rather than spinning on it.
      if (next) wait = Math.min(wait, Math.max(RETRY_MS, Date.parse(next) - this.deps.clock.now()));
    } catch (e) {
      log.warn({ err: e }, 'cannot read the next wake time');
    }
    if (!active()) return;
    this.wakeTimer = setTimeout(() => void this.kick(), wait);
    this.wakeTimer.unref?.();
  }

  /** A step finished: re-arm, unless a tick is running (it re-arms when it ends). */
  stepDone(): void {
    if (this.deps.active() && !this.ticks.running) void this.arm();
  }

  private async tick(): Promise<void> {
    const { alerts, escalator, log } = this.deps;
    const now = isoOf(this.deps.clock.now());
    // A reopen that fails leaves the alert acknowledged past its deadline: listed again at the next tick.
    for (const a of await alerts.listAckExpired(now)) {
      const p = this.deps.reopen(a).finally(() => this.reopening.delete(p));
      this.reopening.add(p);
      background(p, log, `reopening alert ${a.id}; tried again at the next tick`);
    }
    for (const a of await alerts.listDue(now)) void escalator.runStep(a);
    await this.sweep();
  }

  private async sweep(): Promise<void> {
    const now = this.deps.clock.now();
    // Other fleet workers add and clear pending conditions too: start from what the store holds.
    await this.deps.pending.load();
    try {
      await this.deps.pending.checkDrift();
    } catch (e) {
      this.deps.log.warn({ err: e }, 'configuration drift not checked; tried again at the next sweep');
    }
    await this.deps.pending.raiseDue(now);
    await this.deps.rollover.endScheduled(now);
  }

  /** Wait until no tick, no reopen and no escalation step is running. */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const ticking = this.ticks.running;
      if (ticking) await ticking.catch(() => undefined);
      const work = [...this.reopening, ...this.deps.escalator.running()];
      if (work.length === 0 && !this.ticks.running) return;
      await Promise.allSettled(work);
    }
  }
}
