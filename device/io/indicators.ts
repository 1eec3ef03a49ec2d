/**
 * What the LEDs and the buzzer show: one pure function from the box's state
 * to outputs, so that every overlap of states is decided in one place and
 * tested as a table (indicators.test.ts). A separate player (outputs.ts)
 * turns the patterns into pin levels over time.
 *
 * Priorities, highest first, per output:
 *  - every output: the lamp test (indicators.test command) overrides all.
 *  - ring LED:   ringing (fast blink) > call in progress (steady) > off.
 *  - missed LED: blinks the number of missed calls waiting (1..5, 5 means "5 or more"), then a pause.
 *  - voicemail:  steady while a voicemail waits.
 *  - status LED: waiting to be provisioned (double blink) > link connecting/offline (slow blink) > steady.
 *  - fault LED:  no phone line: modem/SIM/signal (fast blink) > a stuck button (steady)
 *                > fleet unreachable (slow blink) > off. The phone line wins because calls cannot reach the
 *                clinic at all, whereas the outbox keeps events while the fleet is unreachable.
 *  - panic LED:  cancel window (fast blink) > acknowledged (steady) > SMS sent (double blink) > sent,
 *                waiting (slow blink) > off.
 *  - buzzer:     ringing (ring cadence; a second call waiting: short double beeps) > no phone line
 *                (one chirp a minute) > silent. A panic never sounds (a silent alarm protects staff);
 *                quiet hours and volume 0 silence everything but the lamp test.
 */

import type { LedName } from './pinmap.js';

export type LedPattern =
  | { kind: 'off' }
  | { kind: 'on' }
  /** on/off forever. */
  | { kind: 'blink'; onMs: number; offMs: number }
  /** n short flashes, then a pause; repeats. */
  | { kind: 'count'; n: number; onMs: number; offMs: number; pauseMs: number };

export type BuzzerPatternName = 'silent' | 'ring' | 'call-waiting' | 'fault-chirp' | 'test';

export interface BuzzerOutput {
  pattern: BuzzerPatternName;
  /** 0..100 (percent). */
  volume: number;
}

export interface IndicatorOutputs {
  leds: Record<LedName, LedPattern>;
  buzzer: BuzzerOutput;
}

export type LinkState = 'online' | 'connecting' | 'offline';
/** The modem as the indicators see it (device/modem ModemState + registration, reduced). */
export type PhoneLineState = 'ok' | 'starting' | 'no_signal' | 'not_registered' | 'sim_problem' | 'modem_missing';
export type CallIndicatorState = 'idle' | 'ringing' | 'active';
export type PanicIndicatorState = 'idle' | 'pending' | 'sent' | 'escalated' | 'acknowledged';

export interface IndicatorState {
  link: LinkState;
  /** The box has no credentials yet and waits to be claimed. */
  provisioning: boolean;
  phoneLine: PhoneLineState;
  call: CallIndicatorState;
  /** Another call is waiting (call waiting) while one rings or is active. */
  callWaiting: boolean;
  missedCalls: number;
  voicemailsWaiting: number;
  panic: PanicIndicatorState;
  /** A panic button or hook switch is stuck. */
  buttonFault: boolean;
  /** The indicators.test command is running. */
  lampTest: boolean;
}

export interface IndicatorSettings {
  buzzerVolume: number;
  quietHours: { start: string; end: string } | null;
  timezone: string;
}

export const IDLE_STATE: IndicatorState = {
  link: 'online',
  provisioning: false,
  phoneLine: 'ok',
  call: 'idle',
  callWaiting: false,
  missedCalls: 0,
  voicemailsWaiting: 0,
  panic: 'idle',
  buttonFault: false,
  lampTest: false,
};

export const OFF: LedPattern = { kind: 'off' };
export const ON: LedPattern = { kind: 'on' };
export const FAST: LedPattern = { kind: 'blink', onMs: 125, offMs: 125 };
export const SLOW: LedPattern = { kind: 'blink', onMs: 500, offMs: 500 };
export const DOUBLE: LedPattern = { kind: 'count', n: 2, onMs: 150, offMs: 150, pauseMs: 1000 };
export const MISSED_MAX = 5;
export const missedPattern = (n: number): LedPattern => ({
  kind: 'count',
  n: Math.min(n, MISSED_MAX),
  onMs: 200,
  offMs: 300,
  pauseMs: 1500,
});

