import { describe, expect, it } from 'vitest';
import {
  buzzerLevelAt,
  DOUBLE,
  FAST,
  IDLE_STATE,
  type IndicatorState,
  indicatorOutputs,
  inQuietHours,
  type LedPattern,
  ledLevelAt,
  missedPattern,
  OFF,
  ON,
  SLOW,
} from './indicators.js';

const settings = { buzzerVolume: 70, quietHours: null, timezone: 'UTC' };
const noon = new Date('2026-11-26T12:00:00Z');

type Row = [
  string,
  Partial<IndicatorState>,
  Partial<Record<'ring' | 'missed' | 'voicemail' | 'status' | 'fault' | 'panic', LedPattern>>,
  string,
];

// name, state (over idle), LEDs expected to differ from idle, buzzer pattern
const TABLE: Row[] = [
  ['idle and healthy', {}, {}, 'silent'],
  ['ringing', { call: 'ringing' }, { ring: FAST }, 'ring'],
  ['call in progress', { call: 'active' }, { ring: ON }, 'silent'],
  ['call in progress with one waiting', { call: 'active', callWaiting: true }, { ring: ON }, 'call-waiting'],
  ['ringing beats call in progress', { call: 'ringing', callWaiting: true }, { ring: FAST }, 'ring'],
  ['3 missed calls', { missedCalls: 3 }, { missed: missedPattern(3) }, 'silent'],
  ['12 missed calls saturate at 5', { missedCalls: 12 }, { missed: missedPattern(5) }, 'silent'],
  ['voicemail waiting', { voicemailsWaiting: 2 }, { voicemail: ON }, 'silent'],
  ['link connecting', { link: 'connecting' }, { status: SLOW }, 'silent'],
  ['link offline', { link: 'offline' }, { status: SLOW, fault: SLOW }, 'silent'],
  ['waiting for provisioning', { provisioning: true, link: 'offline' }, { status: DOUBLE, fault: SLOW }, 'silent'],
  ['no signal', { phoneLine: 'no_signal' }, { fault: FAST }, 'fault-chirp'],
  ['modem starting is not a fault', { phoneLine: 'starting' }, {}, 'silent'],
  [
    'no signal beats offline',
    { phoneLine: 'sim_problem', link: 'offline' },
    { status: SLOW, fault: FAST },
    'fault-chirp',
  ],
  ['stuck button', { buttonFault: true }, { fault: ON }, 'silent'],
  ['stuck button beats offline', { buttonFault: true, link: 'offline' }, { status: SLOW, fault: ON }, 'silent'],
  ['ringing beats fault chirp', { call: 'ringing', phoneLine: 'no_signal' }, { ring: FAST, fault: FAST }, 'ring'],
  ['panic cancel window', { panic: 'pending' }, { panic: FAST }, 'silent'],
  ['panic sent', { panic: 'sent' }, { panic: SLOW }, 'silent'],
  [
    'panic escalated by SMS',
    { panic: 'escalated', link: 'offline' },
    { panic: DOUBLE, status: SLOW, fault: SLOW },
    'silent',
  ],
  ['panic acknowledged', { panic: 'acknowledged' }, { panic: ON }, 'silent'],
  [
    'everything at once',
    { call: 'ringing', missedCalls: 1, voicemailsWaiting: 1, panic: 'sent', link: 'offline' },
    { ring: FAST, missed: missedPattern(1), voicemail: ON, status: SLOW, fault: SLOW, panic: SLOW },
    'ring',
  ],
];

describe('indicatorOutputs: the state-to-LED table', () => {
  const idle = { ring: OFF, missed: OFF, voicemail: OFF, status: ON, fault: OFF, panic: OFF };
  it.each(TABLE)('%s', (_name, state, leds, buzzer) => {
    const out = indicatorOutputs({ ...IDLE_STATE, ...state }, settings, noon);
    expect(out.leds).toEqual({ ...idle, ...leds });
    expect(out.buzzer.pattern).toBe(buzzer);
    expect(out.buzzer.volume).toBe(buzzer === 'silent' ? 0 : 70);
  });

  it('the lamp test lights everything and overrides all states', () => {
    const out = indicatorOutputs({ ...IDLE_STATE, lampTest: true, link: 'offline', panic: 'pending' }, settings, noon);
    expect(Object.values(out.leds).every((p) => p.kind === 'on')).toBe(true);
    expect(out.buzzer).toEqual({ pattern: 'test', volume: 70 });
  });

  it('quiet hours (spanning midnight, in the clinic time zone) silence the ring; the LED still blinks', () => {
    const quiet = { buzzerVolume: 70, quietHours: { start: '22:00', end: '07:00' }, timezone: 'Europe/Berlin' };
    // 21:30 UTC = 22:30 in Berlin (winter): quiet
    const late = indicatorOutputs({ ...IDLE_STATE, call: 'ringing' }, quiet, new Date('2026-11-26T21:30:00Z'));
    expect(late.buzzer).toEqual({ pattern: 'silent', volume: 0 });
    expect(late.leds.ring).toEqual(FAST);
    // 06:30 UTC = 07:30 in Berlin: not quiet
    const morning = indicatorOutputs({ ...IDLE_STATE, call: 'ringing' }, quiet, new Date('2026-11-26T06:30:00Z'));
    expect(morning.buzzer).toEqual({ pattern: 'ring', volume: 70 });
  });

  it('volume 0 silences the buzzer', () => {
    const out = indicatorOutputs({ ...IDLE_STATE, call: 'ringing' }, { ...settings, buzzerVolume: 0 }, noon);
    expect(out.buzzer.pattern).toBe('silent');
  });

  it('inQuietHours handles same-day spans and start == end', () => {
    const q = { start: '12:00', end: '13:00' };
    expect(inQuietHours(new Date('2026-11-26T12:30:00Z'), q, 'UTC')).toBe(true);
    expect(inQuietHours(new Date('2026-11-26T13:00:00Z'), q, 'UTC')).toBe(false);
    expect(inQuietHours(noon, { start: '08:00', end: '08:00' }, 'UTC')).toBe(false);
  });
});

describe('pattern levels over time', () => {
  it('a count pattern flashes n times then pauses', () => {
    const p = missedPattern(3); // 200 on, 300 off, x3, then 1500 pause: period 3000
    const lit = [0, 100, 500, 600, 1000, 1100].map((t) => ledLevelAt(p, t));
    expect(lit).toEqual([true, true, true, true, true, true]);
    const dark = [250, 700, 1300, 1600, 2900].map((t) => ledLevelAt(p, t));
    expect(dark).toEqual([false, false, false, false, false]);
    expect(ledLevelAt(p, 3000)).toBe(true);
  });

  it('blink and ring cadences', () => {
    expect([0, 124, 125, 249, 250].map((t) => ledLevelAt(FAST, t))).toEqual([true, true, false, false, true]);
    expect([0, 399, 400, 600, 999, 1000, 2999, 3000].map((t) => buzzerLevelAt('ring', t))).toEqual([
      true,
      true,
      false,
      true,
      true,
      false,
      false,
      true,
    ]);
    expect(buzzerLevelAt('silent', 0)).toBe(false);
  });
});
