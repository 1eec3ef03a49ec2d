/**
 * The CallManager: every call tracked from its first ring to its outcome.
 *
 * Inputs: the modem's typed events (ring, calls = the AT+CLCC list, which
 * is the truth, callEnded, state), the handset/button (answer, hangUp),
 * ring timers, and fleet commands (forwarding.set / forwarding.query).
 * Outputs: modem commands (answer, AT+CTFR deflect, hang up, SMS), call.*
 * and forwarding.state events through the EventSink, a snapshot for the
 * indicators ('change'), and the onVoicemail hook for the recorder.
 *
 * Every input is handled one at a time on a queue, so transitions never
 * interleave. Each call's minimal record is kept in a CallStore so that
 * after a restart the calls still listed by AT+CLCC are resumed (no second
 * call.incoming) and those gone are ended (no lost call.ended).
 *
 * Lifecycle of a call (phase):
 *   ringing --answer by person / network active--> answered --gone--> ended(answered)
 *   ringing --ring timeout, voicemail mode--> voicemail (box answered) --gone--> ended(voicemail, or
 *     voicemail_failed when the recorder says the message was not kept)
 *   ringing --ring timeout, rollover mode--> rolling_over (AT+CTFR) --> rolled_over --gone--> ended(rolled_over)
 *   ringing --gone--> ended(missed | abandoned | rolled_over when the network's no-reply forwarding took it)
 * A call arriving while another is answered is tracked as waiting (call waiting).
 *
 * Event order per call: call.incoming, then call.answered or call.rolled_over,
 * then call.ended (with all figures), then call.followup_sms when one is sent.
 * Durability: a new call is saved before call.incoming is recorded (its id
 * survives a crash); later transitions are recorded before they are saved,
 * so a crash in between repeats an event (the fleet applies call events
 * once per call id and type) rather than losing it.
 */
import { EventEmitter } from 'node:events';
import type { ParamsOf, ResultOf } from '../../shared/contract/rpc.js';
import { DEVICE_COMMANDS } from '../../shared/contract/rpc.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { newEventId } from '../../shared/ids.js';
import { getLogger, type Logger } from '../../shared/log.js';
import type { Handlers } from '../../shared/rpc.js';
import { validate } from '../../shared/validate.js';
import type { EventSink } from '../events.js';
import type { CallInfo, Modem, ModemEventMap, ModemState } from '../modem/types.js';
import { GREETING_MAX_MS } from '../voicemail/greeting.js';
import { type Clock, systemClock } from './clock.js';
import { callerOf, endFigures, followUpEligibility, HOUR_MS, sameNumber } from './figures.js';
import { FORWARDING_REASONS, ForwardingController, type ForwardingState } from './forwarding.js';
import { type CallMode, decideCall, type GreetingSituation, greetingSituation } from './hours.js';
import { type AnsweredBy, type CallOutcome, type CallRecord, type CallStore, MemoryCallStore } from './store.js';

/**
 * Safety margin after voicemail.maxLengthS before the box hangs up a voicemail call itself: the
 * greeting (at most GREETING_MAX_MS) plays before the recording's maxLengthS starts, plus 10 s. The
 * recorder normally ends the call first (at its maximum or on trailing silence).
 */
const VOICEMAIL_HANGUP_MARGIN_MS = GREETING_MAX_MS + 10_000;

export interface VoicemailCall {
  callId: string;
  number: string | null;
  /** Longest recording wanted (settings.voicemail.maxLengthS) in ms. */
  maxLengthMs: number;
  /** Which greeting the caller hears (hours.ts greetingSituation; absent: after hours). */
  situation?: GreetingSituation;
}

/**
 * How the recording of a call answered for voicemail ended. `abandoned`: the caller hung up during
 * the greeting, before recording began (call outcome abandoned: no message was lost).
 */
export type VoicemailResult = { stored: true } | { stored: false; reason: string; abandoned?: boolean };

/** How long the end of a voicemail call waits for the recorder to say whether the message was kept. */
export const VOICEMAIL_RESULT_WAIT_MS = 30_000;

export interface CallManagerOptions {
  modem: Modem;
  sink: EventSink;
  /** The settings in force now (read at each decision, so applied settings take effect at once). */
  settings: () => DeviceSettings;
  /** Where call records live across restarts; default in memory (not durable). The owner closes it. */
  store?: CallStore;
  clock?: Clock;
  /** Id for a new call; default UUIDv7. */
  newCallId?: () => string;
  /** The box answered a call for voicemail: the recorder (device/audio) plugs in here. */
  onVoicemail?: (call: VoicemailCall) => void;
  /**
   * A call answered for voicemail ended: stop its recording if it still runs and say whether the
   * message was kept (a call with no recording, e.g. after a restart, was not). Without it the
   * outcome is "voicemail" unchecked.
   */
  voicemailResult?: (callId: string) => Promise<VoicemailResult>;
  /** Register conditional forwarding at start (provisioning); default true. */
  provisionForwarding?: boolean;
  /** A call ended (after its call.ended is recorded): the survey (device/calls/survey.ts) plugs in here. */
  onEnded?: (call: Pick<CallRecord, 'callId' | 'number' | 'withheld'>, outcome: CallOutcome) => void;
  log?: Logger;
}