/** Minutes since midnight of `now` in `timezone`. */
export function minutesOfDay(now: Date, timezone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: timezone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(now);
  const h = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const m = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return h * 60 + m;
}

function clock(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/** Quiet hours may span midnight (22:00-07:00); start == end means never quiet. */
export function inQuietHours(now: Date, quiet: IndicatorSettings['quietHours'], timezone: string): boolean {
  if (!quiet) return false;
  const t = minutesOfDay(now, timezone);
  const s = clock(quiet.start);
  const e = clock(quiet.end);
  if (s === e) return false;
  return s < e ? t >= s && t < e : t >= s || t < e;
}

function phoneLineDown(s: IndicatorState): boolean {
  return s.phoneLine !== 'ok' && s.phoneLine !== 'starting';
}

/** The pure mapping: box state (and the clock, for quiet hours) -> what every LED and the buzzer do. */
export function indicatorOutputs(s: IndicatorState, settings: IndicatorSettings, now: Date): IndicatorOutputs {
  if (s.lampTest) {
    return {
      leds: { ring: ON, missed: ON, voicemail: ON, status: ON, fault: ON, panic: ON },
      buzzer: { pattern: 'test', volume: settings.buzzerVolume },
    };
  }

  const ring = s.call === 'ringing' ? FAST : s.call === 'active' ? ON : OFF;
  const missed = s.missedCalls > 0 ? missedPattern(s.missedCalls) : OFF;
  const voicemail = s.voicemailsWaiting > 0 ? ON : OFF;
  const status = s.provisioning ? DOUBLE : s.link !== 'online' ? SLOW : ON;
  const fault = phoneLineDown(s) ? FAST : s.buttonFault ? ON : s.link === 'offline' ? SLOW : OFF;
  const panic =
    s.panic === 'pending'
      ? FAST
      : s.panic === 'acknowledged'
        ? ON
        : s.panic === 'escalated'
          ? DOUBLE
          : s.panic === 'sent'
            ? SLOW
            : OFF;

  let pattern: BuzzerPatternName = 'silent';
  if (s.call === 'ringing') pattern = 'ring';
  else if (s.call === 'active' && s.callWaiting) pattern = 'call-waiting';
  else if (phoneLineDown(s)) pattern = 'fault-chirp';
  if (settings.buzzerVolume === 0 || inQuietHours(now, settings.quietHours, settings.timezone)) pattern = 'silent';

  return {
    leds: { ring, missed, voicemail, status, fault, panic },
    buzzer: { pattern, volume: pattern === 'silent' ? 0 : settings.buzzerVolume },
  };
}

/** Buzzer cadences: alternating on/off durations in ms, repeated. */
export const BUZZER_CADENCE: Record<BuzzerPatternName, readonly number[]> = {
  silent: [0, 1000],
  // UK-style double ring: 400 on, 200 off, 400 on, 2000 off.
  ring: [400, 200, 400, 2000],
  'call-waiting': [100, 100, 100, 5000],
  'fault-chirp': [80, 60_000],
  test: [300, 300],
};

/** Whether an LED with this pattern is lit `t` ms after the pattern started (pure). */
export function ledLevelAt(p: LedPattern, t: number): boolean {
  switch (p.kind) {
    case 'off':
      return false;
    case 'on':
      return true;
    case 'blink':
      return t % (p.onMs + p.offMs) < p.onMs;
    case 'count': {
      const period = p.n * (p.onMs + p.offMs) + p.pauseMs;
      const u = t % period;
      if (u >= p.n * (p.onMs + p.offMs)) return false;
      return u % (p.onMs + p.offMs) < p.onMs;
    }
  }
}

/** Whether the buzzer sounds `t` ms after the pattern started (pure). */
export function buzzerLevelAt(pattern: BuzzerPatternName, t: number): boolean {
  if (pattern === 'silent') return false;
  const cadence = BUZZER_CADENCE[pattern];
  const period = cadence.reduce((a, b) => a + b, 0);
  let u = t % period;
  for (let i = 0; i < cadence.length; i++) {
    const d = cadence[i]!;
    if (u < d) return i % 2 === 0;
    u -= d;
  }
  return false;
}
