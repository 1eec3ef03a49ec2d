/**
 * What a call arriving at a given instant does: the clinic's hours decide
 * (shared/clinic-hours.ts, on its wall clock), the settings give the mode
 * (settings.calls.inHours / afterHours).
 */
import { clinicHoursOf, type HoursReason, openAt, type WallClock } from '../../shared/clinic-hours.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';

export type CallMode = DeviceSettings['calls']['inHours'];

export interface HoursDecision {
  inHours: boolean;
  reason: HoursReason;
  /** The call mode that applies (calls.inHours or calls.afterHours). */
  mode: CallMode;
  wall: WallClock;
}

/** What a call arriving at `at` does. */
export function decideCall(settings: Pick<DeviceSettings, 'clinic' | 'hours' | 'calls'>, at: number): HoursDecision {
  const { open, reason, wall } = openAt(clinicHoursOf(settings), at);
  return { inHours: open, reason, mode: open ? settings.calls.inHours : settings.calls.afterHours, wall };
}

/** Which greeting a call answered for voicemail gets (settings.voicemail.greeting.<situation>). */
export type GreetingSituation = 'afterHours' | 'lunch' | 'busy';

/** The lunch break, any other closed time (after hours, closed day, holiday), or open with nobody answering. */
export function greetingSituation(d: Pick<HoursDecision, 'inHours' | 'reason'>): GreetingSituation {
  if (d.reason === 'lunch') return 'lunch';
  return d.inHours ? 'busy' : 'afterHours';
}
