/**
 * Conditions that need a grace time (box offline, modem trouble, voicemail
 * unheard, configuration drift) are kept as pending conditions in the store
 * and raised by the sweep once they have lasted long enough (and, for an
 * offline box, while the clinic is open on its own wall clock). Clearing the
 * last pending condition of a kind resolves its alert.
 */
import type { Logger } from '../../shared/log.js';
import type { FleetBusEvents } from '../bus.js';
import type { Store } from '../store/types.js';
import type { ClinicDirectory, Clock } from './clinics.js';
import type { AlertsConfig, Condition, Severity } from './config.js';
import { type AlertLifecycle, isoOf, KeyedLock } from './lifecycle.js';
import type { AlertStore, PendingCondition } from './types.js';

export const MODEM_CONDITIONS: Record<string, Condition | undefined> = {
  no_signal: 'no_signal',
  not_registered: 'no_signal',
  sim_missing: 'sim_problem',
  sim_pin: 'sim_problem',
  registration_denied: 'registration_denied',
};

export interface PendingConditionsDeps {
  store: Store;
  alerts: AlertStore;
  directory: ClinicDirectory;
  lifecycle: AlertLifecycle;
  config: AlertsConfig;
  clock: Clock;
  log: Logger;
}

export class PendingConditions {
  private readonly pending = new Map<string, PendingCondition>();
  /**
   * One change at a time in this process: a reload of the store that began
   * before a clear must not bring the cleared condition back (which would
   * keep its alert open), and a sweep that is raising a condition must have
   * finished before a clear looks for the alert to resolve.
   */
  private readonly lock = new KeyedLock();

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run('pending', fn);
  }

  constructor(private readonly deps: PendingConditionsDeps) {}

  private iso(ms = this.deps.clock.now()): string {
    return isoOf(ms);
  }

  get size(): number {
    return this.pending.size;
  }

  has(key: string): boolean {
    return this.pending.has(key);
  }

  /**
   * Read the stored pending conditions (at start, and before each sweep:
   * several fleet workers share them, and this is only a cache of the store).
   */
  load(): Promise<void> {
    return this.exclusive(() => this.reload());
  }

  private async reload(): Promise<void> {
    const stored = await this.deps.alerts.listPending();
    this.pending.clear();
    for (const p of stored) this.pending.set(p.key, p);
  }

  async set(p: PendingCondition): Promise<void> {
    await this.exclusive(() => this.put(p));
    // Outside the lock: the tick this runs sweeps, and the sweep takes the lock.
    if (Number(p.meta.graceMs ?? 0) === 0) await this.deps.lifecycle.kick();
  }

  private async put(p: PendingCondition): Promise<void> {
    this.pending.set(p.key, p);
    await this.deps.alerts.putPending(p);
  }

  /** The pending condition under this key, if any. */
  get(key: string): PendingCondition | undefined {
    return this.pending.get(key);
  }

  clear(key: string, why: string): Promise<void> {
    return this.exclusive(() => this.remove(key, why));
  }

  private async remove(key: string, why: string): Promise<void> {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    await this.deps.alerts.deletePending(key);
    // Clear the alert when nothing else keeps that condition alive for the clinic.
    const still = [...this.pending.values()].some((q) => q.clinicId === p.clinicId && q.condition === p.condition);
    if (still) return;
    const active = await this.deps.alerts.getActive(p.clinicId, p.condition);
    if (active) await this.deps.lifecycle.resolve(active.id, 'engine', why);
  }

  /** A box went offline or came back (fleet bus). */
  async onPresence(p: FleetBusEvents['presence.changed']): Promise<void> {
    const seenAt = this.iso(); // when the fleet learned it, on the engine's clock
    this.deps.directory.setPresence(p.deviceId, p.online);
    const clinicId = await this.deps.directory.clinicOfDevice(p.deviceId);
    if (!clinicId) return;
    const key = `offline:${p.deviceId}`;
    if (p.online) {
      await this.clear(key, 'the box is back online');
      return;
    }
    if (this.pending.has(key)) return;
    const s = await this.deps.directory.settingsOf(clinicId);
    await this.set({
      key,
      clinicId,
      condition: 'box_offline',
      deviceId: p.deviceId,
      since: seenAt,
      meta: { graceMs: s.rules.boxOffline.afterMin * 60_000, duringHours: true, reason: p.reason },
    });
  }

  /** Boxes the registry already knows as offline (the fleet was down too, or restarted). */
  seedOffline(): Promise<void> {
    return this.exclusive(() => this.seedOfflineNow());
  }

  private async seedOfflineNow(): Promise<void> {
    const boxes = await this.deps.store.listBoxes({ claimState: 'approved' });
    for (const b of boxes) {
      // The registry's flag, not live presence: at start presence has heard from nobody yet.
      if (!b.deviceId || b.online || !b.clinicId) continue;
      const key = `offline:${b.deviceId}`;
      if (this.pending.has(key) || !b.lastSeenAt) continue;
      const s = await this.deps.directory.settingsOf(b.clinicId);
      await this.put({
        key,
        clinicId: b.clinicId,
        condition: 'box_offline',
        deviceId: b.deviceId,
        since: b.lastSeenAt,
        meta: { graceMs: s.rules.boxOffline.afterMin * 60_000, duringHours: true, reason: 'registry' },
      });
    }
  }

  /**
   * Configuration drift: an approved box whose reported (applied) version is not the desired one.
   * Noticed while the box is online (an offline box is the box_offline alert's), raised once it
   * has lasted alerts.configDriftS, cleared when the box reports the desired version.
   */
  checkDrift(): Promise<void> {
    return this.exclusive(() => this.checkDriftNow());
  }

  private async checkDriftNow(): Promise<void> {
    for (const b of await this.deps.store.listBoxes({ claimState: 'approved' })) {
      if (!b.deviceId || !b.clinicId) continue;
      const key = `config_drift:${b.deviceId}`;
      if (b.desiredVersion === 0 || b.reportedVersion === b.desiredVersion) {
        await this.remove(key, `the box applied configuration version ${b.reportedVersion}`);
        continue;
      }
      const meta = {
        graceMs: this.deps.config.configDriftS * 1000,
        desiredVersion: b.desiredVersion,
        reportedVersion: b.reportedVersion,
        refused: b.reportedState === 'refused' ? (b.reportedReason ?? 'no reason given') : null,
      };
      const p = this.pending.get(key);
      if (p) {
        if (p.meta.desiredVersion !== meta.desiredVersion || p.meta.refused !== meta.refused) {
          const next = { ...p, meta: { ...p.meta, ...meta } };
          this.pending.set(key, next);
          await this.deps.alerts.putPending(next);
        }
        continue;
      }
      if (!this.deps.directory.online(b)) continue;
      await this.put({
        key,
        clinicId: b.clinicId,
        condition: 'config_drift',
        deviceId: b.deviceId,
        since: this.iso(),
        meta,
      });
    }
  }

  /** Raise the pending conditions that have lasted their grace time (the sweep). */
  raiseDue(now: number): Promise<void> {
    return this.exclusive(() => this.raiseDueNow(now));
  }

  private async raiseDueNow(now: number): Promise<void> {
    const { directory } = this.deps;
    for (const p of [...this.pending.values()]) {
      if (p.meta.raised) continue;
      const since = Date.parse(p.since);
      if (now - since < Number(p.meta.graceMs ?? 0)) continue;
      if (p.meta.duringHours && !(await directory.isOpen(p.clinicId, now))) continue;
      if (p.condition === 'config_drift' && p.deviceId && !directory.online({ deviceId: p.deviceId, online: true }))
        continue;
      await this.raise(p);
      const raised = { ...p, meta: { ...p.meta, raised: true } };
      if (this.pending.has(p.key)) {
        this.pending.set(p.key, raised);
        await this.deps.alerts.putPending(raised);
      }
    }
  }

  private async raise(p: PendingCondition): Promise<void> {
    const { directory } = this.deps;
    const s = await directory.settingsOf(p.clinicId);
    const name = await directory.clinicName(p.clinicId);
    const since = await directory.localTime(p.clinicId, Date.parse(p.since));
    const box = p.deviceId ?? 'its box';
    let severity: Severity;
    let text: string;
    switch (p.condition) {
      case 'box_offline':
        severity = s.rules.boxOffline.severity;
        text = `The call box ${box} of ${name} has been offline since ${since}. Calls still roll over at the network, but the clinic's box needs attention.`;
        break;
      case 'voicemail_unheard':
        severity = s.rules.voicemail.severity;
        text = `A voicemail left at ${name} at ${since} has not been listened to.`;
        break;
      case 'no_signal':
        severity = s.rules.modem.severity;
        text = `The call box ${box} of ${name} has had no mobile signal since ${since}.`;
        break;
      case 'sim_problem':
        severity = s.rules.modem.severity;
        text = `The call box ${box} of ${name} has a SIM problem (${String(p.meta.state)}) since ${since}.`;
        break;
      case 'registration_denied':
        severity = s.rules.modem.severity;
        text = `The mobile network refuses the SIM of the call box ${box} of ${name} since ${since}.`;
        break;
      case 'config_drift': {
        severity = s.rules.configDrift.severity;
        const refused = p.meta.refused ? ` It refused the desired version: ${String(p.meta.refused)}` : '';
        text = `The call box ${box} of ${name} is not running its desired configuration: version ${String(p.meta.desiredVersion)} is desired, the box reports ${String(p.meta.reportedVersion ?? 'none')} (since ${since}).${refused}`;
        break;
      }
      default:
        severity = 'warning';
        text = `${p.condition} at ${name} since ${since}.`;
    }
    await this.deps.lifecycle.raise(p.clinicId, p.condition, {
      severity,
      text,
      deviceId: p.deviceId,
      details: { pending: p.key },
    });
  }
}
