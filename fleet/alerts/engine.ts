/**
 * The rollover and alert engine: the alert lifecycle (raise, acknowledge,
 * resolve, reopen) and the composition of its parts (see README.md):
 *   clinics.ts     ClinicDirectory: cached lookups, opening hours, contacts, presence, SMS senders
 *   cursor.ts      EventCursorReader: the stored events, exactly once, through a durable cursor
 *   rules.ts       Rules: what an event or a telemetry sample means
 *   conditions.ts  PendingConditions: grace-time conditions (offline, modem, voicemail, drift)
 *   escalator.ts   Escalator: a step's plan and its delivery, once per dedup key
 *   rollover.ts    RolloverService: forwarding to the answering service and back
 *   sms-reply.ts   "ACK 1234" replies
 *   scheduler.ts   Scheduler: ticks (due steps, ack deadlines), the sweep, the wake timer
 *
 * How an alert lives (persisted in the AlertStore as it changes): raise ->
 * one active alert per clinic and condition (a second occurrence only
 * counts) -> escalation, step by step (leased, so one fleet instance runs
 * each step) -> acknowledge stops it; not resolved within ackTimeoutMin it
 * opens again (epoch + 1) from the first step -> resolve, by a person or by
 * the engine when the condition clears. Notices resolve once sent.
 * Reading a stored event again changes nothing: opening or counting an
 * alert is recorded per event, pending conditions are keyed, acknowledge
 * and resolve are idempotent.
 *
 * Time: `clock.now()` is read for every decision and timers are plain
 * setTimeout, so tests drive it all with vi.useFakeTimers().
 */

import type { AnyEvent } from '../../shared/contract/events.js';
import { CallboxError, ErrorCode, isCallboxError } from '../../shared/errors.js';
import { getLogger, type Logger } from '../../shared/log.js';
import type { FleetBus } from '../bus.js';
import type { BoxCommands } from '../commands.js';
import type { Store } from '../store/types.js';
import { ClinicDirectory, type Clock, silenceEnd } from './clinics.js';
import { PendingConditions } from './conditions.js';
import type { AlertContact, AlertsConfig, ClinicAlertSettings, Condition, SilenceWindow } from './config.js';
import { EVENT_CURSOR, EventCursorReader } from './cursor.js';
import { type AlertChannels, Escalator } from './escalator.js';
import {
  type AlertLifecycle,
  isoOf,
  KeyedLock,
  type RaiseOptions,
  type RaiseResult,
  type RolloverOptions,
} from './lifecycle.js';
import type { AlertLinks } from './links.js';
import { RolloverService } from './rollover.js';
import { Rules, type VoicemailAttention } from './rules.js';
import { Scheduler } from './scheduler.js';
import type { Alert, AlertStore, Delivery, Rollover } from './types.js';

export type { Clock } from './clinics.js';
export { EVENT_CURSOR } from './cursor.js';
export type { AlertChannels } from './escalator.js';
export type { RaiseOptions, RaiseResult, RolloverOptions } from './lifecycle.js';
export type { VoicemailAttention } from './rules.js';

export interface AlertEngineDeps {
  bus: FleetBus;
  store: Store;
  alerts: AlertStore;
  config: AlertsConfig;
  channels: AlertChannels;
  commands?: BoxCommands;
  links?: AlertLinks;
  /** Live presence (the fleet's Presence.isOnline); without it, the bus and then the registry's flag. */
  isOnline?: (deviceId: string) => boolean;
  clock?: Clock;
  log?: Logger;
}

/** A panic.ack queued for an offline box is still shown when it comes back within this time. */
const PANIC_ACK_EXPIRES_MS = 3_600_000;
/** A voicemail.heard queued for an offline box still puts its light out when it comes back within a week. */
export const VOICEMAIL_HEARD_EXPIRES_MS = 7 * 24 * 3_600_000;

export class AlertEngine implements AlertLifecycle {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly cfg: AlertsConfig;
  private readonly lock = new KeyedLock();
  private readonly directory: ClinicDirectory;
  private readonly pending: PendingConditions;
  private readonly rollover: RolloverService;
  private readonly escalator: Escalator;
  private readonly rules: Rules;
  private readonly reader: EventCursorReader;
  private readonly scheduler: Scheduler;
  private running = false;

