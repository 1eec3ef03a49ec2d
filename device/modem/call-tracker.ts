/**
 * Call tracking, composed by the driver (driver.ts): RING/+CRING/+CLIP/+CCWA
 * and the end lines (NO CARRIER, ^CEND, VOICE CALL: END, MISSED_CALL, pushed
 * +CLCC/+QIND) are triggers; AT+CLCC (3GPP TS 27.007 7.18) is the truth.
 * A ringing call with no RING for `ringEndMs` is looked up and ended if it
 * is gone; listed calls are polled every `callPollMs` (three times slower on
 * modems that push call state).
 *
 * Each AT+CLCC list is reconciled with the one before (reconcileCalls): a
 * call is the pair (direction, index), an index names one call at a time; a
 * call missing from the new list has ended, and is reported ended once.
 */

import { ErrorCode, isCallboxError } from '../../shared/errors.js';
import type { CallerId, ClccLine } from './at/calls.js';
import { formatChld, formatDeflect, parseClccList } from './at/calls.js';
import { Priority } from './at/channel.js';
import type { Urc } from './at/urc.js';
import { guard, type ModemHost } from './host.js';
import type { CallInfo } from './types.js';

/** A call's identity across AT+CLCC lists: indexes are reused, but not for the other direction at once. */
export function callKey(c: Pick<CallInfo, 'index' | 'direction'>): string {
  return `${c.direction}:${c.index}`;
}

export interface CallReconciliation {
  /** The new list, one entry per call (an index listed twice keeps its first line). */
  calls: CallInfo[];
  /** New calls; `via` is how a call comes into being: incoming (mt) or dialing (mo), whatever its first stat. */
  appeared: { call: CallInfo; via: 'incoming' | 'dialing' }[];
  /** Calls listed in both whose line changed (stat, number, ...). */
  changed: { from: CallInfo; to: CallInfo }[];
  /** Calls that were listed and are not any more. */
  ended: CallInfo[];
}

/** Compare two AT+CLCC lists (pure). */
export function reconcileCalls(prev: readonly CallInfo[], next: readonly CallInfo[]): CallReconciliation {
  const before = new Map(prev.map((c) => [callKey(c), c]));
  const indexes = new Set<number>();
  const calls: CallInfo[] = [];
  const appeared: CallReconciliation['appeared'] = [];
  const changed: CallReconciliation['changed'] = [];
  for (const c of next) {
    // <idx> identifies one call (27.007 7.18): a list naming an index twice keeps its first line.
    if (indexes.has(c.index)) continue;
    indexes.add(c.index);
    calls.push(c);
    const old = before.get(callKey(c));
    if (!old) appeared.push({ call: c, via: c.direction === 'mt' ? 'incoming' : 'dialing' });
    else if (!sameCall(old, c)) changed.push({ from: old, to: c });
  }
  const kept = new Set(calls.map(callKey));
  const ended = prev.filter((c) => !kept.has(callKey(c)));
  return { calls, appeared, changed, ended };
}

