import { describe, expect, it } from 'vitest';
import { type ClinicHours, checkHours, openAt, wallClock } from './clinic-hours.js';

const weekday = [{ open: '08:00', close: '17:00' }];
const ny: ClinicHours = {
  timezone: 'America/New_York',
  weekly: { mon: weekday, tue: weekday, wed: weekday, thu: weekday, fri: [{ open: '08:00', close: '15:00' }] },
  lunch: { start: '12:00', end: '13:00' },
  closures: [{ date: '2026-12-25' }],
};
const t = (iso: string) => Date.parse(iso);

describe('wallClock', () => {
  it('gives the local date, weekday, minute and offset in the clinic zone', () => {
    // Thursday 2026-11-26 14:05 UTC = 09:05 EST (UTC-5)
    expect(wallClock(t('2026-11-26T14:05:30Z'), 'America/New_York')).toEqual({
      date: '2026-11-26',
      weekday: 'thu',
      minute: 9 * 60 + 5,
      offsetMin: -300,
    });
    // 03:30 UTC is still Wednesday evening in New York
    expect(wallClock(t('2026-11-26T03:30:00Z'), 'America/New_York')).toMatchObject({
      date: '2026-11-25',
      weekday: 'wed',
    });
    expect(wallClock(t('2026-11-26T23:30:00Z'), 'Asia/Tokyo')).toMatchObject({
      date: '2026-11-27',
      weekday: 'fri',
      offsetMin: 540,
    });
  });

  it('follows the spring-forward change (New York, 2026-03-08 02:00 -> 03:00)', () => {
    expect(wallClock(t('2026-03-08T06:59:00Z'), 'America/New_York')).toMatchObject({
      minute: 60 + 59,
      offsetMin: -300,
    });
    expect(wallClock(t('2026-03-08T07:00:00Z'), 'America/New_York')).toMatchObject({ minute: 3 * 60, offsetMin: -240 });
  });

  it('follows the fall-back change (New York, 2026-11-01 02:00 -> 01:00) and the EU change (Berlin, 2026-03-29)', () => {
    expect(wallClock(t('2026-11-01T05:30:00Z'), 'America/New_York')).toMatchObject({ minute: 90, offsetMin: -240 });
    expect(wallClock(t('2026-11-01T06:30:00Z'), 'America/New_York')).toMatchObject({ minute: 90, offsetMin: -300 });
    expect(wallClock(t('2026-03-29T00:59:00Z'), 'Europe/Berlin')).toMatchObject({ minute: 60 + 59, offsetMin: 60 });
    expect(wallClock(t('2026-03-29T01:00:00Z'), 'Europe/Berlin')).toMatchObject({ minute: 3 * 60, offsetMin: 120 });
  });
});