export interface CallView {
  callId: string;
  phase: CallRecord['phase'];
  index: number | null;
  rings: number;
  waiting: boolean;
  withheld: boolean;
}

/** What the indicators show. */
export interface CallsSnapshot {
  /** A call is ringing at the desk (not waiting, not yet answered or rolled over). */
  ringing: boolean;
  /** A second call is waiting while one is answered. */
  waiting: boolean;
  /** A person is on a call (answered, or held). */
  inCall: boolean;
  /** The box is taking a voicemail. */
  inVoicemail: boolean;
  /** Unanswered calls (missed or abandoned) since the last acknowledgeMissed(). */
  missedCount: number;
  /** Unconditional forwarding as last read back from the network (null: never read). */
  forwardingOn: boolean | null;
  calls: CallView[];
}

export interface CallManagerEvents {
  change: [snapshot: CallsSnapshot];
}

interface LiveCall extends CallRecord {
  mode: CallMode;
  ringTimer: unknown;
  lostTimer: unknown;
  voicemailTimer: unknown;
  /** Who asked to answer (set before ATA, so a CLCC 'active' seen first is attributed right). */
  pendingAnswer: AnsweredBy | null;
  /** The AT+CTFR in flight: resolves true when the modem accepted it. */
  deflecting: Promise<boolean> | null;
}

/** How long to wait before trying unconfirmed network forwarding again (1 minute). */
export const FORWARDING_RETRY_MS = 60_000;

export class CallManager extends EventEmitter<CallManagerEvents> {
  private readonly modem: Modem;
  private readonly sink: EventSink;
  private readonly settings: () => DeviceSettings;
  private readonly store: CallStore;
  private readonly clock: Clock;
  private readonly newCallId: () => string;
  private readonly onVoicemail: ((call: VoicemailCall) => void) | undefined;
  private readonly voicemailResult: ((callId: string) => Promise<VoicemailResult>) | undefined;
  private readonly log: Logger;
  private readonly provisionOnStart: boolean;
  private readonly onEnded: CallManagerOptions['onEnded'];
  readonly forwarding: ForwardingController;

  private readonly live = new Map<string, LiveCall>();
  private queue: Promise<void> = Promise.resolve();
  private readonly background = new Set<Promise<unknown>>();
  private started = false;
  private missed = 0;
  /** AT+CLCC lists are numbered when they arrive; one older than the last applied is stale and skipped. */
  private listSeq = 0;
  private appliedSeq = 0;
  /**
   * Calls that just ended, by index: a pushed list still showing one (a
   * reply read before the end was reported) is checked with a fresh AT+CLCC
   * before it is believed to be a new call. Cleared by any fresh list.
   */
  private readonly tombstones = new Map<number, { number: string | null; at: number }>();
  private lastRolloverKey: string | null = null;
  private provisionPending = false;
  private forwardingRetry: unknown = null;
  private readonly modemListeners: { [K in keyof ModemEventMap]?: (...args: ModemEventMap[K]) => void } = {};

  constructor(opts: CallManagerOptions) {
    super();
    this.modem = opts.modem;
    this.sink = opts.sink;
    this.settings = opts.settings;
    this.store = opts.store ?? new MemoryCallStore();
    this.clock = opts.clock ?? systemClock;
    this.newCallId = opts.newCallId ?? newEventId;
    this.onVoicemail = opts.onVoicemail;
    this.voicemailResult = opts.voicemailResult;
    this.log = opts.log ?? getLogger('device:calls');
    this.provisionOnStart = opts.provisionForwarding ?? true;
    this.onEnded = opts.onEnded;
    this.forwarding = new ForwardingController(this.modem, this.sink, this.log);
  }

  // ---- lifecycle ---------------------------------------------------------------

