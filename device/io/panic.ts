/**
 * The panic flow, from a confirmed press to a person reached:
 *
 *   confirm ──record panic.pressed (outbox first)──▶ pending (cancel window: a press cancels)
 *      │ window over                                     │ press → record panic.cancelled, nothing else is sent
 *      ▼
 *   sent ── fleet acks (panic.ack command) ──▶ acknowledged (record panic.acknowledged; LED steady)
 *      │ no ack after ackTimeoutS, or the link is down
 *      ▼
 *   SMS rounds through the modem to every escalation contact (record panic.sms per attempt)
 *      until at least one SMS is accepted by the network (→ escalated), retrying with backoff;
 *      an ack stops the rounds.
 *
 * A confirm while a panic waits (cancel window, or no ack and no SMS yet, for
 * under 10 minutes) is the same incident and ignored; once a panic was
 * escalated by SMS or acknowledged, a new confirm is a new panic.
 *
 * Every step is an event in the outbox, so the fleet learns the whole history
 * when the link returns. The controller never throws into the button: a
 * failed record is logged and the flow continues (the person must be reached).
 * Events are recorded strictly in order through one promise chain.
 */
import { EventEmitter } from 'node:events';
import { background } from '../../shared/background.js';
import { backoffDelay } from '../../shared/backoff.js';
import type { EventBody, EventType } from '../../shared/contract/events.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { describeError } from '../../shared/errors.js';
import { newEventId } from '../../shared/ids.js';
import { getLogger } from '../../shared/log.js';
import type { EventSink } from '../events.js';
import type { Modem } from '../modem/types.js';
import type { PanicIndicatorState } from './indicators.js';

const log = getLogger('device:io:panic');

export type PanicPhase = 'pending' | 'sent' | 'escalated' | 'acknowledged' | 'cancelled';

export interface PanicSnapshot {
  panicId: string;
  source: string;
  pressedAt: Date;
  phase: PanicPhase;
  smsAccepted: string[];
  smsAttempts: number;
}

export interface PanicControllerOptions {
  sink: EventSink;
  /** The modem for the SMS fallback (null while there is none). */
  modem: () => Pick<Modem, 'sendSms'> | null;
  /** The current remote settings (panic and clinic sections are read at each step). */
  settings: () => Pick<DeviceSettings, 'panic' | 'clinic'>;
  /** How the box is named in the SMS (serial or device id). */
  boxName: string;
  smsRetryMinS: number;
  smsRetryMaxS: number;
  /** How long an acknowledgement stays on the LED. */
  ackShowMs?: number;
}

export interface PanicControllerEvents {
  /** The panic LED state changed. */
  indicator: [state: PanicIndicatorState];
  /** A button fault appeared or cleared. */
  buttonFault: [faulty: boolean];
  phase: [snapshot: PanicSnapshot];
}

/** A confirm within this time of an unanswered, unescalated panic is the same incident. */
export const SAME_INCIDENT_MS = 10 * 60_000;

type Active = PanicSnapshot & { timers: Set<NodeJS.Timeout>; smsRunning: boolean; smsRound: number };

/**
 * Formats the SMS: clinic, box, time of the press in the clinic's time zone.
 * Kept short so that it fits one SMS (160 GSM-7 characters) for clinic names
 * up to about 60 characters; longer ones are split by the modem driver.
 */