function sameCall(a: CallInfo, b: CallInfo): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameCalls(a: readonly CallInfo[], b: readonly CallInfo[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class CallTracker {
  /** The latest AT+CLCC list. */
  calls: CallInfo[] = [];
  private callPollTimer: ReturnType<typeof setTimeout> | null = null;
  private ringTimer: ReturnType<typeof setTimeout> | null = null;
  private ringPending: ReturnType<typeof setTimeout> | null = null;
  private clipStash: { caller: CallerId; at: number } | null = null;
  private ringCaller: CallerId | null = null;
  private ringing = false;
  private ringCount = 0;
  private pendingEndReason: string | null = null;
  private checking: Promise<CallInfo[]> | null = null;
  private recheck = false;

  constructor(private readonly host: ModemHost) {}

  /** The call URCs; false for any other kind (the driver handles those). */
  handleUrc(urc: Urc): boolean {
    switch (urc.type) {
      case 'ring':
        this.onRing();
        return true;
      case 'clip':
        this.onClip(urc.caller);
        return true;
      case 'call':
        this.onPushedCall(urc.call);
        return true;
      case 'callEnd':
        this.pendingEndReason = urc.reason;
        this.checkCalls();
        return true;
      case 'waiting':
        this.host.emit('callWaiting', { number: urc.caller.number, withheld: urc.caller.withheld });
        this.checkCalls();
        return true;
      default:
        return false;
    }
  }

  /** Every call is over (the port is gone, the modem restarted): each ends once with `reason`. */
  endAll(reason: string): void {
    const had = this.calls;
    const wasRinging = this.ringing;
    this.calls = [];
    for (const c of had) this.host.emit('callEnded', { index: c.index, reason });
    if (wasRinging && had.length === 0) this.host.emit('callEnded', { index: null, reason });
    if (had.length > 0) this.host.emit('calls', []);
    this.stopRinging();
    this.pendingEndReason = null;
    if (this.ringPending) clearTimeout(this.ringPending);
    this.ringPending = null;
    if (this.callPollTimer) clearTimeout(this.callPollTimer);
    this.callPollTimer = null;
  }

  /** Timers off (the driver stops). */
  stop(): void {
    for (const t of [this.callPollTimer, this.ringTimer, this.ringPending]) if (t) clearTimeout(t);
    this.callPollTimer = this.ringTimer = this.ringPending = null;
  }

  // ---------------------------------------------------------------- commands

  async listCalls(): Promise<CallInfo[]> {
    const r = await this.host.cmd({ command: 'AT+CLCC', prefixes: ['+CLCC:'] }, Priority.CallControl);
    const list = parseClccList(r.lines);
    return this.applySnapshot(list);
  }

  async answer(): Promise<void> {
    try {
      await this.host.cmd(
        { command: 'ATA', callFinals: true, timeoutMs: this.host.config.callControlTimeoutMs },
        Priority.CallControl,
      );
    } finally {
      this.checkCalls();
    }
  }

  async hangUp(): Promise<void> {
    let last: unknown = null;
    try {
      for (const command of this.host.profile().hangUp) {
        try {
          await this.host.cmd({ command, timeoutMs: this.host.config.callControlTimeoutMs }, Priority.CallControl);
          return;
        } catch (e) {
          last = e;
          if (!(isCallboxError(e, ErrorCode.ModemCommandFailed) && e.details?.final === 'error')) throw e;
        }
      }
      throw last;
    } finally {
      this.pendingEndReason ??= 'hung_up';
      this.checkCalls();
    }
  }

  deflect(number: string): Promise<void> {
    return guard('deflect', async () => {
      const command = formatDeflect(number);
      try {
        await this.host.cmd({ command, timeoutMs: this.host.config.callControlTimeoutMs }, Priority.CallControl);
      } finally {
        this.pendingEndReason ??= 'deflected';
        this.checkCalls();
      }
    });
  }

  hold(n: number): Promise<void> {
    return guard('hold', async () => {
      const command = formatChld(n);
      try {
        await this.host.cmd({ command, timeoutMs: this.host.config.callControlTimeoutMs }, Priority.CallControl);
      } finally {
        this.checkCalls();
      }
    });
  }

  // ---------------------------------------------------------------- reconciliation

  /**
   * Take one AT+CLCC list as the truth: calls missing from it end (once each,
   * with the reason an end line or a hang-up left, else 'gone'); 'calls' is
   * emitted when the list changed. Returns the list as kept (one line per call).
   */
  applySnapshot(list: readonly CallInfo[]): CallInfo[] {
    const reason = this.pendingEndReason ?? 'gone';
    this.pendingEndReason = null;
    const r = reconcileCalls(this.calls, list);
    const changed = !sameCalls(r.calls, this.calls);
    this.calls = r.calls;
    let endedIncoming = false;
    for (const c of r.ended) {
      if (c.stat === 'incoming' || c.stat === 'waiting') endedIncoming = true;
      this.host.emit('callEnded', { index: c.index, reason });
    }
    if (changed) this.host.emit('calls', r.calls);
    const stillRinging = r.calls.some((c) => c.stat === 'incoming' || c.stat === 'waiting');
    if (this.ringing && !stillRinging) {
      // The ringing call is gone (or became active). If we never saw it listed, say so once.
      const answered = r.calls.some((c) => c.direction === 'mt' && c.stat === 'active');
      if (!endedIncoming && !answered && r.ended.length === 0) this.host.emit('callEnded', { index: null, reason });
      this.stopRinging();
    }
    this.schedulePoll();
    return r.calls;
  }

  /** Look at AT+CLCC soon (coalesced: one in flight, at most one more after it). */
  checkCalls(): void {
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = this.listCalls()
      .catch((e) => {
        // Without the truth, an end line or a silent ring still ends what we knew.
        if (this.pendingEndReason && !isCallboxError(e, ErrorCode.ShuttingDown)) this.endAll(this.pendingEndReason);
        return this.calls;
      })
      .finally(() => {
        this.checking = null;
        if (this.recheck && !this.host.stopped()) {
          this.recheck = false;
          this.checkCalls();
        }
      });
  }

  private schedulePoll(): void {
    if (this.callPollTimer) clearTimeout(this.callPollTimer);
    this.callPollTimer = null;
    if (this.calls.length > 0 && !this.host.stopped()) {
      const poll = this.host.config.callPollMs;
      const every = this.host.profile().pushesCallState ? poll * 3 : poll;
      this.callPollTimer = setTimeout(() => {
        this.callPollTimer = null;
        this.checkCalls();
      }, every);
    }
  }

  private stopRinging(): void {
    this.ringing = false;
    this.ringCount = 0;
    this.ringCaller = null;
    this.clipStash = null;
    if (this.ringTimer) clearTimeout(this.ringTimer);
    this.ringTimer = null;
  }

  // ---------------------------------------------------------------- URCs

  private emitRing(caller: CallerId | null): void {
    const c = caller ?? this.ringCaller;
    if (caller) this.ringCaller = caller;
    this.ringCount++;
    this.host.emit('ring', { number: c?.number ?? null, withheld: c?.withheld ?? false, count: this.ringCount });
  }

  private onRing(): void {
    const cfg = this.host.config;
    this.ringing = true;
    if (this.ringTimer) clearTimeout(this.ringTimer);
    this.ringTimer = setTimeout(() => this.onRingSilence(), cfg.ringEndMs);
    const stash = this.clipStash;
    this.clipStash = null;
    if (stash && Date.now() - stash.at <= cfg.clipWaitMs + 1000) this.emitRing(stash.caller);
    else if (!this.ringPending) {
      this.ringPending = setTimeout(() => {
        this.ringPending = null;
        this.emitRing(null);
      }, cfg.clipWaitMs);
    }
    this.checkCalls();
  }

  private onClip(caller: CallerId): void {
    if (this.ringPending) {
      clearTimeout(this.ringPending);
      this.ringPending = null;
      this.emitRing(caller);
    } else this.clipStash = { caller, at: Date.now() };
  }

  private onRingSilence(): void {
    this.ringTimer = null;
    if (!this.ringing) return;
    this.pendingEndReason ??= 'ring_timeout';
    this.checkCalls();
  }

  private onPushedCall(call: ClccLine): void {
    const { ended, ...info } = call;
    const others = this.calls.filter((c) => c.index !== info.index);
    if (ended) {
      if (others.length !== this.calls.length) {
        this.calls = others;
        this.host.emit('callEnded', { index: info.index, reason: 'pushed_end' });
        this.host.emit('calls', this.calls);
      }
      this.schedulePoll();
    } else {
      const next = [...others, info].sort((a, b) => a.index - b.index);
      if (!sameCalls(next, this.calls)) {
        this.calls = next;
        this.host.emit('calls', this.calls);
      }
    }
    this.checkCalls();
  }
}