  /**
   * Listen to the modem, resume calls from the store against AT+CLCC, and
   * (unless disabled) register conditional forwarding in the background,
   * as soon as the modem is ready. The modem is started by its owner; the
   * CallManager may start before or after it.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.modemListeners.ring = (info) => this.enqueue('ring', () => this.onRing(info));
    this.modemListeners.calls = (calls) => {
      const seq = ++this.listSeq;
      void this.enqueue('calls', () => this.reconcile(calls, false, seq));
    };
    this.modemListeners.callEnded = (info) => this.enqueue('callEnded', () => this.onCallEnded(info));
    this.modemListeners.state = (state: ModemState) => {
      if (state !== 'ready') return;
      void this.enqueue('modem ready', async () => void (await this.refresh()));
      if (this.provisionPending) {
        this.provisionPending = false;
        this.track(this.provisionForwarding());
      }
    };
    for (const [k, fn] of Object.entries(this.modemListeners)) this.modem.on(k as 'ring', fn as () => void);

    await this.enqueue('restore', async () => {
      for (const rec of await this.store.openCalls()) {
        this.live.set(rec.callId, {
          ...rec,
          mode: this.decide(rec.startedAt).mode,
          ringTimer: null,
          lostTimer: null,
          voicemailTimer: null,
          pendingAnswer: null,
          deflecting: null,
        });
      }
      if (this.live.size) this.log.info({ calls: this.live.size }, 'resuming calls open before the restart');
      for (const c of this.live.values()) {
        if (c.phase === 'ringing') this.armRingTimer(c);
        if (c.phase === 'voicemail') this.armVoicemailLimit(c);
      }
      if (this.modem.state === 'ready') await this.refresh();
    });
    const s = this.settings();
    const week = 7 * 24 * HOUR_MS;
    const keep = Math.max(s.calls.repeatCallerWindowH, s.followUpSms.windowH) * HOUR_MS;
    this.track(this.store.prune(this.clock.now() - Math.max(keep, week)));
    if (this.provisionOnStart) {
      // Forwarding lives at the network: register it once the modem can talk to it.
      if (this.modem.state === 'ready') this.track(this.provisionForwarding());
      else this.provisionPending = true;
    }
  }

  /** Stop listening and clear timers; waits for work in progress. Call records stay in the store. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const [k, fn] of Object.entries(this.modemListeners)) this.modem.off(k as 'ring', fn as () => void);
    if (this.forwardingRetry !== null) {
      this.clock.clearTimeout(this.forwardingRetry);
      this.forwardingRetry = null;
    }
    // Drain first (queued steps may arm timers), then clear every timer; late timer callbacks are no-ops.
    await this.queue;
    await Promise.allSettled([...this.background]);
    for (const c of this.live.values()) this.clearTimers(c);
    this.live.clear();
  }

  /**
   * New settings were applied. Hours, modes and timeouts are read at each
   * decision; a change in the rollover section re-registers network
   * forwarding (in the background; see provisionForwarding()).
   */
  applySettings(): void {
    const key = JSON.stringify(this.settings().rollover);
    if (this.started && key !== this.lastRolloverKey) this.track(this.provisionForwarding());
  }

  /**
   * Register (or remove) conditional forwarding per settings.rollover and
   * report the states read back. Forwarding at the network is what still
   * rolls calls over when the box has no power, so a reason the network did
   * not confirm (no registration yet, a modem that came late) is tried
   * again: when the modem is next ready, and every FORWARDING_RETRY_MS.
   */
  async provisionForwarding(): Promise<ForwardingState[]> {
    const s = this.settings();
    this.lastRolloverKey = JSON.stringify(s.rollover);
    if (this.forwardingRetry !== null) {
      this.clock.clearTimeout(this.forwardingRetry);
      this.forwardingRetry = null;
    }
    const states = await this.forwarding.provision(s);
    if (states.some((st) => !st.confirmed) && this.started) {
      this.provisionPending = true;
      this.log.warn(
        { unconfirmed: states.filter((st) => !st.confirmed).map((st) => st.reason), retryMs: FORWARDING_RETRY_MS },
        'network forwarding not confirmed; will try again',
      );
      this.forwardingRetry = this.clock.setTimeout(() => {
        this.forwardingRetry = null;
        if (!this.started) return;
        this.provisionPending = false;
        this.track(this.provisionForwarding());
      }, FORWARDING_RETRY_MS);
    }
    this.changed();
    return states;
  }

  // ---- handset, button and indicators ------------------------------------------

  /**
   * A person answers: the ringing call, or (call waiting) the waiting one,
   * putting the active call on hold (AT+CHLD=2). Resolves with the call id,
   * or null when nothing is ringing or the modem could not answer (logged).
   */
  async answer(by: 'handset' | 'button' = 'button'): Promise<string | null> {
    const active = [...this.live.values()].some((c) => c.phase === 'answered');
    const target =
      this.firstOf((c) => c.phase === 'ringing' && !c.waiting) ??
      (active ? this.firstOf((c) => c.phase === 'ringing' && c.waiting) : undefined);
    if (!target) return null;
    target.pendingAnswer = by;
    try {
      if (target.waiting && active) await this.modem.hold(2);
      else await this.modem.answer();
    } catch (e) {
      target.pendingAnswer = null;
      this.log.warn({ callId: target.callId, by, err: describeError(e) }, 'answering failed');
      await this.enqueue('answer failed', async () => void (await this.refresh()));
      return null;
    }
    await this.enqueue('answered by person', async () => {
      if (target.phase === 'ringing' && this.live.get(target.callId) === target) await this.answered(target, by);
    });
    return target.callId;
  }

