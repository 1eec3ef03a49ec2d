/**
 * The rollover and alert engine.
 *
 * Inputs: the stored events (call.ended, call.answered, panic.*,
 * modem.state, voicemail.recorded and sms.received), read in the order they
 * were stored through a durable cursor in the fleet store; the fleet bus
 * ('presence.changed'; 'telemetry'; 'event.stored' only wakes the cursor
 * reader), the ops API, the HTTP links and the CLI.
 *
 * Stored events, exactly once: the cursor (`alerts` in event_cursors) is
 * like a Kafka consumer group's offset. At start, and whenever the bus says
 * something was stored (and every eventPollMs, for events another fleet
 * instance stored), the engine takes the cursor's lease, reads the events
 * after it, applies them (in order per box) and moves the cursor past them
 * (compare and set). So events stored while the engine was down or not yet
 * started are read at its start. A crash between applying and moving reads
 * them again: opening or counting an alert is recorded per event in the
 * same transaction (AlertStore alert_event_effects), pending conditions are
 * keyed, acknowledge and resolve are idempotent, so reading again changes
 * nothing. One fleet instance holds the cursor at a time; another takes it
 * when the holder's lease (leaseS) runs out.
 * Outputs: notifications through channels (webhook, SMS through a box,
 * email), and forwarding commands to boxes (rollover).
 *
 * How an alert lives (all of it persisted in the AlertStore as it changes):
 *   raise -> one active alert per clinic and condition (a second occurrence
 *   only counts) -> escalation: step k of the clinic's policy for the
 *   alert's severity is due at nextStepAt; running it delivers to every
 *   recipient on every channel of the step, each notification with a dedup
 *   key "<alert>:<epoch>:<step>:<channel>:<target>" that is recorded once
 *   sent, then moves nextStep on and sets the time of the next one. The
 *   steps repeat `repeat` times. A step is leased (claimStep) before it
 *   runs, so only one fleet instance runs it; an instance that dies in the
 *   middle of a step leaves the step where it was, and whoever runs it next
 *   (the same instance after a restart, or another after the lease) sends
 *   only what was not yet recorded as sent.
 *   acknowledge -> escalation stops; if not resolved within ackTimeoutMin
 *   the alert opens again (epoch + 1) and escalates from the first step.
 *   resolve -> by a person, or by the engine when the condition clears
 *   (box back online, modem ready, rollover ended, clinic answers again).
 *   Notices (severity "notice") resolve themselves once sent.
 *
 * Conditions that need a grace time (box offline, modem trouble, voicemail
 * unheard) are kept as pending conditions in the store and raised by the
 * sweep once they have lasted long enough (and, for an offline box, while
 * the clinic is open on its own wall clock).
 *
 * Time: `clock.now()` is read for every decision and timers are plain
 * setTimeout, so tests drive it all with vi.useFakeTimers().
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import { openAt } from '../../device/calls/hours.js';
import { background } from '../../shared/background.js';
import type { AnyEvent, EventOf } from '../../shared/contract/events.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, describeError, ErrorCode, isCallboxError } from '../../shared/errors.js';
import { getLogger, type Logger } from '../../shared/log.js';
import type { FleetBus, FleetBusEvents } from '../bus.js';
import type { SmsTarget } from '../channels/sms.js';
import type { Channel, Notification, OnAttempt } from '../channels/types.js';
import type { WebhookTarget } from '../channels/webhook.js';
import type { BoxCommands } from '../commands.js';
import type { Clinic, PositionedEvent, Store } from '../store/types.js';
import {
  type AlertContact,
  type AlertsConfig,
  type ChannelName,
  type ClinicAlertSettings,
  type Condition,
  clinicAlertSettings,
  type Severity,
  type SilenceWindow,
} from './config.js';
import type { AlertLinks } from './links.js';
import type { Alert, AlertStore, Delivery, PendingCondition, Rollover } from './types.js';

export interface Clock {
  now(): number;
}

export interface AlertChannels {
  webhook?: Channel<WebhookTarget>;
  sms?: Channel<SmsTarget>;
  email?: Channel<string>;
}

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

const MISSED_OUTCOMES = new Set(['missed', 'voicemail', 'voicemail_failed', 'rolled_over']);
const MODEM_CONDITIONS: Record<string, Condition | undefined> = {
  no_signal: 'no_signal',
  not_registered: 'no_signal',
  sim_missing: 'sim_problem',
  sim_pin: 'sim_problem',
  registration_denied: 'registration_denied',
};
/** A panic.ack queued for an offline box is still shown when it comes back within this time. */
const PANIC_ACK_EXPIRES_MS = 3_600_000;
/** A due step that is running or failed is looked at again after this long. */
const RETRY_MS = 1000;
/** The alert engine's cursor over stored events (made by the fleet store's migration 3). */
export const EVENT_CURSOR = 'alerts';
/** A stored event whose handling failed this many times is logged and passed over (it must not stop alerting). */
const EVENT_ATTEMPTS = 5;
const SMS_REPLY = /^\s*(ACK|OK|YES|A|RESOLVE|RES|R|DONE)?\s*#?(\d{4})\b/i;

function digits(s: string): string {
  return s.replace(/\D/g, '');
}

/** Same phone? E.164 against a national form: compare the last 9 digits (at least 7). */
export function samePhone(a: string, b: string): boolean {
  const x = digits(a);
  const y = digits(b);
  if (x.length < 7 || y.length < 7) return false;
  const n = Math.min(9, x.length, y.length);
  return x.slice(-n) === y.slice(-n);
}

/** A stored event as the box sent it (what handleEvent takes). */
function storedToEvent(e: PositionedEvent): AnyEvent {
  return {
    v: 1,
    id: e.id,
    deviceId: e.deviceId,
    bootId: e.bootId,
    seq: e.seq,
    at: e.at,
    type: e.type,
    body: e.body,
  } as AnyEvent;
}

function lastFour(number: string): string {
  return `…${digits(number).slice(-4)}`;
}

type Hours = Pick<DeviceSettings, 'clinic' | 'hours'>;

interface Cached<T> {
  value: T;
  until: number;
}

