/**
 * The rules: what a stored event or a telemetry sample means for a clinic.
 * panic.pressed -> panic (cancelled at the box -> resolved); call.ended ->
 * slow_answer, voicemail_failed, missed_after_hours, missed_calls (N in T
 * minutes during hours, optionally rolling over); call.answered by a person
 * -> missed_calls resolved and an `answered` rollover ended; modem.state ->
 * pending no_signal / sim_problem / registration_denied; voicemail.recorded
 * -> pending voicemail_unheard; sms.received -> an alert reply; telemetry ->
 * outbox_backlog. Grace-time conditions go to PendingConditions.
 */
import type { AnyEvent, EventOf } from '../../shared/contract/events.js';
import type { Logger } from '../../shared/log.js';
import type { FleetBusEvents } from '../bus.js';
import type { ClinicDirectory, Clock } from './clinics.js';
import { MODEM_CONDITIONS, type PendingConditions } from './conditions.js';
import type { ClinicAlertSettings, Condition } from './config.js';
import { type AlertLifecycle, isoOf, type KeyedLock } from './lifecycle.js';
import type { RolloverService } from './rollover.js';
import { applySmsReply, lastFour } from './sms-reply.js';
import type { AlertStore } from './types.js';

const MISSED_OUTCOMES = new Set(['missed', 'voicemail', 'voicemail_failed', 'rolled_over']);

/** What the triage of one voicemail found, for its alert. */
export interface VoicemailAttention {
  clinicId: string;
  deviceId: string;
  voicemailId: string;
  /** When the message was left (ms). */
  at: number;
  /** "…1234"; null: withheld; undefined: the box has not reported the call yet. */
  callerLastFour: string | null | undefined;
  /** Spotted urgent phrases. */
  phrases: string[];
  stressScore: number | null;
  /** Why it is urgent, for people. */
  reasons: string[];
  /** Triage could not run: why. */
  unavailable?: string;
  /** Where the message plays (the fleet's public URL). */
  listenUrl: string;
}

export interface RulesDeps {
  alerts: AlertStore;
  directory: ClinicDirectory;
  pending: PendingConditions;
  rollover: RolloverService;
  lifecycle: AlertLifecycle;
  lock: KeyedLock;
  clock: Clock;
  log: Logger;
}

export class Rules {
  /**
   * Outbox depth trend per box. In memory, and safe to lose: every fleet
   * worker sees every sample; after a restart the trend is counted anew.
   * (The missed-calls window is in the store: alert_missed_calls.)
   */
  private readonly outbox = new Map<string, { depth: number; rising: number }>();

  constructor(private readonly deps: RulesDeps) {}

  private now(): number {
    return this.deps.clock.now();
  }