  constructor(private readonly deps: AlertEngineDeps) {
    this.log = deps.log ?? getLogger('fleet:alerts');
    this.clock = deps.clock ?? { now: () => Date.now() };
    this.cfg = deps.config;
    const base = { alerts: deps.alerts, clock: this.clock, log: this.log };
    this.directory = new ClinicDirectory({
      ...base,
      store: deps.store,
      ...(deps.isOnline ? { isOnline: deps.isOnline } : {}),
    });
    const parts = { ...base, directory: this.directory, lifecycle: this as AlertLifecycle };
    this.pending = new PendingConditions({ ...parts, store: deps.store, config: this.cfg });
    this.rollover = new RolloverService({
      ...parts,
      store: deps.store,
      lock: this.lock,
      config: this.cfg,
      ...(deps.commands ? { commands: deps.commands } : {}),
    });
    this.escalator = new Escalator({
      ...parts,
      config: this.cfg,
      channels: deps.channels,
      ...(deps.links ? { links: deps.links } : {}),
      onStepDone: () => this.scheduler.stepDone(),
    });
    this.rules = new Rules({ ...parts, pending: this.pending, rollover: this.rollover, lock: this.lock });
    this.reader = new EventCursorReader({
      ...base,
      store: deps.store,
      config: this.cfg,
      active: () => this.running,
      apply: (e) => this.handleEvent(e),
    });
    this.scheduler = new Scheduler({
      ...base,
      config: this.cfg,
      escalator: this.escalator,
      pending: this.pending,
      rollover: this.rollover,
      active: () => this.running,
      reopen: (a) => this.reopen(a),
      consume: () => this.consume(),
    });
  }

  private now(): number {
    return this.clock.now();
  }

  private iso(ms = this.now()): string {
    return isoOf(ms);
  }