export class AlertEngine {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly cfg: AlertsConfig;
  private wakeTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private running = false;
  private ticking: Promise<void> | undefined;
  private tickAgain = false;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly boxClinic = new Map<string, Cached<{ clinicId: string | null }>>();
  private readonly clinics = new Map<string, Cached<Clinic | undefined>>();
  private readonly settings = new Map<string, Cached<ClinicAlertSettings>>();
  private readonly hours = new Map<string, Cached<Hours | null>>();
  /** Unanswered in-hours calls per clinic (ms times), for the missed-calls rule. */
  private readonly missed = new Map<string, number[]>();
  /** Outbox depth trend per box. */
  private readonly outbox = new Map<string, { depth: number; rising: number }>();
  /** Live presence from the bus (the store's flag lags by its flush interval). */
  private readonly presence = new Map<string, boolean>();
  private readonly pending = new Map<string, PendingCondition>();
  /** The cursor reader: one pass at a time, another right after it if asked meanwhile. */
  private consuming: Promise<void> | undefined;
  private consumeAgain = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MS;
  /** Events of the batch being read that are already applied (by id, with their position). */
  private readonly appliedIds = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private prunedAt = 0;
  /** Set while the cursor reader applies an event: a new alert's first step then runs without holding it. */
  private readonly fromCursor = new AsyncLocalStorage<boolean>();

  constructor(private readonly deps: AlertEngineDeps) {
    this.log = deps.log ?? getLogger('fleet:alerts');
    this.clock = deps.clock ?? { now: () => Date.now() };
    this.cfg = deps.config;
  }

  private now(): number {
    return this.clock.now();
  }

  private iso(ms = this.now()): string {
    return new Date(ms).toISOString();
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    for (const p of await this.deps.alerts.listPending()) this.pending.set(p.key, p);
    const { bus } = this.deps;
    bus.on('event.stored', this, () => void this.consume());
    bus.on('presence.changed', this, (p) => this.onPresence(p));
    bus.on('telemetry', this, (t) => this.onTelemetry(t));
    bus.on('box.approved', this, ({ box }) => {
      if (box.deviceId) this.boxClinic.delete(box.deviceId);
    });
    bus.on('box.decommissioned', this, ({ box }) => {
      if (box.deviceId) this.boxClinic.delete(box.deviceId);
    });
    await this.prewarm();
    await this.seedOffline();
    this.sweepTimer = setInterval(() => this.kick(), this.cfg.sweepS * 1000);
    this.sweepTimer.unref?.();
    this.pollTimer = setInterval(() => void this.consume(), this.cfg.eventPollMs);
    this.pollTimer.unref?.();
    void this.kick(); // never rejects: a failed tick is logged
    // Catch up on what was stored while the engine was not running (in the background: live events follow).
    void this.consume(); // never rejects: a failed pass is logged and tried again
    this.log.info({ instance: this.cfg.instance, pending: this.pending.size }, 'alert engine started');
  }

