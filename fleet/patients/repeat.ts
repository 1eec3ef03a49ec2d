/**
 * Repeat concerns, pure: a call is flagged when
 * - it is at least the `repeatCalls`-th call from the same number to the
 *   clinic within `repeatCallsWindowH` (this one included; default 3 in a
 *   week), or
 * - the same number left a voicemail within `repeatAfterVoicemailH` before it
 *   (default 72 h): the caller is trying again about the same thing.
 * Times are the events' (when it happened on the box), so the rule reads the
 * same whenever the fleet gets the events.
 */
import type { PatientsConfig } from './config.js';

export interface EarlierContact {
  kind: 'call' | 'voicemail' | 'sms';
  /** ISO time. */
  at: string;
}

const HOUR = 3_600_000;

function hours(ms: number): string {
  const h = ms / HOUR;
  return h < 1 ? `${Math.max(1, Math.round(ms / 60_000))} min` : `${Math.round(h)} h`;
}

/** Why this call is a repeat concern, or null. `earlier`: the number's contacts with the clinic before it. */
export function repeatReason(
  at: string,
  earlier: readonly EarlierContact[],
  cfg: Pick<PatientsConfig, 'repeatCalls' | 'repeatCallsWindowH' | 'repeatAfterVoicemailH'>,
): string | null {
  const t = Date.parse(at);
  const reasons: string[] = [];
  const since = t - cfg.repeatCallsWindowH * HOUR;
  const calls =
    earlier.filter((c) => c.kind === 'call' && Date.parse(c.at) >= since && Date.parse(c.at) < t).length + 1;
  if (calls >= cfg.repeatCalls) reasons.push(`${calls} calls from this number within ${cfg.repeatCallsWindowH} h`);
  const vmSince = t - cfg.repeatAfterVoicemailH * HOUR;
  const lastVm = earlier
    .filter((c) => c.kind === 'voicemail' && Date.parse(c.at) >= vmSince && Date.parse(c.at) <= t)
    .map((c) => Date.parse(c.at))
    .sort((a, b) => b - a)[0];
  if (lastVm !== undefined) reasons.push(`called again ${hours(t - lastVm)} after leaving a voicemail`);
  return reasons.length > 0 ? reasons.join('; ') : null;
}
