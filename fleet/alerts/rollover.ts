/**
 * Rollover: switch a clinic's calls to its answering service (the boxes'
 * `forwarding.set`, confirmed by each box reading it back from the
 * network) and back, by hand, by the missed-calls rule, when the clinic
 * answers again or at a scheduled time. A rollover is shown as a `rollover`
 * alert while it lasts; a failed switch raises a critical one.
 */
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { BoxCommands } from '../commands.js';
import type { Store } from '../store/types.js';
import type { ClinicDirectory, Clock } from './clinics.js';
import type { AlertsConfig } from './config.js';
import { type AlertLifecycle, isoOf, type KeyedLock, type RolloverOptions } from './lifecycle.js';
import { lastFour } from './sms-reply.js';
import type { AlertStore, Rollover } from './types.js';

export interface RolloverDeps {
  store: Store;
  alerts: AlertStore;
  directory: ClinicDirectory;
  lifecycle: AlertLifecycle;
  lock: KeyedLock;
  config: AlertsConfig;
  commands?: BoxCommands;
  clock: Clock;
  log: Logger;
}

type BoxResult = { deviceId: string; confirmed: boolean; error?: string };

export class RolloverService {
  constructor(private readonly deps: RolloverDeps) {}

  private iso(ms = this.deps.clock.now()): string {
    return isoOf(ms);
  }

  private async rolloverNumber(clinicId: string, explicit?: string): Promise<string> {
    if (explicit) return explicit;
    const clinic = await this.deps.directory.clinic(clinicId);
    if (clinic?.answeringService) return clinic.answeringService;
    for (const box of await this.deps.store.listBoxes({ clinicId, claimState: 'approved' })) {
      if (!box.deviceId) continue;
      const n = (await this.deps.store.getDesiredConfig(box.deviceId))?.settings.rollover.number;
      if (n) return n;
    }
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `clinic ${clinic?.name ?? clinicId} has no answering service number: set the clinic's answeringService or give a number`,
    );
  }

  private async forwarding(
    clinicId: string,
    enabled: boolean,
    number: string | undefined,
    why: string,
  ): Promise<BoxResult[]> {
    const commands = this.deps.commands;
    if (!commands) throw new CallboxError(ErrorCode.Internal, 'the alert engine has no way to command boxes');
    const boxes = (await this.deps.store.listBoxes({ clinicId, claimState: 'approved' })).filter((b) => b.deviceId);
    if (boxes.length === 0) throw new CallboxError(ErrorCode.NotFound, `clinic ${clinicId} has no box`);
    return Promise.all(
      boxes.map(async (b): Promise<BoxResult> => {
        const deviceId = b.deviceId as string;
        try {
          const r = await commands.send(
            deviceId,
            'forwarding.set',
            {
              enabled,
              reason: 'unconditional',
              ...(number ? { number } : {}),
              reasonText: why.slice(0, 200),
            },
            { timeoutMs: this.deps.config.forwardingTimeoutMs },
          );
          const ok = r.confirmed && r.enabled === enabled;
          return ok
            ? { deviceId, confirmed: true }
            : { deviceId, confirmed: false, error: `box answered enabled=${r.enabled} confirmed=${r.confirmed}` };
        } catch (e) {
          return { deviceId, confirmed: false, error: describeError(e) };
        }
      }),
    );
  }

  /** Switch the clinic's calls to its answering service; active once a box confirms it. */
  async start(clinicId: string, o: RolloverOptions): Promise<Rollover> {
    const { alerts, directory, lifecycle } = this.deps;
    return this.deps.lock.run(`${clinicId}|rollover-cmd`, async () => {
      const number = await this.rolloverNumber(clinicId, o.number);
      const s = await directory.settingsOf(clinicId);
      const boxes = await this.forwarding(clinicId, true, number, o.reason);
      const confirmed = boxes.some((b) => b.confirmed);
      const now = this.deps.clock.now();
      const prev = await alerts.getRollover(clinicId);
      const r: Rollover = {
        clinicId,
        active: confirmed,
        number,
        since: prev?.active ? prev.since : this.iso(now),
        reason: o.reason,
        by: o.by,
        alertId: null,
        backAfter: o.backAfter ?? s.rules.rollover.backAfter,
        boxes,
        endedAt: null,
        endedBy: null,
        backAt: o.backAt ?? null,
      };
      const name = await directory.clinicName(clinicId);
      if (confirmed) {
        const text = `calls for ${name} are rolling over to the answering service (${lastFour(number)}) since ${await directory.localTime(clinicId, Date.parse(r.since))} because ${o.reason}`;
        const res = await lifecycle.raise(clinicId, 'rollover', {
          severity: s.rules.rollover.severity,
          text,
          details: { number: lastFour(number), by: o.by },
        });
        r.alertId = res.alert.id;
      } else {
        await lifecycle.raise(clinicId, 'rollover', {
          severity: 'critical',
          text: `calls for ${name} could NOT be rolled over to the answering service (${lastFour(number)}): no box confirmed the forwarding (${boxes.map((b) => b.error).join('; ')}).`,
        });
      }
      await alerts.putRollover(r);
      this.deps.log.info({ clinicId, by: o.by, confirmed, boxes: boxes.length }, 'rollover on');
      return r;
    });
  }

  /** Switch forwarding back off; the rollover ends once every box confirms. */
  async stop(clinicId: string, by: string, why = 'by hand'): Promise<Rollover> {
    const { alerts, lifecycle } = this.deps;
    return this.deps.lock.run(`${clinicId}|rollover-cmd`, async () => {
      const prev = await alerts.getRollover(clinicId);
      if (!prev) throw new CallboxError(ErrorCode.NotFound, `clinic ${clinicId} has no rollover`);
      const boxes = await this.forwarding(clinicId, false, undefined, `back: ${why}`);
      const allOff = boxes.every((b) => b.confirmed);
      const r: Rollover = allOff
        ? { ...prev, active: false, boxes, endedAt: this.iso(), endedBy: by }
        : { ...prev, boxes };
      await alerts.putRollover(r);
      const active = await alerts.getActive(clinicId, 'rollover');
      if (allOff && active) await lifecycle.resolve(active.id, by, `calls are back at the clinic (${why})`);
      this.deps.log.info({ clinicId, by, confirmed: allOff }, 'rollover off');
      if (!allOff) {
        throw new CallboxError(
          ErrorCode.RequestRejected,
          `not every box confirmed forwarding off: ${boxes
            .filter((b) => !b.confirmed)
            .map((b) => `${b.deviceId}: ${b.error}`)
            .join('; ')}`,
          { boxes },
        );
      }
      return r;
    });
  }

  /** The clinic answered a call: a rollover that ends then ends now. */
  async onAnswered(clinicId: string): Promise<void> {
    const ro = await this.deps.alerts.getRollover(clinicId);
    if (ro?.active && ro.backAfter === 'answered') {
      await this.stop(clinicId, 'engine', 'the clinic answered a call').catch((err) =>
        this.deps.log.warn({ err, clinicId }, 'rollover back failed'),
      );
    }
  }

  /** End the rollovers whose scheduled end has come (the sweep). */
  async endScheduled(now: number): Promise<void> {
    for (const r of await this.deps.alerts.listRollovers(true)) {
      if (r.backAt && Date.parse(r.backAt) <= now) {
        await this.stop(r.clinicId, 'engine', 'scheduled end').catch((err) =>
          this.deps.log.warn({ err, clinicId: r.clinicId }, 'scheduled rollover back failed'),
        );
      }
    }
  }
}