  /** A person hangs up (all calls: AT+CHUP); the ends arrive through the modem's events and are checked. */
  async hangUp(): Promise<void> {
    await this.modem.hangUp();
    await this.enqueue('hang up', async () => void (await this.refresh()));
  }

  /** Staff saw the missed calls (clears the missed-call indicator). */
  acknowledgeMissed(): void {
    this.missed = 0;
    this.changed();
  }

  snapshot(): CallsSnapshot {
    const calls = [...this.live.values()];
    const fwd = this.forwarding.knownState('unconditional');
    return {
      ringing: calls.some((c) => c.phase === 'ringing' && !c.waiting),
      waiting: calls.some((c) => c.phase === 'ringing' && c.waiting),
      inCall: calls.some((c) => c.phase === 'answered'),
      inVoicemail: calls.some((c) => c.phase === 'voicemail'),
      missedCount: this.missed,
      forwardingOn: fwd?.confirmed ? fwd.enabled : null,
      calls: calls.map((c) => ({
        callId: c.callId,
        phase: c.phase,
        index: c.index,
        rings: c.rings,
        waiting: c.waiting,
        withheld: c.withheld,
      })),
    };
  }

  /** Wait until every queued transition has been handled (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const q = this.queue;
      await q;
      await Promise.allSettled([...this.background]);
      if (q === this.queue && this.background.size === 0) return;
    }
  }

  // ---- fleet commands ----------------------------------------------------------------

  /** forwarding.set: idempotent, confirmed by AT+CCFC query, reported as forwarding.state. */
  async setForwarding(params: ParamsOf<typeof DEVICE_COMMANDS, 'forwarding.set'>): Promise<ForwardingState> {
    const p = validate(DEVICE_COMMANDS['forwarding.set'].params, params, 'command forwarding.set');
    const reason = p.reason ?? 'unconditional';
    const number = p.enabled ? (p.number ?? this.settings().rollover.number) : null;
    if (p.enabled && !number)
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        'command forwarding.set is invalid: /number: got nothing (missing), expected a phone number in E.164 form (no number given and settings rollover.number is not set)',
        { problems: [{ path: '/number', value: 'nothing (missing)', expected: 'a phone number in E.164 form' }] },
      );
    this.log.info({ reason, enabled: p.enabled, why: p.reasonText }, 'forwarding change on command');
    const timeS = reason === 'no_reply' ? this.settings().rollover.noReplyTimeS : undefined;
    const state = await this.forwarding.ensure(reason, p.enabled, number, timeS);
    this.changed();
    return state;
  }

  /** forwarding.query: every reason read back from the network, each reported. */
  async queryForwarding(): Promise<ResultOf<typeof DEVICE_COMMANDS, 'forwarding.query'>> {
    const states: ForwardingState[] = [];
    for (const reason of FORWARDING_REASONS) states.push(await this.forwarding.query(reason));
    this.changed();
    return { states };
  }

  /** Handlers for the box's RpcResponder on DEVICE_COMMANDS. */
  commandHandlers(): Handlers<typeof DEVICE_COMMANDS> {
    return {
      'forwarding.set': (p) => this.setForwarding(p),
      'forwarding.query': () => this.queryForwarding(),
    };
  }

  // ---- the queue ---------------------------------------------------------------

  private enqueue(what: string, fn: () => Promise<void>): Promise<void> {
    const run = async () => {
      if (!this.started && what !== 'restore') return;
      try {
        await fn();
      } catch (e) {
        this.log.error({ err: describeError(e), what }, 'call handling step failed');
      }
    };
    const p = this.queue.then(run);
    this.queue = p;
    return p;
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((e) => this.log.error({ err: describeError(e) }, 'call background task failed'));
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  private firstOf(pred: (c: LiveCall) => boolean): LiveCall | undefined {
    let best: LiveCall | undefined;
    for (const c of this.live.values()) if (pred(c) && (!best || c.startedAt < best.startedAt)) best = c;
    return best;
  }

  /** In or after hours and the mode; never throws (a call must be tracked even if the hours cannot be read). */
  private decide(at: number): { inHours: boolean; mode: CallMode; reason: string } {
    const s = this.settings();
    try {
      return decideCall(s, at);
    } catch (e) {
      this.log.error(
        { err: describeError(e), timezone: s.clinic.timezone },
        'clinic hours unreadable; treating as open',
      );
      return { inHours: true, mode: s.calls.inHours, reason: 'hours_unreadable' };
    }
  }

  private at(): Date {
    return new Date(this.clock.now());
  }

  private changed(): void {
    try {
      this.emit('change', this.snapshot());
    } catch (e) {
      // An indicator's failure must not stop a call's transition half-way.
      this.log.error({ err: describeError(e) }, "a 'change' listener failed");
    }
  }

  private clearTimers(c: LiveCall): void {
    for (const k of ['ringTimer', 'lostTimer', 'voicemailTimer'] as const) {
      if (c[k] !== null) this.clock.clearTimeout(c[k]);
      c[k] = null;
    }
  }

  private record(c: LiveCall): CallRecord {
    return {
      callId: c.callId,
      index: c.index,
      number: c.number,
      withheld: c.withheld,
      phase: c.phase,
      startedAt: c.startedAt,
      rings: c.rings,
      inHours: c.inHours,
      repeatCaller: c.repeatCaller,
      waiting: c.waiting,
      answeredAt: c.answeredAt,
      answeredBy: c.answeredBy,
      rolledOverTo: c.rolledOverTo,
      rolledOverHow: c.rolledOverHow,
      outcome: c.outcome,
      endedAt: c.endedAt,
    };
  }

  private save(c: LiveCall): Promise<void> {
    return this.store.save(this.record(c));
  }

  // ---- modem inputs ---------------------------------------------------------------

  private async onRing(info: ModemEventMap['ring'][0]): Promise<void> {
    const number = info.withheld ? null : callerOf(info.number);
    const find = () => {
      const ringing = [...this.live.values()].filter((c) => c.phase === 'ringing');
      return (
        (number && ringing.find((c) => sameNumber(c.number, number))) || ringing.find((c) => !c.waiting) || ringing[0]
      );
    };
    let call = find();
    if (!call) {
      // A RING for no call we track: AT+CLCC says whether it is a new call, a waiting one, or a late RING
      // for a call already gone (then nothing is recorded: no phantom calls).
      const listed = await this.refresh();
      call = find();
      if (!call) {
        if (listed || this.live.size > 0) return;
        // No answer to AT+CLCC: track the call from RINGs alone; the ring-lost timer ends it.
        call = await this.newCall(null, number, false);
      }
    }
    if (!call.number && number) call.number = number;
    call.rings++;
    this.armLostTimer(call);
    await this.save(call);
    this.changed();
  }

  /**
   * An end report is a trigger, not the truth: modems reuse indexes at once,
   * so a late end line for index 1 may arrive when index 1 is already the
   * next caller. A fresh AT+CLCC decides; only without it is the call with
   * that index ended on the report alone.
   */
  private async onCallEnded(info: ModemEventMap['callEnded'][0]): Promise<void> {
    if (await this.refresh(info.reason)) return;
    const call = info.index === null ? undefined : this.firstOf((c) => c.index === info.index);
    if (call) await this.end(call, info.reason);
  }

  /** Ask the modem for the list of calls and reconcile with it (a fresh list may end calls CLCC never listed). */
  private async refresh(endReason?: string): Promise<boolean> {
    let list: CallInfo[];
    try {
      list = await this.modem.listCalls();
    } catch (e) {
      this.log.warn({ err: describeError(e) }, 'AT+CLCC failed; calls not reconciled');
      return false;
    }
    await this.reconcile(list, true, ++this.listSeq, endReason);
    return true;
  }

  /**
   * Bring the tracked calls in line with an AT+CLCC list. `fresh`: the list
   * was read after everything tracked began, so a tracked call missing from
   * it (even one only known from a RING) has ended. `seq`: the list's arrival
   * number; lists are applied in arrival order, a stale one is skipped.
   */
  private async reconcile(list: CallInfo[], fresh: boolean, seq: number, endReason?: string): Promise<void> {
    if (seq < this.appliedSeq) {
      // Queued before a newer list was applied (e.g. an 'active' list after the call already ended): ignore.
      this.log.debug({ seq, applied: this.appliedSeq }, 'stale AT+CLCC list skipped');
      return;
    }
    this.appliedSeq = seq;
    if (fresh) this.tombstones.clear();
    let recheck = false;
    // One entry per index (the last wins: a list merged from pushed lines may repeat one).
    const byIndex = new Map<number, CallInfo>();
    for (const c of list) if (c.direction === 'mt' && c.mode !== 'data' && c.mode !== 'fax') byIndex.set(c.index, c);
    const mt = [...byIndex.values()];
    const seen = new Set<string>();
    for (const info of mt) {
      const number = callerOf(info.number);
      // Same index and the same caller (an index is reused as soon as its call is over; a call
      // first known without a number may get one, but a known number never turns into another or none).
      let call = this.firstOf(
        (c) =>
          c.index === info.index &&
          !seen.has(c.callId) &&
          (c.number === null || (number !== null && sameNumber(c.number, number))),
      );
      if (!call) {
        call =
          this.firstOf((c) => c.index === null && !seen.has(c.callId) && sameNumber(c.number, number)) ??
          this.firstOf((c) => c.index === null && !seen.has(c.callId) && (c.number === null || number === null));
        if (call) {
          call.index = info.index;
          if (!call.number && number) {
            call.number = number;
            call.withheld = false;
          }
          await this.save(call);
        }
      }
      const stone = this.tombstones.get(info.index);
      if (!call && stone && !fresh && (stone.number === number || sameNumber(stone.number, number))) {
        recheck = true;
        continue;
      }
      if (!call) {
        const personOnCall = [...this.live.values()].some((c) => c.phase === 'answered');
        const isWaiting = info.stat === 'waiting' || (info.stat === 'incoming' && personOnCall);
        call = await this.newCall(info.index, number, isWaiting);
        if (info.stat === 'active' || info.stat === 'held') {
          // Already talking when we first saw it (e.g. after a restart with a lost store): answered at the desk.
          await this.answered(call, 'network');
        }
      } else if ((info.stat === 'active' || info.stat === 'held') && call.phase === 'ringing') {
        await this.answered(call, call.pendingAnswer ?? 'network');
      } else if (call.phase === 'rolling_over' && call.deflecting === null) {
        // Restored in the middle of AT+CTFR and still ringing: decide again.
        call.phase = 'ringing';
        call.rolledOverTo = null;
        this.armRingTimer(call);
      }
      seen.add(call.callId);
    }
    for (const c of [...this.live.values()]) {
      if (seen.has(c.callId)) continue;
      if (c.index !== null || fresh)
        await this.end(c, endReason ?? (fresh ? 'not listed by AT+CLCC' : 'gone from AT+CLCC'));
    }
    if (recheck) {
      this.log.debug('a list shows a call that just ended: asking AT+CLCC');
      await this.refresh();
    }
  }

  // ---- transitions -------------------------------------------------------------------

  private async newCall(index: number | null, number: string | null, waiting: boolean): Promise<LiveCall> {
    const now = this.clock.now();
    const s = this.settings();
    const decision = this.decide(now);
    let repeat = false;
    const callId = this.newCallId();
    if (number) {
      const since = now - s.calls.repeatCallerWindowH * HOUR_MS;
      repeat = (await this.store.countCallsFrom(number, since, callId)) > 0;
    }
    const call: LiveCall = {
      callId,
      index,
      number,
      withheld: number === null,
      phase: 'ringing',
      startedAt: now,
      rings: 0,
      inHours: decision.inHours,
      repeatCaller: repeat,
      waiting,
      answeredAt: null,
      answeredBy: null,
      rolledOverTo: null,
      rolledOverHow: null,
      outcome: null,
      endedAt: null,
      mode: decision.mode,
      ringTimer: null,
      lostTimer: null,
      voicemailTimer: null,
      pendingAnswer: null,
      deflecting: null,
    };
    this.live.set(callId, call);
    await this.save(call);
    this.log.info(
      { callId, number, inHours: decision.inHours, why: decision.reason, mode: decision.mode, waiting, repeat },
      'incoming call',
    );
    await this.sink.record(
      'call.incoming',
      { callId, number, withheld: call.withheld, inHours: call.inHours, repeatCaller: repeat, waiting },
      new Date(now),
    );
    this.changed();
    this.armRingTimer(call);
    return call;
  }

  /** Start (or resume after a restart) the call's ring timeout, or act at once for the immediate modes. */
  private armRingTimer(call: LiveCall): void {
    if (call.phase !== 'ringing') return;
    const s = this.settings();
    const immediate = call.mode === 'rollover' || call.mode === 'voicemail';
    const left = immediate ? 0 : Math.max(0, call.startedAt + s.calls.ringTimeoutS * 1000 - this.clock.now());
    if (call.ringTimer !== null) this.clock.clearTimeout(call.ringTimer);
    call.ringTimer = this.clock.setTimeout(() => {
      call.ringTimer = null;
      void this.enqueue('ring timeout', () => this.ringTimeout(call));
    }, left);
  }

  private armLostTimer(call: LiveCall): void {
    if (call.lostTimer !== null) this.clock.clearTimeout(call.lostTimer);
    call.lostTimer = this.clock.setTimeout(() => {
      call.lostTimer = null;
      void this.enqueue('ring lost', async () => {
        if (call.phase !== 'ringing' || this.live.get(call.callId) !== call) return;
        // No RING for ringLostAfterS: AT+CLCC decides; without an answer from it, the call has ended.
        if (!(await this.refresh())) await this.end(call, 'no RING for ringLostAfterS');
      });
    }, this.settings().calls.ringLostAfterS * 1000);
  }

  /** The call rang long enough (or rings in an immediate mode): roll over, or answer for voicemail. */
  private async ringTimeout(call: LiveCall): Promise<void> {
    if (call.phase !== 'ringing' || this.live.get(call.callId) !== call) return;
    const s = this.settings();
    const to = s.rollover.number;
    const wantsRollover = call.mode === 'ring-then-rollover' || call.mode === 'rollover';
    if (call.waiting) {
      // The desk is busy on another call: a waiting call can only be rolled over.
      if (to) this.deflect(call, to);
      return;
    }
    if (wantsRollover && to) {
      this.deflect(call, to);
      return;
    }
    if (wantsRollover) this.log.warn({ callId: call.callId }, 'rollover wanted but no rollover number set; voicemail');
    await this.answerForVoicemail(call);
  }

  private deflect(call: LiveCall, to: string): void {
    call.phase = 'rolling_over';
    call.rolledOverTo = to;
    this.clearTimers(call);
    call.deflecting = this.modem.deflect(to).then(
      () => true,
      (e) => {
        this.log.error({ callId: call.callId, err: describeError(e) }, 'AT+CTFR deflect failed');
        return false;
      },
    );
    const pending = call.deflecting;
    void this.enqueue('save rolling over', () => this.save(call));
    void pending.then((ok) =>
      this.enqueue('deflect result', async () => {
        if (this.live.get(call.callId) !== call || call.phase !== 'rolling_over') return;
        if (ok) await this.rolledOver(call, 'deflect');
        else {
          // The network refused: fall back to voicemail rather than let the call ring out.
          call.phase = 'ringing';
          call.rolledOverTo = null;
          await this.save(call);
          if (!call.waiting) await this.answerForVoicemail(call);
        }
      }),
    );
    this.changed();
  }

  private async rolledOver(call: LiveCall, how: 'deflect' | 'forwarding'): Promise<void> {
    call.phase = 'rolled_over';
    call.rolledOverHow = how;
    if (call.rolledOverTo)
      await this.sink.record(
        'call.rolled_over',
        {
          callId: call.callId,
          number: call.number,
          withheld: call.withheld,
          to: call.rolledOverTo,
          how,
          rings: call.rings,
        },
        this.at(),
      );
    await this.save(call);
    this.changed();
  }

  private async answerForVoicemail(call: LiveCall): Promise<void> {
    call.pendingAnswer = 'voicemail';
    this.clearTimers(call);
    try {
      await this.modem.answer();
    } catch (e) {
      call.pendingAnswer = null;
      this.log.error({ callId: call.callId, err: describeError(e) }, 'answering for voicemail failed');
      return;
    }
    if (call.phase === 'ringing' && this.live.get(call.callId) === call) await this.answered(call, 'voicemail');
  }

  private async answered(call: LiveCall, by: AnsweredBy): Promise<void> {
    const now = this.clock.now();
    call.phase = by === 'voicemail' ? 'voicemail' : 'answered';
    call.answeredAt = now;
    call.answeredBy = by;
    call.pendingAnswer = null;
    this.clearTimers(call);
    await this.sink.record(
      'call.answered',
      {
        callId: call.callId,
        number: call.number,
        withheld: call.withheld,
        by,
        rings: call.rings,
        timeToAnswerMs: Math.max(0, now - call.startedAt),
      },
      new Date(now),
    );
    await this.save(call);
    this.changed();
    if (by === 'voicemail') {
      const maxLengthMs = this.armVoicemailLimit(call);
      try {
        const situation = greetingSituation(decideCall(this.settings(), call.startedAt));
        this.onVoicemail?.({ callId: call.callId, number: call.number, maxLengthMs, situation });
      } catch (e) {
        this.log.error({ callId: call.callId, err: describeError(e) }, 'voicemail hook failed');
      }
    }
  }

  /** The box hangs up a voicemail call that outlasts voicemail.maxLengthS (plus a margin); returns the limit. */
  private armVoicemailLimit(call: LiveCall): number {
    const maxLengthMs = this.settings().voicemail.maxLengthS * 1000;
    const left = (call.answeredAt ?? this.clock.now()) + maxLengthMs + VOICEMAIL_HANGUP_MARGIN_MS - this.clock.now();
    call.voicemailTimer = this.clock.setTimeout(
      () => {
        call.voicemailTimer = null;
        if (this.live.get(call.callId) !== call) return;
        this.log.info({ callId: call.callId }, 'voicemail longer than allowed; hanging up');
        this.track(
          this.modem
            .hangUp()
            .then(() => this.enqueue('after voicemail hang up', async () => void (await this.refresh()))),
        );
      },
      Math.max(0, left),
    );
    return maxLengthMs;
  }

  private async end(call: LiveCall, reason: string): Promise<void> {
    if (this.live.get(call.callId) !== call) return;
    this.clearTimers(call);
    if (call.phase === 'rolling_over' && call.deflecting) {
      // Gone while AT+CTFR was in flight: the deflect's answer says whether it was rolled over.
      const ok = await call.deflecting;
      if (ok) await this.rolledOver(call, 'deflect');
      else call.phase = 'ringing';
    }
    const now = this.clock.now();
    const vm = call.answeredBy === 'voicemail' ? await this.voicemailKept(call) : null;
    const s = this.settings();
    const noReply = this.forwarding.knownState('no_reply');
    const abandoned = vm?.stored === false && vm.abandoned === true;
    const fig = endFigures(call, now, s, !!noReply?.enabled && noReply.confirmed, vm?.stored === false, abandoned);
    const forwardedTo = noReply?.number ?? s.rollover.number;
    if (fig.forwardedByNetwork && forwardedTo) {
      call.rolledOverTo = forwardedTo;
      await this.rolledOver(call, 'forwarding');
    }
    call.phase = 'ended';
    call.outcome = fig.outcome;
    call.endedAt = now;
    this.live.delete(call.callId);
    if (call.index !== null) this.tombstones.set(call.index, { number: call.number, at: now });
    this.log.info({ callId: call.callId, outcome: fig.outcome, reason, rings: call.rings }, 'call ended');
    await this.sink.record(
      'call.ended',
      {
        callId: call.callId,
        number: call.number,
        withheld: call.withheld,
        outcome: fig.outcome,
        rings: call.rings,
        timeToAnswerMs: fig.timeToAnswerMs,
        durationMs: fig.durationMs,
        repeatCaller: call.repeatCaller,
        inHours: call.inHours,
        ...(vm?.stored === false && !abandoned ? { voicemailError: vm.reason.slice(0, 200) } : {}),
      },
      new Date(now),
    );
    await this.save(call);
    if (fig.outcome === 'missed' || fig.outcome === 'abandoned' || fig.outcome === 'voicemail_failed') this.missed++;
    this.changed();
    this.track(this.followUp(call, fig.outcome));
    try {
      this.onEnded?.({ callId: call.callId, number: call.number, withheld: call.withheld }, fig.outcome);
    } catch (err) {
      this.log.error({ err: describeError(err), callId: call.callId }, 'call end listener failed');
    }
  }

  /** Whether the voicemail of this call was kept (null: no recorder to ask). Bounded by VOICEMAIL_RESULT_WAIT_MS. */
  private async voicemailKept(call: LiveCall): Promise<VoicemailResult | null> {
    const ask = this.voicemailResult;
    if (!ask) return null;
    let timer: unknown = null;
    const r = await Promise.race([
      ask(call.callId).catch((e): VoicemailResult => ({ stored: false, reason: describeError(e) })),
      new Promise<VoicemailResult>((resolve) => {
        timer = this.clock.setTimeout(
          () =>
            resolve({
              stored: false,
              reason: `the recording was not stored within ${VOICEMAIL_RESULT_WAIT_MS / 1000} s`,
            }),
          VOICEMAIL_RESULT_WAIT_MS,
        );
      }),
    ]);
    this.clock.clearTimeout(timer);
    if (!r.stored && r.abandoned) this.log.info({ callId: call.callId }, 'the caller hung up during the greeting');
    else if (!r.stored)
      this.log.error({ callId: call.callId, reason: r.reason }, 'voicemail lost: the recording failed');
    return r;
  }

  private async followUp(call: CallRecord, outcome: CallOutcome): Promise<void> {
    const s = this.settings().followUpSms;
    const ok = followUpEligibility(call, outcome, s);
    if (!ok.ok) {
      if (ok.why !== 'disabled' && ok.why !== 'not_missed')
        this.log.info({ callId: call.callId, why: ok.why }, 'no follow-up SMS');
      return;
    }
    const now = this.clock.now();
    const claimed = await this.store.claimFollowUp(ok.number, now, now - s.windowH * HOUR_MS, call.callId);
    if (!claimed) {
      this.log.info({ callId: call.callId, why: 'already_sent_in_window' }, 'no follow-up SMS');
      return;
    }
    try {
      await this.modem.sendSms(ok.number, s.text);
      await this.sink.record(
        'call.followup_sms',
        { callId: call.callId, number: ok.number, status: 'sent' },
        this.at(),
      );
    } catch (e) {
      await this.store.releaseFollowUp(ok.number, now);
      await this.sink.record(
        'call.followup_sms',
        {
          callId: call.callId,
          number: ok.number,
          status: 'failed',
          reason: describeError(e).slice(0, 200),
        },
        this.at(),
      );
    }
  }
}
