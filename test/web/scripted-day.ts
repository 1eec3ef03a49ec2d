/**
 * A scripted day of calls for the figures page test, and what it must give, computed here from the script
 * with the contact-centre definitions (docs: offered, answered, abandoned with short abandons apart, ASA,
 * service level over the calls offered less the short abandons), independently of fleet/figures.
 */
import type { TestBox } from './test-box.js';

export interface ScriptedCall {
  outcome: 'answered' | 'abandoned' | 'missed' | 'voicemail' | 'rolled_over';
  /** Answered: time to answer; otherwise how long it rang. */
  ringS: number;
  talkS: number;
  number: string;
}

export const SCRIPTED_DAY: ScriptedCall[] = [
  { outcome: 'answered', ringS: 8, talkS: 120, number: '+15557770001' },
  { outcome: 'answered', ringS: 20, talkS: 60, number: '+15557770002' },
  { outcome: 'answered', ringS: 45, talkS: 30, number: '+15557770003' },
  { outcome: 'abandoned', ringS: 5, talkS: 0, number: '+15557770004' },
  { outcome: 'abandoned', ringS: 25, talkS: 0, number: '+15557770005' },
  { outcome: 'missed', ringS: 60, talkS: 0, number: '+15557770006' },
  { outcome: 'voicemail', ringS: 20, talkS: 0, number: '+15557770007' },
  { outcome: 'rolled_over', ringS: 20, talkS: 0, number: '+15557770008' },
  { outcome: 'answered', ringS: 11, talkS: 90, number: '+15557770001' },
];

/** An IANA zone (Etc/GMT±N) where it is around midday now, so the script's calls all fall on "today". */
export function timezoneAtMidday(now = new Date()): string {
  const offset = Math.max(-12, Math.min(14, 12 - now.getUTCHours()));
  return offset === 0 ? 'Etc/GMT' : offset > 0 ? `Etc/GMT-${offset}` : `Etc/GMT+${-offset}`;
}

/** The figures the page must show, as it formats them. */
export function expectedFigures(
  calls: ScriptedCall[],
  t: { serviceLevelTargetS: number; shortAbandonS: number; repeatWindowH: number },
) {
  const answered = calls.filter((c) => c.outcome === 'answered');
  const abandoned = calls.filter((c) => c.outcome === 'abandoned');
  const shortAbandoned = abandoned.filter((c) => c.ringS < t.shortAbandonS).length;
  const base = calls.length - shortAbandoned;
  const inTarget = answered.filter((c) => c.ringS <= t.serviceLevelTargetS).length;
  const seen = new Set<string>();
  let repeatCalls = 0;
  for (const c of calls) {
    if (seen.has(c.number)) repeatCalls++;
    seen.add(c.number);
  }
  const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
  const asaS = answered.reduce((s, c) => s + c.ringS, 0) / answered.length;
  return {
    offered: calls.length,
    answered: answered.length,
    abandoned: abandoned.length,
    shortAbandoned,
    missed: calls.filter((c) => c.outcome === 'missed').length,
    voicemail: calls.filter((c) => c.outcome === 'voicemail').length,
    rolledOver: calls.filter((c) => c.outcome === 'rolled_over').length,
    repeatCalls,
    asa: `${asaS.toFixed(1)} s`,
    serviceLevel: pct(inTarget / base),
    abandonRate: pct((abandoned.length - shortAbandoned) / base),
  };
}

/** The box reports the calls (call.incoming at the start, call.ended at the end), a few minutes apart, just past. */
export async function sendScriptedDay(box: TestBox, calls: ScriptedCall[], now = Date.now()): Promise<void> {
  let start = now - calls.length * 5 * 60_000;
  for (const [i, c] of calls.entries()) {
    const callId = `web-fig-${i}`;
    const base = { callId, number: c.number, withheld: false };
    await box.event('call.incoming', { ...base, inHours: true, repeatCaller: false, waiting: false }, new Date(start));
    const answered = c.outcome === 'answered';
    const end = start + (c.ringS + c.talkS) * 1000;
    await box.event(
      'call.ended',
      {
        ...base,
        outcome: c.outcome,
        rings: Math.ceil(c.ringS / 5),
        timeToAnswerMs: answered ? c.ringS * 1000 : null,
        durationMs: c.talkS * 1000,
        repeatCaller: false,
        inHours: true,
      },
      new Date(end),
    );
    start += 5 * 60_000;
  }
}