describe('openAt', () => {
  it('is open inside an interval and closed outside', () => {
    expect(openAt(ny, t('2026-11-26T14:05:00Z'))).toMatchObject({ open: true, reason: 'open' });
    expect(openAt(ny, t('2026-11-26T12:59:00Z'))).toMatchObject({ open: false, reason: 'outside_hours' });
    // 17:00 local is closing time: closed
    expect(openAt(ny, t('2026-11-26T22:00:00Z')).open).toBe(false);
    expect(openAt(ny, t('2026-11-26T21:59:00Z')).open).toBe(true);
    // Friday closes at 15:00
    expect(openAt(ny, t('2026-11-27T20:30:00Z'))).toMatchObject({ open: false, reason: 'outside_hours' });
  });

  it('takes an absent weekday, lunch or closure list as none (the fleet clinic hours have only weekly intervals)', () => {
    const weeklyOnly: ClinicHours = { timezone: 'America/New_York', weekly: { thu: weekday } };
    expect(openAt(weeklyOnly, t('2026-11-26T17:30:00Z'))).toMatchObject({ open: true, reason: 'open' });
    expect(openAt(weeklyOnly, t('2026-11-27T15:00:00Z'))).toMatchObject({ open: false, reason: 'closed_day' });
  });

  it('is closed over lunch, on closed weekdays and on closures', () => {
    expect(openAt(ny, t('2026-11-26T17:30:00Z'))).toMatchObject({ open: false, reason: 'lunch' });
    expect(openAt(ny, t('2026-11-26T18:00:00Z'))).toMatchObject({ open: true });
    expect(openAt(ny, t('2026-11-28T15:00:00Z'))).toMatchObject({ open: false, reason: 'closed_day' });
    // Christmas 2026 is a Friday, 10:00 local
    expect(openAt(ny, t('2026-12-25T15:00:00Z'))).toMatchObject({ open: false, reason: 'closure' });
    expect(openAt(ny, t('2026-12-18T15:00:00Z'))).toMatchObject({ open: true });
  });

  it('opens at 08:00 local on both sides of a daylight-saving change', () => {
    // Monday 2026-03-02 (EST, UTC-5) and Monday 2026-03-09 (EDT, UTC-4)
    expect(openAt(ny, t('2026-03-02T12:30:00Z')).open).toBe(false); // 07:30 EST
    expect(openAt(ny, t('2026-03-02T13:30:00Z')).open).toBe(true); // 08:30 EST
    expect(openAt(ny, t('2026-03-09T12:30:00Z')).open).toBe(true); // 08:30 EDT
    expect(openAt(ny, t('2026-03-09T11:30:00Z')).open).toBe(false); // 07:30 EDT
    // Monday 2026-11-02, the day after fall-back: 08:00 EST = 13:00 UTC
    expect(openAt(ny, t('2026-11-02T12:59:00Z')).open).toBe(false);
    expect(openAt(ny, t('2026-11-02T13:00:00Z')).open).toBe(true);
  });

  it('on the change day itself an interval covers the wall-clock minutes that exist', () => {
    const night: ClinicHours = {
      timezone: 'America/New_York',
      weekly: {
        sun: [
          { open: '01:00', close: '02:00' },
          { open: '09:00', close: '24:00' },
        ],
      },
    };
    // spring forward: 01:30 EST open, 03:00 EDT (one real minute after 01:59) closed, 09:30 EDT open
    expect(openAt(night, t('2026-03-08T06:30:00Z')).open).toBe(true);
    expect(openAt(night, t('2026-03-08T07:00:00Z')).open).toBe(false);
    expect(openAt(night, t('2026-03-08T13:30:00Z')).open).toBe(true);
    expect(openAt(night, t('2026-03-08T12:30:00Z')).open).toBe(false); // 08:30 EDT
    // fall back: 01:30 happens twice and is open both times; 02:00 EST is closed
    expect(openAt(night, t('2026-11-01T05:30:00Z')).open).toBe(true);
    expect(openAt(night, t('2026-11-01T06:30:00Z')).open).toBe(true);
    expect(openAt(night, t('2026-11-01T07:00:00Z')).open).toBe(false);
    // 24:00 closes at midnight: 23:59 open
    expect(openAt(night, t('2026-11-02T04:59:00Z')).open).toBe(true);
    expect(openAt(night, t('2026-11-02T05:00:00Z')).open).toBe(false);
  });
});

describe('checkHours', () => {
  it('names intervals that close before they open, overlaps and a backwards lunch', () => {
    const problems = checkHours({
      weekly: {
        mon: [
          { open: '09:00', close: '08:00' },
          { open: '10:00', close: '12:00' },
          { open: '11:00', close: '13:00' },
        ],
      },
      lunch: { start: '13:00', end: '12:00' },
    });
    expect(problems.map((p) => p.path)).toEqual(['/hours/weekly/mon/0', '/hours/weekly/mon/2', '/hours/lunch']);
    expect(problems[0]?.value).toBe('09:00-08:00');
    expect(checkHours(ny)).toEqual([]);
  });

  it('ignores an interval that closes before it opens when deciding', () => {
    const s: ClinicHours = { timezone: 'UTC', weekly: { thu: [{ open: '17:00', close: '08:00' }] } };
    expect(openAt(s, t('2026-11-26T20:00:00Z')).open).toBe(false);
  });
});
