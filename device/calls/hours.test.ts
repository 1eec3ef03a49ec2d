import { describe, expect, it } from 'vitest';
import { decideCall, greetingSituation } from './hours.js';
import { settingsFrom } from './settings.js';

const weekday = [{ open: '08:00', close: '17:00' }];
const ny = settingsFrom({
  clinic: { timezone: 'America/New_York' },
  hours: {
    weekly: { mon: weekday, tue: weekday, wed: weekday, thu: weekday, fri: [{ open: '08:00', close: '15:00' }] },
    lunch: { start: '12:00', end: '13:00' },
    closures: [{ date: '2026-12-25', reason: 'Christmas Day' }],
  },
  calls: { inHours: 'ring-then-rollover', afterHours: 'voicemail' },
});
const t = (iso: string) => Date.parse(iso);

describe('decideCall', () => {
  it('takes the in-hours mode while the clinic is open and the after-hours mode otherwise', () => {
    expect(decideCall(ny, t('2026-11-26T14:05:00Z'))).toMatchObject({
      inHours: true,
      reason: 'open',
      mode: 'ring-then-rollover',
    });
    expect(decideCall(ny, t('2026-11-26T12:59:00Z'))).toMatchObject({
      inHours: false,
      reason: 'outside_hours',
      mode: 'voicemail',
    });
  });

  it('reads lunch and closures from the settings', () => {
    expect(decideCall(ny, t('2026-11-26T17:30:00Z'))).toMatchObject({
      inHours: false,
      reason: 'lunch',
      mode: 'voicemail',
    });
    expect(decideCall(ny, t('2026-12-25T15:00:00Z'))).toMatchObject({ inHours: false, reason: 'closure' });
  });
});

describe('which greeting a voicemail call gets', () => {
  it('lunch at lunch, after hours when closed for any other reason, busy in hours', () => {
    expect(greetingSituation({ inHours: false, reason: 'lunch' })).toBe('lunch');
    expect(greetingSituation({ inHours: false, reason: 'outside_hours' })).toBe('afterHours');
    expect(greetingSituation({ inHours: false, reason: 'closure' })).toBe('afterHours');
    expect(greetingSituation({ inHours: false, reason: 'closed_day' })).toBe('afterHours');
    expect(greetingSituation({ inHours: true, reason: 'open' })).toBe('busy');
  });
});
