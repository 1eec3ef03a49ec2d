/**
 * Pure rules that turn a call's record into its figures and outcome, and
 * decide whether a missed caller gets the follow-up SMS. No IO here; the
 * CallManager feeds these from the modem and the store.
 */
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { E164_PATTERN } from '../../shared/ids.js';
import type { CallOutcome, CallRecord } from './store.js';

const E164 = new RegExp(E164_PATTERN);
export const HOUR_MS = 3_600_000;

export interface EndFigures {
  outcome: CallOutcome;
  /** Set when the call left the box through network no-reply forwarding (detected, not commanded). */
  forwardedByNetwork: boolean;
  timeToAnswerMs: number | null;
  durationMs: number;
}

/**
 * The outcome of a call that has just ended at `at`.
 * - answered by a person -> answered; by the box -> voicemail, or voicemail_failed when the recording
 *   was not kept (`voicemailFailed`: the caller's message is lost); deflected -> rolled_over;
 * - never answered: gone while ringing after the network's no-reply time with no-reply forwarding
 *   registered -> rolled_over (the network forwarded it); within abandonedMaxS of the first
 *   ring -> abandoned; otherwise missed.
 */
export function endFigures(
  call: Pick<CallRecord, 'phase' | 'startedAt' | 'answeredAt' | 'answeredBy' | 'waiting'>,
  at: number,
  settings: Pick<DeviceSettings, 'calls' | 'rollover'>,
  noReplyForwarding: boolean,
  voicemailFailed = false,
  /** The caller hung up during the greeting, before recording began: abandoned, nothing was lost. */
  voicemailAbandoned = false,
): EndFigures {
  const answered = call.answeredAt !== null && call.answeredBy !== null;
  const durationMs = answered ? Math.max(0, at - (call.answeredAt as number)) : 0;
  const tta =
    answered && call.answeredBy !== 'voicemail' ? Math.max(0, (call.answeredAt as number) - call.startedAt) : null;
  if (call.phase === 'rolled_over' || call.phase === 'rolling_over')
    return { outcome: 'rolled_over', forwardedByNetwork: false, timeToAnswerMs: null, durationMs: 0 };
  if (answered && call.answeredBy === 'voicemail' && voicemailAbandoned)
    return { outcome: 'abandoned', forwardedByNetwork: false, timeToAnswerMs: null, durationMs };
  if (answered)
    return {
      outcome: call.answeredBy !== 'voicemail' ? 'answered' : voicemailFailed ? 'voicemail_failed' : 'voicemail',
      forwardedByNetwork: false,
      timeToAnswerMs: tta,
      durationMs,
    };
  const rangMs = Math.max(0, at - call.startedAt);
  // The network's no-reply timer runs from its own alerting, a moment before our first RING: allow 1 s.
  if (noReplyForwarding && !call.waiting && rangMs >= settings.rollover.noReplyTimeS * 1000 - 1000)
    return { outcome: 'rolled_over', forwardedByNetwork: true, timeToAnswerMs: null, durationMs: 0 };
  if (rangMs <= settings.calls.abandonedMaxS * 1000)
    return { outcome: 'abandoned', forwardedByNetwork: false, timeToAnswerMs: null, durationMs: 0 };
  return { outcome: 'missed', forwardedByNetwork: false, timeToAnswerMs: null, durationMs: 0 };
}

export type FollowUpSkip = 'disabled' | 'not_missed' | 'withheld' | 'not_e164' | 'excluded_prefix';

/** May this call's caller get the follow-up SMS (before the once-per-window check, which needs the store)? */
export function followUpEligibility(
  call: Pick<CallRecord, 'number' | 'withheld'>,
  outcome: CallOutcome,
  s: DeviceSettings['followUpSms'],
): { ok: true; number: string } | { ok: false; why: FollowUpSkip } {
  if (!s.enabled) return { ok: false, why: 'disabled' };
  // A caller whose voicemail was lost is a missed caller too: nobody has their message.
  if (outcome !== 'missed' && outcome !== 'voicemail_failed') return { ok: false, why: 'not_missed' };
  if (call.withheld || !call.number) return { ok: false, why: 'withheld' };
  if (!E164.test(call.number)) return { ok: false, why: 'not_e164' };
  const n = call.number;
  if (s.excludePrefixes.some((p) => n.startsWith(p))) return { ok: false, why: 'excluded_prefix' };
  return { ok: true, number: n };
}

/** A caller id worth treating as a number (not withheld, not empty). */
export function callerOf(number: string | null | undefined): string | null {
  if (number === null || number === undefined) return null;
  const t = number.trim();
  return /^\+?[0-9*#]{1,20}$/.test(t) ? t : null;
}

/**
 * Two numbers are the same line when their digits are equal, or when one is
 * the other's national form (the longer ends with the shorter, at least 7
 * digits): networks answer AT+CCFC with "5550001111",129 for "+15550001111".
 */
export function sameNumber(a: string | null, b: string | null): boolean {
  if (!a || !b) return false;
  const da = a.replace(/\D/g, '');
  const db = b.replace(/\D/g, '');
  if (da === db) return da.length > 0;
  const [short, long] = da.length < db.length ? [da, db] : [db, da];
  return short.length >= 7 && long.endsWith(short);
}