  /** Apply one stored event. */
  async onEvent(raw: AnyEvent): Promise<void> {
    const { directory, alerts, lifecycle } = this.deps;
    const clinicId = await directory.clinicOfDevice(raw.deviceId);
    if (!clinicId) return;
    const at = Date.parse(raw.at);
    const atMs = Number.isNaN(at) ? this.now() : Math.min(at, this.now());
    switch (raw.type) {
      case 'panic.pressed':
        return this.onPanic(clinicId, raw as EventOf<'panic.pressed'>, atMs);
      case 'panic.cancelled': {
        const active = await alerts.getActive(clinicId, 'panic');
        if (active && active.details.panicId === raw.body.panicId) {
          await lifecycle.resolve(active.id, 'box:cancelled', 'cancelled at the box');
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
        const s = await directory.settingsOf(clinicId);
        await this.deps.pending.set({
          key: `voicemail:${raw.body.voicemailId}`,
          clinicId,
          condition: 'voicemail_unheard',
          deviceId: raw.deviceId,
          since: isoOf(atMs),
          meta: { graceMs: s.rules.voicemail.unheardMin * 60_000, voicemailId: raw.body.voicemailId },
        });
        return;
      }
      case 'sms.received':
        await applySmsReply(this.deps, clinicId, raw.body.from, raw.body.text);
        return;
      default:
        return;
    }
  }

  private async onPanic(clinicId: string, e: EventOf<'panic.pressed'>, at: number): Promise<void> {
    const { directory } = this.deps;
    const s = await directory.settingsOf(clinicId);
    const name = await directory.clinicName(clinicId);
    const when = await directory.localTime(clinicId, at);
    await this.deps.lifecycle.raise(clinicId, 'panic', {
      severity: s.rules.panic.severity,
      text: `PANIC at ${name}: the panic button (${e.body.source}) was pressed at ${when}.`,
      deviceId: e.deviceId,
      details: { panicId: e.body.panicId, source: e.body.source },
      at,
      eventId: e.id,
    });
  }

  private async onCallEnded(clinicId: string, e: EventOf<'call.ended'>, at: number): Promise<void> {
    const { directory, lifecycle } = this.deps;
    const s = await directory.settingsOf(clinicId);
    const name = await directory.clinicName(clinicId);
    const b = e.body;
    if (b.timeToAnswerMs !== null && b.outcome === 'answered' && b.timeToAnswerMs > s.rules.slowAnswer.targetS * 1000) {
      await lifecycle.raise(clinicId, 'slow_answer', {
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
      await lifecycle.raise(clinicId, 'missed_after_hours', {
        severity: s.rules.missedAfterHours.severity,
        text: `${name} missed a call after hours at ${await directory.localTime(clinicId, at)}.`,
        deviceId: e.deviceId,
        at,
        eventId: e.id,
      });
      return;
    }
    // One decision at a time per clinic: events of a burst arrive together and must count once each.
    await this.deps.lock.run(`missed:${clinicId}`, () => this.countMissed(clinicId, e, at, s, name));
  }

  /**
   * A voicemail triaged urgent, or one that could not be triaged (fleet/triage): an alert that escalates like a
   * panic press, opened or counted once per voicemail. The caller's number is not in the text (kept in the
   * alerts table and sent by SMS, email and webhook): its last four digits are, and the link plays the message.
   */
  async onVoicemailAttention(v: VoicemailAttention): Promise<string> {
    const { directory, lifecycle } = this.deps;
    const s = await directory.settingsOf(v.clinicId);
    const name = await directory.clinicName(v.clinicId);
    const when = await directory.localTime(v.clinicId, v.at);
    const caller =
      v.callerLastFour === undefined
        ? 'a caller the box has not reported yet'
        : v.callerLastFour === null
          ? 'a caller who withheld the number'
          : `the caller ${v.callerLastFour}`;
    const why = v.unavailable
      ? `could NOT be triaged (${v.unavailable}), so nobody knows whether it is urgent`
      : `sounds URGENT: ${v.reasons.slice(0, 3).join('; ')}`;
    const r = await lifecycle.raise(v.clinicId, 'voicemail_urgent', {
      severity: s.rules.voicemailUrgent.severity,
      text: `A voicemail left at ${name} at ${when} by ${caller} ${why}. Listen to it now: ${v.listenUrl} (the number to call back is with the message).`,
      deviceId: v.deviceId,
      details: {
        voicemailId: v.voicemailId,
        listenUrl: v.listenUrl,
        phrases: v.phrases,
        stressScore: v.stressScore,
        unavailable: v.unavailable ?? null,
      },
      at: v.at,
      eventId: `voicemail-triage:${v.voicemailId}`,
    });
    return r.alert.id;
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
    await this.deps.lifecycle.raise(clinicId, 'voicemail_failed', {
      severity: s.rules.voicemailFailed.severity,
      text: `A voicemail left at ${name} at ${await this.deps.directory.localTime(clinicId, at)} was NOT recorded (${b.voicemailError ?? 'unknown reason'}): ${caller} left a message nobody can hear. Call them back; the box's voicemail recording needs attention.`,
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
    const { alerts, lifecycle } = this.deps;
    const rule = s.rules.missedCalls;
    const windowMs = rule.windowMin * 60_000;
    // In the store, once per event: a worker that takes over the event cursor goes on counting the same window.
    const list = (await alerts.addMissedCall(clinicId, e.id, isoOf(at), isoOf(this.now() - windowMs))).map((t) =>
      Date.parse(t),
    );
    const active = await alerts.getActive(clinicId, 'missed_calls');
    if (active) {
      await lifecycle.raise(clinicId, 'missed_calls', { text: active.text, at, eventId: e.id });
      return;
    }
    if (list.length < rule.count) return;
    const r = await lifecycle.raise(clinicId, 'missed_calls', {
      severity: rule.severity,
      text: `${name} did not answer ${list.length} calls in ${rule.windowMin} minutes (since ${await this.deps.directory.localTime(clinicId, list[0] ?? at)}).`,
      deviceId: e.deviceId,
      occurrences: list.length,
      at,
      eventId: e.id,
    });
    if (r.created && rule.autoRollover) {
      await this.deps.rollover
        .start(clinicId, {
          by: 'engine',
          reason: `${list.length} calls were not answered in ${rule.windowMin} minutes`,
        })
        .catch((err) => this.deps.log.warn({ err, clinicId }, 'automatic rollover failed'));
    }
  }

  private async onAnswered(clinicId: string, e: EventOf<'call.answered'>): Promise<void> {
    if (e.body.by !== 'handset' && e.body.by !== 'button') return;
    await this.deps.alerts.clearMissedCalls(clinicId);
    const active = await this.deps.alerts.getActive(clinicId, 'missed_calls');
    if (active) await this.deps.lifecycle.resolve(active.id, 'engine', 'the clinic answered a call');
    await this.deps.rollover.onAnswered(clinicId);
  }

  private async onModem(clinicId: string, e: EventOf<'modem.state'>, at: number): Promise<void> {
    const { pending } = this.deps;
    const condition = MODEM_CONDITIONS[e.body.state];
    const all: Condition[] = ['no_signal', 'sim_problem', 'registration_denied'];
    for (const c of all) {
      if (c === condition) continue;
      if (e.body.state === 'ready' || condition) await pending.clear(`${c}:${e.deviceId}`, 'the modem recovered');
    }
    if (!condition) return;
    const s = await this.deps.directory.settingsOf(clinicId);
    const key = `${condition}:${e.deviceId}`;
    if (pending.has(key)) return;
    await pending.set({
      key,
      clinicId,
      condition,
      deviceId: e.deviceId,
      since: isoOf(at),
      meta: { graceMs: s.rules.modem.afterMin * 60_000, state: e.body.state, detail: e.body.detail ?? null },
    });
  }

  /** A telemetry sample (fleet bus): an outbox that keeps growing is not getting its events out. */
  async onTelemetry({ deviceId, telemetry }: FleetBusEvents['telemetry']): Promise<void> {
    const { alerts, directory, lifecycle } = this.deps;
    // The trend is updated before any await, so samples arriving together are counted in order.
    const prev = this.outbox.get(deviceId);
    const depth = telemetry.outboxDepth;
    const rising = prev && depth > prev.depth ? prev.rising + 1 : 0;
    this.outbox.set(deviceId, { depth, rising });
    const clinicId = await directory.clinicOfDevice(deviceId);
    if (!clinicId) return;
    const s = await directory.settingsOf(clinicId);
    const rule = s.rules.outbox;
    if (rising + 1 >= rule.growingSamples && depth >= rule.minDepth) {
      const active = await alerts.getActive(clinicId, 'outbox_backlog');
      if (!active) {
        await lifecycle.raise(clinicId, 'outbox_backlog', {
          severity: rule.severity,
          text: `The box ${deviceId} of ${await directory.clinicName(clinicId)} is not getting its events out: ${depth} are waiting and the number keeps growing.`,
          deviceId,
          details: { depth },
        });
      }
    } else if (prev && depth < prev.depth) {
      const active = await alerts.getActive(clinicId, 'outbox_backlog');
      if (active && active.deviceId === deviceId)
        await lifecycle.resolve(active.id, 'engine', 'the outbox is draining');
    }
  }
}
