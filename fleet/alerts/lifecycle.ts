/**
 * What the parts of the alert engine (rules, pending conditions, escalator,
 * rollover) need from the engine's alert lifecycle, and the per-key lock
 * they share. The engine (engine.ts) implements AlertLifecycle.
 */
import type { Condition, Severity } from './config.js';
import type { Alert, Rollover } from './types.js';

export interface RaiseOptions {
  severity?: Severity;
  /** The stored event that raises it: opened or counted once per event (the event cursor may replay it). */
  eventId?: string;
  text: string;
  deviceId?: string | null;
  details?: Record<string, unknown>;
  /** Count this many occurrences at once (a storm that crossed the threshold). */
  occurrences?: number;
  at?: number;
}

export interface RaiseResult {
  alert: Alert;
  created: boolean;
}

export interface RolloverOptions {
  by: string;
  reason: string;
  number?: string;
  backAfter?: Rollover['backAfter'];
  backAt?: string;
}

export interface AlertLifecycle {
  /** Open an alert, or count one more occurrence of the active one. */
  raise(clinicId: string, condition: Condition, o: RaiseOptions): Promise<RaiseResult>;
  acknowledge(alertId: string, by: string): Promise<Alert>;
  resolve(alertId: string, by: string, why?: string): Promise<Alert>;
  /** Run the due work now (a condition without grace time is raised at once). */
  kick(): Promise<void>;
}

/** Serialise work on one key (clinic + condition) inside this process. */
export class KeyedLock {
  private readonly locks = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

export function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}