  /** Stop listening and timing; waits for steps in progress (bounded by the channels' own timeouts). */
  async stop(opts: { wait?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.deps.bus.removeAll(this);
    clearTimeout(this.wakeTimer);
    clearInterval(this.sweepTimer);
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    if (opts.wait !== false) {
      await this.consuming;
      await this.ticking?.catch(() => undefined);
      await Promise.allSettled([...this.inFlight.values()]);
      // Orderly stop: another instance may take the cursor at once instead of after the lease.
      await this.deps.store
        .releaseCursor(EVENT_CURSOR, this.cfg.instance)
        .catch((err) => this.log.warn({ err }, 'could not release the event cursor'));
    }
  }

  /** Run the due work now (and re-arm the wake timer). Tests call it after moving the clock. */
  kick(): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.ticking) {
      this.tickAgain = true;
      return this.ticking;
    }
    this.ticking = (async () => {
      try {
        do {
          this.tickAgain = false;
          await this.tick();
        } while (this.tickAgain && this.running);
      } catch (e) {
        if (this.running) this.log.error({ err: e }, 'alert engine tick failed'); // else: stopped under it
      } finally {
        this.ticking = undefined;
        await this.arm();
      }
    })();
    return this.ticking;
  }

  private async arm(): Promise<void> {
    if (!this.running) return;
    clearTimeout(this.wakeTimer);
    let wait = this.cfg.sweepS * 1000;
    try {
      const next = await this.deps.alerts.nextWake();
      // Something already due is running (or failed and will be retried): look again in a second,
      // and at once when a step finishes (runStep re-arms), rather than spinning on it.
      if (next) wait = Math.min(wait, Math.max(RETRY_MS, Date.parse(next) - this.now()));
    } catch (e) {
      this.log.warn({ err: e }, 'cannot read the next wake time');
    }
    if (!this.running) return;
    this.wakeTimer = setTimeout(() => void this.kick(), wait);
    this.wakeTimer.unref?.();
  }

  private async tick(): Promise<void> {
    const now = this.iso();
    // Steps run side by side and are not awaited here: a slow channel on one alert must not hold the others.
    // A reopen that fails leaves the alert acknowledged past its deadline: listed again at the next tick.
    for (const a of await this.deps.alerts.listAckExpired(now)) {
      background(this.reopen(a), this.log, `reopening alert ${a.id}; tried again at the next tick`);
    }
    for (const a of await this.deps.alerts.listDue(now)) void this.runStep(a);
    await this.sweep();
  }

  /** Wait until no tick and no escalation step is running (tests, orderly stop). */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (this.ticking) await this.ticking.catch(() => undefined);
      const steps = [...this.inFlight.values()];
      if (steps.length === 0 && !this.ticking) return;
      await Promise.allSettled(steps);
    }
  }

  /** Serialise work on one key (clinic + condition) inside this process. */
  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
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

  // ---------------------------------------------------------------- stored events (durable cursor)

  /** Read and apply what was stored after the cursor (the bus says something was stored, the poll, start). */
  consume(): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.consuming) {
      this.consumeAgain = true;
      return this.consuming;
    }
    this.consuming = (async () => {
      try {
        do {
          this.consumeAgain = false;
          await this.catchUp();
        } while (this.consumeAgain && this.running);
      } catch (e) {
        if (!this.running) return; // stopped under it: read again at the next start
        this.log.error({ err: e, retryMs: this.retryMs }, 'reading stored events failed; trying again');
        this.retryLater();
      } finally {
        this.consuming = undefined;
      }
    })();
    return this.consuming;
  }

  private retryLater(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.consume(), this.retryMs);
    this.retryTimer.unref?.();
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
  }

  /** Until nothing is left after the cursor (or another instance holds it). */
  private async catchUp(): Promise<void> {
    const { store } = this.deps;
    while (this.running) {
      const now = this.now();
      const until = this.iso(now + this.cfg.leaseS * 1000);
      const cursor = await store.claimCursor(EVENT_CURSOR, this.cfg.instance, this.iso(now), until);
      if (!cursor) return; // another fleet instance reads the events; the poll looks again
      const batch = await store.readEventsAfter(cursor.pos, this.cfg.eventBatch);
      if (batch.length === 0) return;
      const failed = await this.applyBatch(batch);
      if (!this.running) return; // stopped under it: the rest is read again at the next start
      // The cursor moves past the events applied without a gap; a failed one stops it (read again later).
      let to = cursor.pos;
      for (const e of batch) {
        if (!this.appliedIds.has(e.id)) break;
        to = e.pos;
      }
      if (to > cursor.pos) {
        const moved = await store.advanceCursor(EVENT_CURSOR, {
          owner: this.cfg.instance,
          from: cursor.pos,
          to,
          now: this.iso(),
          until,
        });
        if (!moved) {
          this.log.warn({ pos: cursor.pos }, 'the event cursor was taken by another instance; it reads from here');
          return;
        }
        for (const [id, pos] of this.appliedIds) if (pos <= to) this.appliedIds.delete(id);
        if (cursor.pos === 0 || batch.length >= this.cfg.eventBatch) {
          this.log.debug({ from: cursor.pos, to, events: batch.length }, 'stored events applied');
        }
      }
      if (failed) {
        this.retryLater();
        return;
      }
      this.retryMs = RETRY_MS;
      await this.pruneEffects();
    }
  }

  /** Apply a batch: one box's events in order, boxes side by side. Returns true if any failed. */
  private async applyBatch(batch: PositionedEvent[]): Promise<boolean> {
    const byBox = new Map<string, PositionedEvent[]>();
    for (const e of batch) {
      const list = byBox.get(e.deviceId) ?? [];
      list.push(e);
      byBox.set(e.deviceId, list);
    }
    let failed = false;
    await Promise.all(
      [...byBox.values()].map(async (events) => {
        for (const e of events) {
          if (this.appliedIds.has(e.id)) continue;
          try {
            await this.fromCursor.run(true, () => this.handleEvent(storedToEvent(e)));
          } catch (err) {
            const n = (this.failures.get(e.id) ?? 0) + 1;
            this.failures.set(e.id, n);
            if (n < EVENT_ATTEMPTS) {
              this.log.warn({ err, eventId: e.id, type: e.type, attempt: n }, 'applying a stored event failed');
              failed = true;
              return; // this box's later events wait for it
            }
            this.log.error(
              { err, eventId: e.id, type: e.type, deviceId: e.deviceId },
              `applying a stored event failed ${n} times: passed over`,
            );
          }
          this.failures.delete(e.id);
          this.appliedIds.set(e.id, e.pos);
        }
      }),
    );
    return failed;
  }

  /** Forget the per-event records of alerts once a day has passed (the cursor is long past them). */
  private async pruneEffects(): Promise<void> {
    const now = this.now();
    if (now - this.prunedAt < 3_600_000) return;
    this.prunedAt = now;
    await this.deps.alerts
      .pruneEventEffects(this.iso(now - 86_400_000))
      .catch((err) => this.log.warn({ err }, 'pruning event records failed'));
  }

  // ---------------------------------------------------------------- lookups

  private cached<T>(map: Map<string, Cached<T>>, key: string): T | undefined {
    const c = map.get(key);
    return c && c.until > this.now() ? c.value : undefined;
  }

  async clinicOfDevice(deviceId: string): Promise<string | null> {
    const c = this.cached(this.boxClinic, deviceId);
    if (c) return c.clinicId;
    const box = await this.deps.store.getBoxByDeviceId(deviceId);
    const clinicId = box && box.claimState === 'approved' ? box.clinicId : null;
    // Only a box's clinic is remembered: a box not (yet) in a clinic is looked up again next time.
    if (clinicId) this.boxClinic.set(deviceId, { value: { clinicId }, until: this.now() + 60_000 });
    return clinicId;
  }

  private async clinic(clinicId: string): Promise<Clinic | undefined> {
    const c = this.clinics.get(clinicId);
    if (c && c.until > this.now()) return c.value;
    const clinic = await this.deps.store.getClinic(clinicId);
    this.clinics.set(clinicId, { value: clinic, until: this.now() + 10_000 });
    return clinic;
  }

  async settingsOf(clinicId: string): Promise<ClinicAlertSettings> {
    const c = this.cached(this.settings, clinicId);
    if (c) return c;
    const s = (await this.deps.alerts.getClinicSettings(clinicId)) ?? clinicAlertSettings({});
    this.settings.set(clinicId, { value: s, until: this.now() + 10_000 });
    return s;
  }

  async putSettings(clinicId: string, input: unknown, by: string): Promise<ClinicAlertSettings> {
    if (!(await this.clinic(clinicId))) {
      throw new CallboxError(ErrorCode.NotFound, `no clinic ${clinicId}`);
    }
    const s = clinicAlertSettings(input);
    await this.deps.alerts.putClinicSettings(clinicId, s);
    this.settings.delete(clinicId);
    this.hours.delete(clinicId);
    this.log.info({ clinicId, by }, 'alert settings changed');
    return s;
  }

  /** The clinic's opening hours: the alert settings' own, else the hours in a box's settings. */
  private async hoursOf(clinicId: string): Promise<Hours | null> {
    const c = this.hours.get(clinicId);
    if (c && c.until > this.now()) return c.value;
    const clinic = await this.clinic(clinicId);
    const timezone = clinic?.timezone ?? 'UTC';
    const settings = await this.settingsOf(clinicId);
    let value: Hours | null = null;
    if (settings.hours) {
      const w = settings.hours;
      value = {
        clinic: { name: clinic?.name ?? clinicId, timezone },
        hours: {
          weekly: {
            mon: w.mon ?? [],
            tue: w.tue ?? [],
            wed: w.wed ?? [],
            thu: w.thu ?? [],
            fri: w.fri ?? [],
            sat: w.sat ?? [],
            sun: w.sun ?? [],
          },
          lunch: null,
          closures: [],
        },
      };
    } else {
      for (const box of await this.deps.store.listBoxes({ clinicId, claimState: 'approved' })) {
        if (!box.deviceId) continue;
        const desired = await this.deps.store.getDesiredConfig(box.deviceId);
        if (desired) {
          value = { clinic: { ...desired.settings.clinic, timezone }, hours: desired.settings.hours };
          break;
        }
      }
    }
    this.hours.set(clinicId, { value, until: this.now() + 60_000 });
    return value;
  }

  /** Is the clinic open now on its own wall clock? Unknown hours count as open (alert rather than miss). */
  async isOpen(clinicId: string, at = this.now()): Promise<boolean> {
    const h = await this.hoursOf(clinicId);
    return h ? openAt(h, at).open : true;
  }

  /** "14:05 Tue 26 Nov" on the clinic's wall clock. */
  private async localTime(clinicId: string, at: number): Promise<string> {
    const tz = (await this.clinic(clinicId))?.timezone ?? 'UTC';
    try {
      return new Intl.DateTimeFormat('en-GB', {
        timeZone: tz,
        hour: '2-digit',
        minute: '2-digit',
        weekday: 'short',
        day: 'numeric',
        month: 'short',
        hourCycle: 'h23',
      }).format(new Date(at));
    } catch {
      return new Date(at).toISOString();
    }
  }

  private async clinicName(clinicId: string): Promise<string> {
    return (await this.clinic(clinicId))?.name ?? clinicId;
  }

  private online(b: { deviceId: string | null; online: boolean }): boolean {
    if (!b.deviceId) return false;
    if (this.deps.isOnline) return this.deps.isOnline(b.deviceId);
    return this.presence.get(b.deviceId) ?? b.online;
  }

  /** Boxes that can send an SMS for a clinic: online ones of the clinic, then of its organisation. */
  async smsSenders(clinicId: string): Promise<string[]> {
    const online = (b: { deviceId: string | null; online: boolean }) => b.deviceId !== null && this.online(b);
    const own = (await this.deps.store.listBoxes({ clinicId, claimState: 'approved' })).filter(online);
    const out = own.map((b) => b.deviceId as string);
    const clinic = await this.clinic(clinicId);
    if (clinic?.organisationId) {
      for (const other of await this.deps.store.listClinics({ organisationId: clinic.organisationId })) {
        if (other.id === clinicId) continue;
        for (const b of await this.deps.store.listBoxes({ clinicId: other.id, claimState: 'approved' })) {
          if (online(b)) out.push(b.deviceId as string);
        }
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- inputs

  /** Apply one stored event (exported for tests and for replay). */
  async handleEvent(raw: AnyEvent, _receivedAt?: string): Promise<void> {
    if (!this.running) return;
    const clinicId = await this.clinicOfDevice(raw.deviceId);
    if (!clinicId) return;
    const at = Date.parse(raw.at);
    const atMs = Number.isNaN(at) ? this.now() : Math.min(at, this.now());
    switch (raw.type) {
      case 'panic.pressed':
        return this.onPanic(clinicId, raw as EventOf<'panic.pressed'>, atMs);
      case 'panic.cancelled': {
        const active = await this.deps.alerts.getActive(clinicId, 'panic');
        if (active && active.details.panicId === raw.body.panicId) {
          await this.resolve(active.id, 'box:cancelled', 'cancelled at the box');
        }
        return;
      }
      case 'call.ended':
        return this.onCallEnded(clinicId, raw as EventOf<'call.ended'>, atMs);
      case 'call.answered':
        return this.onAnswered(clinicId, raw as EventOf<'call.answered'>);
      case 'modem.state':
        return this.onModem(clinicId, raw as EventOf<'modem.state'>, atMs);
      case 'voicemail.recorded': {
        const s = await this.settingsOf(clinicId);
        await this.setPending({
          key: `voicemail:${raw.body.voicemailId}`,
          clinicId,
          condition: 'voicemail_unheard',
          deviceId: raw.deviceId,
          since: this.iso(atMs),
          meta: { graceMs: s.rules.voicemail.unheardMin * 60_000, voicemailId: raw.body.voicemailId },
        });
        return;
      }
      case 'sms.received':
        await this.onSmsReply(clinicId, raw.body.from, raw.body.text);
        return;
      default:
        return;
    }
  }

  private async onPanic(clinicId: string, e: EventOf<'panic.pressed'>, at: number): Promise<void> {
    const s = await this.settingsOf(clinicId);
    const name = await this.clinicName(clinicId);
    const when = await this.localTime(clinicId, at);
    await this.raise(clinicId, 'panic', {
      severity: s.rules.panic.severity,
      text: `PANIC at ${name}: the panic button (${e.body.source}) was pressed at ${when}.`,
      deviceId: e.deviceId,
      details: { panicId: e.body.panicId, source: e.body.source },
      at,
      eventId: e.id,
    });
  }

  private async onCallEnded(clinicId: string, e: EventOf<'call.ended'>, at: number): Promise<void> {
    const s = await this.settingsOf(clinicId);
    const name = await this.clinicName(clinicId);
    const b = e.body;
    if (b.timeToAnswerMs !== null && b.outcome === 'answered' && b.timeToAnswerMs > s.rules.slowAnswer.targetS * 1000) {
      await this.raise(clinicId, 'slow_answer', {
        severity: s.rules.slowAnswer.severity,
        text: `${name} took ${Math.round(b.timeToAnswerMs / 1000)} s to answer a call (target ${s.rules.slowAnswer.targetS} s).`,
        deviceId: e.deviceId,
        at,
        eventId: e.id,
      });
    }
    if (b.outcome === 'voicemail_failed') await this.onVoicemailFailed(clinicId, e, at, s, name);
    if (!MISSED_OUTCOMES.has(b.outcome)) return;
    if (!b.inHours) {
      if (!s.rules.missedAfterHours.enabled) return;
      await this.raise(clinicId, 'missed_after_hours', {
        severity: s.rules.missedAfterHours.severity,
        text: `${name} missed a call after hours at ${await this.localTime(clinicId, at)}.`,
        deviceId: e.deviceId,
        at,
        eventId: e.id,
      });
      return;
    }
    // One decision at a time per clinic: events of a burst arrive together and must count once each.
    await this.locked(`missed:${clinicId}`, () => this.countMissed(clinicId, e, at, s, name));
  }

  /** The box answered for voicemail but did not keep the recording: the caller's message is gone. */
  private async onVoicemailFailed(
    clinicId: string,
    e: EventOf<'call.ended'>,
    at: number,
    s: ClinicAlertSettings,
    name: string,
  ): Promise<void> {
    const b = e.body;
    const caller = b.withheld || !b.number ? 'a caller who withheld the number' : `the caller ${lastFour(b.number)}`;
    await this.raise(clinicId, 'voicemail_failed', {
      severity: s.rules.voicemailFailed.severity,
      text: `A voicemail left at ${name} at ${await this.localTime(clinicId, at)} was NOT recorded (${b.voicemailError ?? 'unknown reason'}): ${caller} left a message nobody can hear. Call them back; the box's voicemail recording needs attention.`,
      deviceId: e.deviceId,
      details: { callId: b.callId, reason: b.voicemailError ?? null },
      at,
      eventId: e.id,
    });
  }

  private async countMissed(
    clinicId: string,
    e: EventOf<'call.ended'>,
    at: number,
    s: ClinicAlertSettings,
    name: string,
  ): Promise<void> {
    const rule = s.rules.missedCalls;
    const windowMs = rule.windowMin * 60_000;
    const list = (this.missed.get(clinicId) ?? []).filter((t) => t > this.now() - windowMs);
    list.push(at);
    this.missed.set(clinicId, list);
    const active = await this.deps.alerts.getActive(clinicId, 'missed_calls');
    if (active) {
      await this.raise(clinicId, 'missed_calls', { text: active.text, at, eventId: e.id });
      return;
    }
    if (list.length < rule.count) return;
    const r = await this.raise(clinicId, 'missed_calls', {
      severity: rule.severity,
      text: `${name} did not answer ${list.length} calls in ${rule.windowMin} minutes (since ${await this.localTime(clinicId, list[0] ?? at)}).`,
      deviceId: e.deviceId,
      occurrences: list.length,
      at,
      eventId: e.id,
    });
    if (r.created && rule.autoRollover) {
      await this.startRollover(clinicId, {
        by: 'engine',
        reason: `${list.length} calls were not answered in ${rule.windowMin} minutes`,
      }).catch((err) => this.log.warn({ err, clinicId }, 'automatic rollover failed'));
    }
  }

  private async onAnswered(clinicId: string, e: EventOf<'call.answered'>): Promise<void> {
    if (e.body.by !== 'handset' && e.body.by !== 'button') return;
    this.missed.delete(clinicId);
    const active = await this.deps.alerts.getActive(clinicId, 'missed_calls');
    if (active) await this.resolve(active.id, 'engine', 'the clinic answered a call');
    const ro = await this.deps.alerts.getRollover(clinicId);
    if (ro?.active && ro.backAfter === 'answered') {
      await this.stopRollover(clinicId, 'engine', 'the clinic answered a call').catch((err) =>
        this.log.warn({ err, clinicId }, 'rollover back failed'),
      );
    }
  }

  private async onModem(clinicId: string, e: EventOf<'modem.state'>, at: number): Promise<void> {
    const condition = MODEM_CONDITIONS[e.body.state];
    const all: Condition[] = ['no_signal', 'sim_problem', 'registration_denied'];
    for (const c of all) {
      if (c === condition) continue;
      if (e.body.state === 'ready' || condition) await this.clearPending(`${c}:${e.deviceId}`, 'the modem recovered');
    }
    if (!condition) return;
    const s = await this.settingsOf(clinicId);
    const key = `${condition}:${e.deviceId}`;
    if (this.pending.has(key)) return;
    await this.setPending({
      key,
      clinicId,
      condition,
      deviceId: e.deviceId,
      since: this.iso(at),
      meta: { graceMs: s.rules.modem.afterMin * 60_000, state: e.body.state, detail: e.body.detail ?? null },
    });
  }

  private async onPresence(p: FleetBusEvents['presence.changed']): Promise<void> {
    if (!this.running) return;
    const seenAt = this.iso(); // when the fleet learned it, on the engine's clock
    this.presence.set(p.deviceId, p.online);
    const clinicId = await this.clinicOfDevice(p.deviceId);
    if (!clinicId) return;
    const key = `offline:${p.deviceId}`;
    if (p.online) {
      await this.clearPending(key, 'the box is back online');
      return;
    }
    if (this.pending.has(key)) return;
    const s = await this.settingsOf(clinicId);
    await this.setPending({
      key,
      clinicId,
      condition: 'box_offline',
      deviceId: p.deviceId,
      since: seenAt,
      meta: { graceMs: s.rules.boxOffline.afterMin * 60_000, duringHours: true, reason: p.reason },
    });
  }

  private async onTelemetry({ deviceId, telemetry }: FleetBusEvents['telemetry']): Promise<void> {
    if (!this.running) return;
    // The trend is updated before any await, so samples arriving together are counted in order.
    const prev = this.outbox.get(deviceId);
    const depth = telemetry.outboxDepth;
    const rising = prev && depth > prev.depth ? prev.rising + 1 : 0;
    this.outbox.set(deviceId, { depth, rising });
    const clinicId = await this.clinicOfDevice(deviceId);
    if (!clinicId) return;
    const s = await this.settingsOf(clinicId);
    const rule = s.rules.outbox;
    if (rising + 1 >= rule.growingSamples && depth >= rule.minDepth) {
      const active = await this.deps.alerts.getActive(clinicId, 'outbox_backlog');
      if (!active) {
        await this.raise(clinicId, 'outbox_backlog', {
          severity: rule.severity,
          text: `The box ${deviceId} of ${await this.clinicName(clinicId)} is not getting its events out: ${depth} are waiting and the number keeps growing.`,
          deviceId,
          details: { depth },
        });
      }
    } else if (prev && depth < prev.depth) {
      const active = await this.deps.alerts.getActive(clinicId, 'outbox_backlog');
      if (active && active.deviceId === deviceId) await this.resolve(active.id, 'engine', 'the outbox is draining');
    }
  }

  /** A voicemail was listened to (dashboard, API): no unheard-voicemail alert for it. */
  async voicemailHeard(voicemailId: string, by: string): Promise<void> {
    await this.clearPending(`voicemail:${voicemailId}`, `heard by ${by}`);
  }

  private async onSmsReply(viaClinicId: string, from: string, text: string): Promise<void> {
    const m = SMS_REPLY.exec(text);
    if (!m) {
      this.log.info({ clinicId: viaClinicId, from }, 'received SMS is not an alert reply');
      return;
    }
    const verb = (m[1] ?? 'ACK').toUpperCase();
    const code = m[2] as string;
    const alert = await this.deps.alerts.getActiveByCode(code);
    if (!alert) {
      this.log.info({ from, code }, 'SMS reply names no active alert');
      return;
    }
    const contacts = await this.contactsOf(alert.clinicId);
    const who = contacts.find((c) => c.phone && samePhone(c.phone, from));
    if (!who) {
      this.log.warn(
        { from, alertId: alert.id },
        'SMS reply from a number that is not a contact of the clinic: ignored',
      );
      return;
    }
    const by = `sms:${who.name}`;
    if (['RESOLVE', 'RES', 'R', 'DONE'].includes(verb)) await this.resolve(alert.id, by, 'SMS reply');
    else await this.acknowledge(alert.id, by);
  }

  // ---------------------------------------------------------------- pending conditions

  private async setPending(p: PendingCondition): Promise<void> {
    this.pending.set(p.key, p);
    await this.deps.alerts.putPending(p);
    const grace = Number(p.meta.graceMs ?? 0);
    if (grace === 0) await this.kick();
  }

  private async clearPending(key: string, why: string): Promise<void> {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    await this.deps.alerts.deletePending(key);
    // Clear the alert when nothing else keeps that condition alive for the clinic.
    const still = [...this.pending.values()].some((q) => q.clinicId === p.clinicId && q.condition === p.condition);
    if (still) return;
    const active = await this.deps.alerts.getActive(p.clinicId, p.condition);
    if (active) await this.resolve(active.id, 'engine', why);
  }

  /** Learn every box's clinic and every clinic in two queries, so events need no registry lookups. */
  private async prewarm(): Promise<void> {
    const now = this.now();
    for (const b of await this.deps.store.listBoxes({ claimState: 'approved' })) {
      if (b.deviceId && b.clinicId) {
        this.boxClinic.set(b.deviceId, { value: { clinicId: b.clinicId }, until: now + 60_000 });
      }
    }
    for (const c of await this.deps.store.listClinics()) this.clinics.set(c.id, { value: c, until: now + 60_000 });
  }

  private async seedOffline(): Promise<void> {
    // Boxes the registry already knows as offline (the fleet was down too, or restarted).
    const boxes = await this.deps.store.listBoxes({ claimState: 'approved' });
    for (const b of boxes) {
      // The registry's flag, not live presence: at start presence has heard from nobody yet.
      if (!b.deviceId || b.online || !b.clinicId) continue;
      const key = `offline:${b.deviceId}`;
      if (this.pending.has(key) || !b.lastSeenAt) continue;
      const s = await this.settingsOf(b.clinicId);
      await this.setPending({
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
  private async checkDrift(): Promise<void> {
    for (const b of await this.deps.store.listBoxes({ claimState: 'approved' })) {
      if (!b.deviceId || !b.clinicId) continue;
      const key = `config_drift:${b.deviceId}`;
      if (b.desiredVersion === 0 || b.reportedVersion === b.desiredVersion) {
        await this.clearPending(key, `the box applied configuration version ${b.reportedVersion}`);
        continue;
      }
      const meta = {
        graceMs: this.cfg.configDriftS * 1000,
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
      if (!this.online(b)) continue;
      await this.setPending({
        key,
        clinicId: b.clinicId,
        condition: 'config_drift',
        deviceId: b.deviceId,
        since: this.iso(),
        meta,
      });
    }
  }

  private async sweep(): Promise<void> {
    const now = this.now();
    try {
      await this.checkDrift();
    } catch (e) {
      this.log.warn({ err: e }, 'configuration drift not checked; tried again at the next sweep');
    }
    for (const p of [...this.pending.values()]) {
      if (p.meta.raised) continue;
      const since = Date.parse(p.since);
      if (now - since < Number(p.meta.graceMs ?? 0)) continue;
      if (p.meta.duringHours && !(await this.isOpen(p.clinicId, now))) continue;
      if (p.condition === 'config_drift' && p.deviceId && !this.online({ deviceId: p.deviceId, online: true }))
        continue;
      await this.raisePending(p);
      const raised = { ...p, meta: { ...p.meta, raised: true } };
      if (this.pending.has(p.key)) {
        this.pending.set(p.key, raised);
        await this.deps.alerts.putPending(raised);
      }
    }
    for (const r of await this.deps.alerts.listRollovers(true)) {
      if (r.backAt && Date.parse(r.backAt) <= now) {
        await this.stopRollover(r.clinicId, 'engine', 'scheduled end').catch((err) =>
          this.log.warn({ err, clinicId: r.clinicId }, 'scheduled rollover back failed'),
        );
      }
    }
  }

  private async raisePending(p: PendingCondition): Promise<void> {
    const s = await this.settingsOf(p.clinicId);
    const name = await this.clinicName(p.clinicId);
    const since = await this.localTime(p.clinicId, Date.parse(p.since));
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
    await this.raise(p.clinicId, p.condition, { severity, text, deviceId: p.deviceId, details: { pending: p.key } });
  }

  // ---------------------------------------------------------------- alerts

  private silenceEnd(s: ClinicAlertSettings, condition: Condition, at: number): number | undefined {
    let end: number | undefined;
    for (const w of s.silences as SilenceWindow[]) {
      const from = Date.parse(w.from);
      const until = Date.parse(w.until);
      if (at < from || at >= until) continue;
      const applies = w.conditions ? w.conditions.includes(condition) : condition !== 'panic';
      if (applies) end = Math.max(end ?? 0, until);
    }
    return end;
  }

  /** Open an alert, or count one more occurrence of the active one. */
  async raise(clinicId: string, condition: Condition, o: RaiseOptions): Promise<RaiseResult> {
    const at = o.at ?? this.now();
    let opened: Promise<void> | undefined;
    const result = await this.locked(`${clinicId}|${condition}`, async (): Promise<RaiseResult> => {
      const { alerts } = this.deps;
      const active = await alerts.getActive(clinicId, condition);
      if (active) {
        const a = (await alerts.addOccurrence(active.id, this.iso(at), o.eventId)) ?? active;
        if ((o.occurrences ?? 1) > 1 && a.occurrences > active.occurrences) {
          for (let i = 1; i < (o.occurrences ?? 1); i++) await alerts.addOccurrence(active.id, this.iso(at));
        }
        return { alert: a, created: false };
      }
      const s = await this.settingsOf(clinicId);
      const silencedUntil = this.silenceEnd(s, condition, this.now());
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
      // From the cursor reader it runs beside (tracked in inFlight): a slow channel must not hold the next events.
      if (this.fromCursor.getStore()) void this.runStep(result.alert, true);
      else await this.runStep(result.alert, true);
    } else if (result.created) {
      void this.arm();
    }
    await opened?.catch((err) => this.log.warn({ err, alertId: result.alert.id }, 'alert history not written'));
    return result;
  }

  private runStep(alert: Alert, fresh = false): Promise<void> {
    const running = this.inFlight.get(alert.id);
    if (running) return running;
    const p = this.doStep(alert, fresh)
      .catch((e) => this.log.error({ err: e, alertId: alert.id }, 'escalation step failed; retried'))
      .finally(() => {
        this.inFlight.delete(alert.id);
        if (this.running && !this.ticking) void this.arm();
      });
    this.inFlight.set(alert.id, p);
    return p;
  }

  /**
   * Run the alert's next step. `fresh`: the alert was just created by this engine with the lease on its
   * first step already held and nothing sent yet, so reading it back, leasing and looking for earlier
   * deliveries are skipped (the panic press path).
   */
  private async doStep(given: Alert, fresh: boolean): Promise<void> {
    const { alerts } = this.deps;
    const alert = fresh ? given : await alerts.getAlert(given.id);
    if (alert?.state !== 'open' || !alert.nextStepAt) return;
    const s = await this.settingsOf(alert.clinicId);
    const policy = s.policies[alert.severity] ?? s.policies.critical;
    if (!policy) return;
    const total = policy.steps.length * policy.repeat;
    if (alert.nextStep >= total) {
      await alerts.updateAlert(alert.id, { nextStepAt: null }, { epoch: alert.epoch, nextStep: alert.nextStep });
      return;
    }
    const now = this.now();
    const leased =
      fresh ||
      (await alerts.claimStep(
        alert.id,
        alert.epoch,
        alert.nextStep,
        this.cfg.instance,
        this.iso(now),
        this.iso(now + this.cfg.leaseS * 1000),
      ));
    if (!leased) return;
    const stepIndex = alert.nextStep % policy.steps.length;
    const step = policy.steps[stepIndex];
    if (!step) return;
    const done = fresh
      ? new Set<string>()
      : new Set((await alerts.listDeliveries(alert.id)).filter((d) => d.status === 'sent').map((d) => d.dedupKey));
    const plan = await this.plan(alert, s, step.to, step.channels);
    await Promise.all(plan.filter((d) => !done.has(d.key)).map((d) => d.send()));
    await alerts.appendLog({
      alertId: alert.id,
      at: this.iso(),
      action: 'step',
      by: this.cfg.instance,
      detail: `step ${stepIndex + 1} of ${policy.steps.length}, round ${Math.floor(alert.nextStep / policy.steps.length) + 1} of ${policy.repeat}: ${step.channels.join(', ')} to ${step.to.join(', ')}; ${plan.length - done.size} notification(s)`,
    });
    const next = alert.nextStep + 1;
    const nextAt = next < total ? this.iso(this.now() + step.waitMin * 60_000) : null;
    const moved = await alerts.updateAlert(
      alert.id,
      { nextStep: next, nextStepAt: nextAt, leaseOwner: null, leaseUntil: null },
      { epoch: alert.epoch, nextStep: alert.nextStep },
    );
    if (moved && next >= total) {
      await alerts.appendLog({
        alertId: alert.id,
        at: this.iso(),
        action: 'exhausted',
        by: 'engine',
        detail: `every step ran ${policy.repeat} time(s)`,
      });
      if (moved.severity === 'notice' && moved.state === 'open') {
        await this.resolve(alert.id, 'engine', 'notice delivered');
      }
    }
  }

  async contactsOf(clinicId: string): Promise<AlertContact[]> {
    const s = await this.settingsOf(clinicId);
    if (s.contacts.length > 0) return s.contacts;
    const clinic = await this.clinic(clinicId);
    return (clinic?.contacts ?? []).map((c) => ({
      name: c.name,
      ...(c.phone ? { phone: c.phone } : {}),
      ...(c.email ? { email: c.email } : {}),
    }));
  }

  private async recipients(clinicId: string, s: ClinicAlertSettings, to: string[]): Promise<AlertContact[]> {
    const contacts = await this.contactsOf(clinicId);
    const byName = new Map(contacts.map((c) => [c.name, c]));
    const out = new Map<string, AlertContact>();
    const add = (name: string) => {
      const c = byName.get(name);
      if (c) out.set(c.name, c);
    };
    for (const t of to) {
      if (t === '*') for (const c of contacts) out.set(c.name, c);
      else if (s.groups[t]) for (const m of s.groups[t] ?? []) add(m);
      else add(t);
    }
    return [...out.values()];
  }

  private async plan(
    alert: Alert,
    s: ClinicAlertSettings,
    to: string[],
    channels: ChannelName[],
  ): Promise<{ key: string; send: () => Promise<void> }[]> {
    const people = await this.recipients(alert.clinicId, s, to);
    const base = `${alert.id}:${alert.epoch}:${alert.nextStep}`;
    const out: { key: string; send: () => Promise<void> }[] = [];
    const clinicName = await this.clinicName(alert.clinicId);
    const note = (who: string, key: string): Notification => this.notification(alert, clinicName, who, key);
    for (const channel of channels) {
      if (channel === 'webhook') {
        const hooks = [...s.webhooks, ...this.cfg.webhooks];
        hooks.forEach((h, i) => {
          const target = `webhook${i + 1}:${new URL(h.url).host}`;
          const key = `${base}:webhook:${target}`;
          out.push({
            key,
            send: () =>
              this.deliver(alert, 'webhook', target, key, (cb) =>
                this.deps.channels.webhook?.send(h, note('webhook', key), cb),
              ),
          });
        });
      } else if (channel === 'sms') {
        for (const p of people) {
          if (!p.phone) continue;
          const phone = p.phone;
          const key = `${base}:sms:${p.name}`;
          out.push({
            key,
            send: () =>
              this.deliver(alert, 'sms', p.name, key, (cb) =>
                this.deps.channels.sms?.send({ to: phone, clinicId: alert.clinicId }, note(p.name, key), cb),
              ),
          });
        }
      } else {
        for (const p of people) {
          if (!p.email) continue;
          const email = p.email;
          const key = `${base}:email:${p.name}`;
          out.push({
            key,
            send: () =>
              this.deliver(alert, 'email', p.name, key, (cb) =>
                this.deps.channels.email?.send(email, note(p.name, key), cb),
              ),
          });
        }
      }
    }
    return out;
  }

  private notification(alert: Alert, clinicName: string, who: string, key: string): Notification {
    const links = this.deps.links;
    const count = alert.occurrences > 1 ? ` (${alert.occurrences} times)` : '';
    return {
      alertId: alert.id,
      dedupKey: key,
      clinicId: alert.clinicId,
      clinicName,
      condition: alert.condition,
      severity: alert.severity,
      state: alert.state,
      text: `${alert.text}${count}`,
      subject: `[${alert.severity}] ${clinicName}: ${alert.condition.replace(/_/g, ' ')} (code ${alert.shortCode})`,
      shortCode: alert.shortCode,
      occurrences: alert.occurrences,
      firstAt: alert.firstAt,
      lastAt: alert.lastAt,
      ackUrl: links ? links.url(alert.id, 'ack', who, this.now(), alert.epoch) : '',
      resolveUrl: links ? links.url(alert.id, 'resolve', who, this.now(), alert.epoch) : '',
      step: alert.nextStep,
      epoch: alert.epoch,
    };
  }

  private async deliver(
    alert: Alert,
    channel: ChannelName,
    target: string,
    key: string,
    send: (cb: OnAttempt) => Promise<unknown> | undefined,
  ): Promise<void> {
    const record = (status: Delivery['status'], attempt: number, error: string | null, detail: string | null) =>
      this.deps.alerts.recordDelivery({
        alertId: alert.id,
        epoch: alert.epoch,
        step: alert.nextStep,
        channel,
        target,
        dedupKey: key,
        attempt,
        status,
        error,
        detail,
        at: this.iso(),
      });
    try {
      const p = send(async (a) => {
        await record(a.ok ? 'sent' : 'failed', a.attempt, a.error ?? null, a.detail ?? null);
      });
      if (p === undefined) await record('skipped', 0, `no ${channel} channel configured`, null);
      else await p;
    } catch (e) {
      await record('failed', 0, describeError(e), null).catch(() => undefined);
    }
  }

  /** Acknowledge: stop escalating; re-opens if not resolved within ackTimeoutMin. Idempotent. */
  /** Acknowledge; with `epoch` (a link's), only that opening of the alert: a link from before a re-open is refused. */
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
    void this.arm();
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
    await this.runStep(updated);
  }

  private async mustGet(alertId: string): Promise<Alert> {
    const a = await this.deps.alerts.getAlert(alertId);
    if (!a) throw new CallboxError(ErrorCode.AlertNotFound, `no alert ${alertId}`);
    return a;
  }

  async silence(clinicId: string, w: SilenceWindow, by: string): Promise<ClinicAlertSettings> {
    if (!(Date.parse(w.until) > Date.parse(w.from))) {
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        `silence window: until (${w.until}) must be after from (${w.from})`,
      );
    }
    const s = await this.settingsOf(clinicId);
    const now = this.now();
    const keep = s.silences.filter((x) => Date.parse(x.until) > now);
    return this.putSettings(clinicId, { ...s, silences: [...keep, w] }, by);
  }

  // ---------------------------------------------------------------- rollover

  private async rolloverNumber(clinicId: string, explicit?: string): Promise<string> {
    if (explicit) return explicit;
    const clinic = await this.clinic(clinicId);
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
  ): Promise<{ deviceId: string; confirmed: boolean; error?: string }[]> {
    const commands = this.deps.commands;
    if (!commands) throw new CallboxError(ErrorCode.Internal, 'the alert engine has no way to command boxes');
    const boxes = (await this.deps.store.listBoxes({ clinicId, claimState: 'approved' })).filter((b) => b.deviceId);
    if (boxes.length === 0) throw new CallboxError(ErrorCode.NotFound, `clinic ${clinicId} has no box`);
    return Promise.all(
      boxes.map(async (b) => {
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
            { timeoutMs: this.cfg.forwardingTimeoutMs },
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
  async startRollover(clinicId: string, o: RolloverOptions): Promise<Rollover> {
    return this.locked(`${clinicId}|rollover-cmd`, async () => {
      const number = await this.rolloverNumber(clinicId, o.number);
      const s = await this.settingsOf(clinicId);
      const boxes = await this.forwarding(clinicId, true, number, o.reason);
      const confirmed = boxes.some((b) => b.confirmed);
      const now = this.now();
      const prev = await this.deps.alerts.getRollover(clinicId);
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
      const name = await this.clinicName(clinicId);
      if (confirmed) {
        const text = `calls for ${name} are rolling over to the answering service (${lastFour(number)}) since ${await this.localTime(clinicId, Date.parse(r.since))} because ${o.reason}`;
        const res = await this.raise(clinicId, 'rollover', {
          severity: s.rules.rollover.severity,
          text,
          details: { number: lastFour(number), by: o.by },
        });
        r.alertId = res.alert.id;
      } else {
        await this.raise(clinicId, 'rollover', {
          severity: 'critical',
          text: `calls for ${name} could NOT be rolled over to the answering service (${lastFour(number)}): no box confirmed the forwarding (${boxes.map((b) => b.error).join('; ')}).`,
        });
      }
      await this.deps.alerts.putRollover(r);
      this.log.info({ clinicId, by: o.by, confirmed, boxes: boxes.length }, 'rollover on');
      return r;
    });
  }

  /** Switch forwarding back off; the rollover ends once every box confirms. */
  async stopRollover(clinicId: string, by: string, why = 'by hand'): Promise<Rollover> {
    return this.locked(`${clinicId}|rollover-cmd`, async () => {
      const prev = await this.deps.alerts.getRollover(clinicId);
      if (!prev) throw new CallboxError(ErrorCode.NotFound, `clinic ${clinicId} has no rollover`);
      const boxes = await this.forwarding(clinicId, false, undefined, `back: ${why}`);
      const allOff = boxes.every((b) => b.confirmed);
      const r: Rollover = allOff
        ? { ...prev, active: false, boxes, endedAt: this.iso(), endedBy: by }
        : { ...prev, boxes };
      await this.deps.alerts.putRollover(r);
      const active = await this.deps.alerts.getActive(clinicId, 'rollover');
      if (allOff && active) await this.resolve(active.id, by, `calls are back at the clinic (${why})`);
      this.log.info({ clinicId, by, confirmed: allOff }, 'rollover off');
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