export function panicSmsText(clinic: { name: string; timezone: string }, box: string, at: Date): string {
  const when = new Intl.DateTimeFormat('en-GB', {
    timeZone: clinic.timezone,
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).format(at);
  return `PANIC at ${clinic.name}: panic button of box ${box} pressed ${when}. Not acknowledged - check on the clinic now.`;
}

export class PanicController extends EventEmitter<PanicControllerEvents> {
  private active: Active | null = null;
  private readonly recent = new Map<string, PanicPhase>();
  private chain: Promise<unknown> = Promise.resolve();
  private linkUp = false;
  private readonly faulty = new Set<string>();
  private ackShowTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly opts: PanicControllerOptions) {
    super();
  }

  get current(): PanicSnapshot | null {
    if (!this.active) return null;
    const { timers: _t, smsRunning: _s, smsRound: _r, ...snap } = this.active;
    return { ...snap, smsAccepted: [...snap.smsAccepted] };
  }

  /** Resolves when every event queued so far has been recorded (tests, shutdown). */
  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }

  /** Record an event in order; failures are logged, never thrown. */
  /** Record in order; never rejects (a failure is logged here), so callers need not await it. */
  private record<K extends EventType>(type: K, body: EventBody<K>, at?: Date): Promise<void> {
    const p = this.chain.then(() =>
      this.opts.sink.record(type, body, at).then(
        () => undefined,
        (e) => log.error({ err: e, type }, `recording ${type} failed: ${describeError(e)}`),
      ),
    );
    this.chain = p;
    return p;
  }

  /** The link to the fleet went up or down. Down during a sent panic starts the SMS fallback at once. */
  setLink(up: boolean): void {
    this.linkUp = up;
    const a = this.active;
    if (!up && a && a.phase === 'sent') this.startSms(a);
  }

  /** A button confirmed a panic (hold or double press). */
  confirm(source: string, how: string): void {
    if (this.stopped) return;
    const a0 = this.active;
    // The same incident: a panic still in its cancel window or waiting for its first acknowledgement or SMS,
    // for less than SAME_INCIDENT_MS. A panic already escalated by SMS, or older, does not swallow a new one.
    if (
      a0 &&
      (a0.phase === 'pending' || a0.phase === 'sent') &&
      Date.now() - a0.pressedAt.getTime() < SAME_INCIDENT_MS
    ) {
      log.info({ source, panicId: a0.panicId }, 'panic confirmed again while one is active: same incident');
      return;
    }
    this.clearActive();
    const panicId = newEventId();
    const pressedAt = new Date();
    const a: Active = {
      panicId,
      source,
      pressedAt,
      phase: 'pending',
      smsAccepted: [],
      smsAttempts: 0,
      timers: new Set(),
      smsRunning: false,
      smsRound: 0,
    };
    this.active = a;
    log.warn({ panicId, source, how }, 'panic confirmed');
    void this.record('panic.pressed', { panicId, source }, pressedAt);
    this.setPhase(a, 'pending');

    const { cancelWindowMs, ackTimeoutS } = this.opts.settings().panic;
    this.after(a, cancelWindowMs, () => {
      if (a.phase !== 'pending') return;
      this.setPhase(a, 'sent');
      if (!this.linkUp) this.startSms(a);
    });
    this.after(a, Math.max(ackTimeoutS * 1000, cancelWindowMs), () => {
      if (a.phase === 'sent') {
        log.warn({ panicId }, `no acknowledgement within ${ackTimeoutS} s: SMS fallback`);
        this.startSms(a);
      }
    });
  }

  /** Any debounced press: during the cancel window it cancels the panic. Returns whether it did. */
  press(source: string): boolean {
    const a = this.active;
    if (a === null) return false;
    if (a.phase !== 'pending') return false;
    log.warn({ panicId: a.panicId, source }, 'panic cancelled');
    this.setPhase(a, 'cancelled');
    this.clearTimers(a);
    void this.record('panic.cancelled', { panicId: a.panicId });
    return true;
  }

  /** A button reported a fault (stuck): one event per fault, not per second. */
  fault(source: string, fault: string): void {
    if (!this.faulty.has(source)) {
      this.faulty.add(source);
      if (this.faulty.size === 1) this.emit('buttonFault', true);
    }
    log.error({ source, fault }, 'panic button fault');
    void this.record('panic.fault', { source, fault });
  }

  recovered(source: string): void {
    if (this.faulty.delete(source) && this.faulty.size === 0) this.emit('buttonFault', false);
    log.info({ source }, 'panic button released after a fault');
  }

  /**
   * The handler for the 'panic.ack' device command (register it with the
   * box's RPC responder). Idempotent: a repeated ack answers true again.
   */
  async handleAck(params: { panicId: string; by: string }): Promise<{ acknowledged: boolean }> {
    const a = this.active;
    if (!a || a.panicId !== params.panicId) {
      const phase = this.recent.get(params.panicId);
      return { acknowledged: phase === 'acknowledged' };
    }
    if (a.phase === 'cancelled') return { acknowledged: false };
    if (a.phase === 'acknowledged') return { acknowledged: true };
    this.clearTimers(a);
    this.setPhase(a, 'acknowledged');
    log.info({ panicId: a.panicId, by: params.by }, 'panic acknowledged by the fleet');
    await this.record('panic.acknowledged', { panicId: a.panicId, by: params.by });
    if (this.ackShowTimer) clearTimeout(this.ackShowTimer);
    this.ackShowTimer = setTimeout(
      () => {
        this.ackShowTimer = null;
        if (this.active === a) {
          this.active = null;
          this.emit('indicator', 'idle');
        }
      },
      this.opts.ackShowMs ?? 5 * 60_000,
    );
    return { acknowledged: true };
  }

  private setPhase(a: Active, phase: PanicPhase): void {
    a.phase = phase;
    this.recent.set(a.panicId, phase);
    if (this.recent.size > 50) this.recent.delete(this.recent.keys().next().value as string);
    this.emit('indicator', phase === 'cancelled' ? 'idle' : phase);
    const snap = this.current;
    if (snap) this.emit('phase', snap);
  }

  private after(a: Active, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      a.timers.delete(t);
      fn();
    }, ms);
    a.timers.add(t);
  }

  private clearTimers(a: Active): void {
    for (const t of a.timers) clearTimeout(t);
    a.timers.clear();
  }

  private clearActive(): void {
    if (this.active) this.clearTimers(this.active);
    if (this.ackShowTimer) clearTimeout(this.ackShowTimer);
    this.ackShowTimer = null;
    this.active = null;
  }

  private smsGoing(a: Active): boolean {
    return !this.stopped && this.active === a && (a.phase === 'sent' || a.phase === 'escalated');
  }

  private startSms(a: Active): void {
    if (a.smsRunning || a.smsAccepted.length > 0) return;
    a.smsRunning = true;
    this.runSmsRound(a);
  }

  /**
   * A round that fails unexpectedly must not leave the fallback stuck as "running": it is recorded as a
   * panic.fault (the fleet hears of it) and the next trigger (link down, ack timeout) starts it again.
   */
  private runSmsRound(a: Active): void {
    background(this.smsRound(a), log, 'panic SMS fallback', (e) => {
      a.smsRunning = false;
      return this.record('panic.fault', {
        source: 'sms',
        fault: `SMS fallback failed: ${describeError(e)}`.slice(0, 200),
      });
    });
  }

  private async smsRound(a: Active): Promise<void> {
    const settings = this.opts.settings();
    const contacts = settings.panic.contacts;
    a.smsRound++;
    if (contacts.length === 0) {
      if (a.smsRound === 1)
        void this.record('panic.fault', { source: 'sms', fault: 'no escalation contacts configured' });
      a.smsRunning = false;
      return;
    }
    const text = panicSmsText(settings.clinic, this.opts.boxName, a.pressedAt);
    for (const to of contacts) {
      if (!this.smsGoing(a)) break;
      if (a.smsAccepted.includes(to)) continue;
      a.smsAttempts++;
      const attempt = a.smsRound;
      const modem = this.opts.modem();
      try {
        if (!modem) throw new Error('no modem');
        await modem.sendSms(to, text);
        a.smsAccepted.push(to);
        log.warn({ panicId: a.panicId, to, attempt }, 'panic SMS accepted by the network');
        void this.record('panic.sms', { panicId: a.panicId, to, status: 'sent', attempt });
      } catch (e) {
        log.error({ panicId: a.panicId, to, attempt, err: e }, 'panic SMS failed');
        void this.record('panic.sms', { panicId: a.panicId, to, status: 'failed', attempt, reason: describeError(e) });
      }
    }
    if (!this.smsGoing(a)) {
      a.smsRunning = false;
      return;
    }
    if (a.smsAccepted.length > 0) {
      a.smsRunning = false;
      if (a.phase === 'sent') this.setPhase(a, 'escalated');
      return;
    }
    const waitS = backoffDelay(a.smsRound - 1, { initial: this.opts.smsRetryMinS, max: this.opts.smsRetryMaxS });
    log.warn({ panicId: a.panicId, round: a.smsRound, waitS }, 'no panic SMS accepted yet: retrying');
    this.after(a, waitS * 1000, () => this.runSmsRound(a));
  }

  stop(): void {
    this.stopped = true;
    this.clearActive();
  }
}

/** Wire a button's gestures to the controller (a press that cancels cannot also confirm a new panic). */
export function attachPanicButton(
  button: {
    source: string;
    on(e: 'press' | 'release' | 'recovered', f: () => void): unknown;
    on(e: 'confirm', f: (how: 'hold' | 'double') => void): unknown;
    on(e: 'fault', f: (fault: string) => void): unknown;
  },
  controller: PanicController,
): void {
  let cancelled = false;
  button.on('press', () => {
    cancelled = controller.press(button.source);
  });
  button.on('release', () => {
    cancelled = false;
  });
  button.on('confirm', (how) => {
    if (!cancelled) controller.confirm(button.source, how);
  });
  button.on('fault', (fault) => controller.fault(button.source, fault));
  button.on('recovered', () => controller.recovered(button.source));
}