  // ---------------------------------------------------------------- lifecycle of the engine

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.pending.load();
    const { bus } = this.deps;
    bus.on('event.stored', this, () => void this.consume());
    bus.on('presence.changed', this, (p) => (this.running ? this.pending.onPresence(p) : undefined));
    bus.on('telemetry', this, (t) => (this.running ? this.rules.onTelemetry(t) : undefined));
    bus.on('box.approved', this, ({ box }) => {
      if (box.deviceId) this.directory.forgetBox(box.deviceId);
    });
    bus.on('box.decommissioned', this, ({ box }) => {
      if (box.deviceId) this.directory.forgetBox(box.deviceId);
    });
    await this.directory.prewarm();
    await this.pending.seedOffline();
    this.scheduler.start();
    // Catch up on what was stored while the engine was not running (in the background: live events follow).
    void this.consume(); // never rejects: a failed pass is logged and tried again
    this.log.info({ instance: this.cfg.instance, pending: this.pending.size }, 'alert engine started');
  }

  /** Stop listening and timing; waits for steps in progress (bounded by the channels' own timeouts). */
  async stop(opts: { wait?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.deps.bus.removeAll(this);
    this.scheduler.stop();
    this.reader.stop();
    if (opts.wait !== false) {
      await this.reader.running;
      await this.scheduler.idle();
      // Orderly stop: another instance may take the cursor at once instead of after the lease.
      await this.deps.store
        .releaseCursor(EVENT_CURSOR, this.cfg.instance)
        .catch((err) => this.log.warn({ err }, 'could not release the event cursor'));
    }
  }

  /** Run the due work now (and re-arm the wake timer). Tests call it after moving the clock. */
  kick(): Promise<void> {
    return this.scheduler.kick();
  }

  /** Wait until no tick and no escalation step is running (tests, orderly stop). */
  idle(): Promise<void> {
    return this.scheduler.idle();
  }

  /** Read and apply what was stored after the cursor (the bus says something was stored, the poll, start). */
  consume(): Promise<void> {
    return this.reader.consume();
  }

  // ---------------------------------------------------------------- inputs

  /** Apply one stored event (exported for tests and for replay). */
  async handleEvent(raw: AnyEvent, _receivedAt?: string): Promise<void> {
    if (!this.running) return;
    await this.rules.onEvent(raw);
  }

  /** A voicemail triaged urgent or not triaged at all (fleet/triage): raise voicemail_urgent. Returns the alert id. */
  voicemailNeedsAttention(v: VoicemailAttention): Promise<string> {
    return this.rules.onVoicemailAttention(v);
  }

  /**
   * A voicemail was listened to (dashboard, API): no unheard-voicemail alert for it, and its box is
   * told (device command voicemail.heard) so that its voicemail light goes out when none is left.
   * The command is not waited for: a box that is offline gets it from its persistent session when it
   * is back, within VOICEMAIL_HEARD_EXPIRES_MS. Returns the box told, or null when none is known.
   */
  async voicemailHeard(voicemailId: string, by: string): Promise<string | null> {
    const key = `voicemail:${voicemailId}`;
    const deviceId = this.pending.get(key)?.deviceId ?? (await this.deviceOfVoicemail(voicemailId));
    await this.pending.clear(key, `heard by ${by}`);
    const commands = this.deps.commands;
    if (!deviceId || !commands) {
      if (!deviceId) this.log.warn({ voicemailId }, 'voicemail heard, but no box is known to have recorded it');
      return deviceId;
    }
    commands.send(deviceId, 'voicemail.heard', { voicemailId }, { expiresInMs: VOICEMAIL_HEARD_EXPIRES_MS }).then(
      (r) => this.log.info({ deviceId, voicemailId, ...r }, 'box told the voicemail was heard'),
      (err) =>
        this.log.info(
          { deviceId, voicemailId, err: String(err) },
          'box not told yet that the voicemail was heard (it gets the command when it is back)',
        ),
    );
    return deviceId;
  }

  /** The box that recorded a voicemail, from its stored voicemail.recorded event (newest 10 000 looked at). */
  private async deviceOfVoicemail(voicemailId: string): Promise<string | null> {
    const events = await this.deps.store.listEvents({ type: 'voicemail.recorded', limit: 10_000 });
    const e = events.find((x) => (x.body as { voicemailId?: string }).voicemailId === voicemailId);
    return e?.deviceId ?? null;
  }

  // ---------------------------------------------------------------- the clinic directory

  clinicOfDevice(deviceId: string): Promise<string | null> {
    return this.directory.clinicOfDevice(deviceId);
  }

  settingsOf(clinicId: string): Promise<ClinicAlertSettings> {
    return this.directory.settingsOf(clinicId);
  }

  putSettings(clinicId: string, input: unknown, by: string): Promise<ClinicAlertSettings> {
    return this.directory.putSettings(clinicId, input, by);
  }

  /** Is the clinic open now on its own wall clock? Unknown hours count as open (alert rather than miss). */
  isOpen(clinicId: string, at = this.now()): Promise<boolean> {
    return this.directory.isOpen(clinicId, at);
  }

  /** Boxes that can send an SMS for a clinic: online ones of the clinic, then of its organisation. */
  smsSenders(clinicId: string): Promise<string[]> {
    return this.directory.smsSenders(clinicId);
  }

  contactsOf(clinicId: string): Promise<AlertContact[]> {
    return this.directory.contactsOf(clinicId);
  }

  /** Hold notifications back in a window (panic only when listed). */
  silence(clinicId: string, w: SilenceWindow, by: string): Promise<ClinicAlertSettings> {
    return this.directory.addSilence(clinicId, w, by);
  }

  // ---------------------------------------------------------------- alerts

  /** Open an alert, or count one more occurrence of the active one. */
  async raise(clinicId: string, condition: Condition, o: RaiseOptions): Promise<RaiseResult> {
    const at = o.at ?? this.now();
    let opened: Promise<void> | undefined;
    const result = await this.lock.run(`${clinicId}|${condition}`, async (): Promise<RaiseResult> => {
      const { alerts } = this.deps;
      const active = await alerts.getActive(clinicId, condition);
      if (active) {
        const a = await alerts.addOccurrence(active.id, this.iso(at), o.eventId);
        if (a) {
          if ((o.occurrences ?? 1) > 1 && a.occurrences > active.occurrences) {
            for (let i = 1; i < (o.occurrences ?? 1); i++) await alerts.addOccurrence(active.id, this.iso(at));
          }
          return { alert: a, created: false };
        }
        // Resolved between the read and the count (a notice resolves itself once sent, outside this lock; a
        // person resolved it): this occurrence opens a new alert below. Returning the resolved one would drop
        // the event's effect, and a replay of the event after a crash would then open the alert it should have.
      }
      const s = await this.settingsOf(clinicId);
      const silencedUntil = silenceEnd(s, condition, this.now());
      const nextStepAt = this.iso(silencedUntil ?? this.now());
      let alert: Alert;
      try {
        alert = await alerts.createAlert({
          clinicId,
          condition,
          severity: o.severity ?? 'warning',
          text: o.text,
          deviceId: o.deviceId ?? null,
          details: o.details ?? {},
          at: this.iso(at),
          nextStepAt,
          lease: { owner: this.cfg.instance, until: this.iso(this.now() + this.cfg.leaseS * 1000) },
          ...(o.eventId ? { eventId: o.eventId } : {}),
        });
      } catch (e) {
        // Another fleet instance opened it a moment ago: count this one on it (or this event already did).
        if (isCallboxError(e, ErrorCode.Conflict) && typeof e.details?.existingId === 'string') {
          const a =
            (await alerts.addOccurrence(e.details.existingId, this.iso(at), o.eventId)) ??
            (e.details.alreadyApplied ? await alerts.getAlert(e.details.existingId) : undefined);
          if (a) return { alert: a, created: false };
        }
        throw e;
      }
      for (let i = 1; i < (o.occurrences ?? 1); i++) {
        alert = (await alerts.addOccurrence(alert.id, this.iso(at))) ?? alert;
      }
      // Written while the first step runs (not before it): the history is ordered by time.
      opened = alerts.appendLog({ alertId: alert.id, at: this.iso(), action: 'opened', by: 'engine', detail: o.text });
      if (silencedUntil) {
        await alerts.appendLog({
          alertId: alert.id,
          at: this.iso(),
          action: 'silenced',
          by: 'engine',
          detail: `until ${this.iso(silencedUntil)}`,
        });
      }
      this.log.info({ alertId: alert.id, clinicId, condition, severity: alert.severity }, 'alert opened');
      return { alert, created: true };
    });
    if (result.created && Date.parse(result.alert.nextStepAt ?? '') <= this.now()) {
      // A new alert was created holding the lease on its first step: notify now, without reading it back.
      // From the cursor reader it runs beside (tracked by the escalator): a slow channel must not hold the next events.
      if (this.reader.inEvent) void this.escalator.runStep(result.alert, true);
      else await this.escalator.runStep(result.alert, true);
    } else if (result.created) {
      void this.scheduler.arm();
    }
    await opened?.catch((err) => this.log.warn({ err, alertId: result.alert.id }, 'alert history not written'));
    return result;
  }

  /** Acknowledge: stop escalating; re-opens if not resolved within ackTimeoutMin. Idempotent. With `epoch` (a link's), only that opening of the alert: a link from before a re-open is refused. */
  async acknowledge(alertId: string, by: string, opts: { epoch?: number } = {}): Promise<Alert> {
    const a = await this.mustGet(alertId);
    this.checkEpoch(a, opts.epoch);
    if (a.state !== 'open') return a;
    const s = await this.settingsOf(a.clinicId);
    const updated = await this.deps.alerts.updateAlert(
      alertId,
      {
        state: 'acknowledged',
        ackedAt: this.iso(),
        ackedBy: by,
        ackDeadline: this.iso(this.now() + s.ackTimeoutMin * 60_000),
        nextStepAt: null,
      },
      { state: 'open', epoch: a.epoch },
    );
    if (!updated) {
      const now = await this.mustGet(alertId);
      this.checkEpoch(now, opts.epoch);
      return now;
    }
    await this.deps.alerts.appendLog({ alertId, at: this.iso(), action: 'acknowledged', by, detail: null });
    this.log.info({ alertId, by }, 'alert acknowledged');
    if (updated.condition === 'panic' && updated.deviceId && typeof updated.details.panicId === 'string') {
      const panicId = updated.details.panicId;
      const deviceId = updated.deviceId;
      // Showing the acknowledgement (and stopping the box's SMS fallback) is still right an hour later.
      void this.deps.commands
        ?.send(deviceId, 'panic.ack', { panicId, by: by.slice(0, 120) }, { expiresInMs: PANIC_ACK_EXPIRES_MS })
        .catch((err) => this.log.warn({ err, alertId }, 'could not tell the box the panic was acknowledged'));
    }
    void this.scheduler.arm();
    return updated;
  }

  /** Resolve: the alert is over. Idempotent. */
  async resolve(alertId: string, by: string, why?: string, opts: { epoch?: number } = {}): Promise<Alert> {
    const a = await this.mustGet(alertId);
    if (a.state === 'resolved') return a;
    this.checkEpoch(a, opts.epoch);
    const updated = await this.deps.alerts.updateAlert(
      alertId,
      { state: 'resolved', resolvedAt: this.iso(), resolvedBy: by, nextStepAt: null, ackDeadline: null },
      opts.epoch === undefined
        ? { state: ['open', 'acknowledged'] }
        : { state: ['open', 'acknowledged'], epoch: opts.epoch },
    );
    if (!updated) return this.mustGet(alertId);
    await this.deps.alerts.appendLog({ alertId, at: this.iso(), action: 'resolved', by, detail: why ?? null });
    this.log.info({ alertId, by, why }, 'alert resolved');
    return updated;
  }

  /** A link for another opening of the alert than the current one acts on nothing (NotAuthorized). */
  private checkEpoch(a: Alert, epoch: number | undefined): void {
    if (epoch === undefined || epoch === a.epoch) return;
    throw new CallboxError(
      ErrorCode.NotAuthorized,
      `this link was sent for an earlier opening of alert ${a.shortCode}; it opened again since: use the link in the newest message`,
    );
  }

  /** Acknowledge or resolve by the 4-digit code (CLI, SMS). */
  async byCode(code: string): Promise<Alert> {
    const a = await this.deps.alerts.getActiveByCode(code);
    if (!a) throw new CallboxError(ErrorCode.AlertNotFound, `no active alert has the code ${code}`);
    return a;
  }

  private async reopen(a: Alert): Promise<void> {
    const updated = await this.deps.alerts.updateAlert(
      a.id,
      {
        state: 'open',
        epoch: a.epoch + 1,
        nextStep: 0,
        nextStepAt: this.iso(),
        ackDeadline: null,
        leaseOwner: null,
        leaseUntil: null,
      },
      { state: 'acknowledged', epoch: a.epoch },
    );
    if (!updated) return;
    await this.deps.alerts.appendLog({
      alertId: a.id,
      at: this.iso(),
      action: 'reopened',
      by: 'engine',
      detail: `acknowledged by ${a.ackedBy ?? '?'} but not resolved in time`,
    });
    this.log.warn({ alertId: a.id }, 'acknowledged alert not resolved in time: open again');
    await this.escalator.runStep(updated);
  }

  private async mustGet(alertId: string): Promise<Alert> {
    const a = await this.deps.alerts.getAlert(alertId);
    if (!a) throw new CallboxError(ErrorCode.AlertNotFound, `no alert ${alertId}`);
    return a;
  }

  // ---------------------------------------------------------------- rollover

  /** Switch the clinic's calls to its answering service; active once a box confirms it. */
  startRollover(clinicId: string, o: RolloverOptions): Promise<Rollover> {
    return this.rollover.start(clinicId, o);
  }

  /** Switch forwarding back off; the rollover ends once every box confirms. */
  stopRollover(clinicId: string, by: string, why = 'by hand'): Promise<Rollover> {
    return this.rollover.stop(clinicId, by, why);
  }

  async rolloverStatus(clinicId: string): Promise<Rollover | undefined> {
    return this.deps.alerts.getRollover(clinicId);
  }

  // ---------------------------------------------------------------- reads

  async get(alertId: string): Promise<{ alert: Alert; deliveries: Delivery[]; log: unknown[] }> {
    const alert = await this.mustGet(alertId);
    return {
      alert,
      deliveries: await this.deps.alerts.listDeliveries(alertId),
      log: await this.deps.alerts.listLog(alertId),
    };
  }

  list(filter: Parameters<AlertStore['listAlerts']>[0] = {}): Promise<Alert[]> {
    return this.deps.alerts.listAlerts(filter);
  }
}
