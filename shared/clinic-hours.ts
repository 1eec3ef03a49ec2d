/**
 * Clinic hours: is the clinic open at a given instant. The box decides what a
 * call does with it (device/calls/hours.ts); the fleet's alerts ask it before
 * raising an in-hours alert. Both describe the hours with `ClinicHours`: a
 * box's settings (`clinicHoursOf`) or the fleet's clinic alert settings
 * (weekly intervals only; no lunch, no closures) without inventing the rest.
 *
 * Everything is decided on the clinic's wall clock in its IANA time zone,
 * obtained from the instant with Intl.DateTimeFormat (the ICU time zone
 * database Node ships). Only instant -> wall clock is ever needed, never the
 * reverse, so daylight-saving changes need no special case: on the day the
 * clocks go forward the wall clock skips an hour, on the day they go back it
 * repeats one, and an opening interval simply covers whatever wall-clock
 * minutes fall inside it. No date library is needed for that (luxon would
 * add a dependency for one formatToParts call).
 *
 * Rules, in order: a closure (holiday) on the local date -> closed; the
 * lunch break -> closed; an opening interval of the local weekday covering
 * the local minute (open <= t < close, "24:00" = end of day) -> open;
 * otherwise closed. An interval whose close is not after its open is
 * ignored (and reported by checkHours).
 */
import type { DeviceSettings } from './contract/settings.js';

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** Opening hours on the clinic's wall clock in its IANA zone. A weekday that is absent is closed all day. */
export interface ClinicHours {
  timezone: string;
  weekly: Partial<Record<Weekday, readonly { open: string; close: string }[]>>;
  lunch?: { start: string; end: string } | null;
  closures?: readonly { date: string }[];
}

/** The hours a box's settings describe. */
export function clinicHoursOf(settings: Pick<DeviceSettings, 'clinic' | 'hours'>): ClinicHours {
  return { timezone: settings.clinic.timezone, ...settings.hours };
}

export interface WallClock {
  /** Local date, YYYY-MM-DD. */
  date: string;
  weekday: Weekday;
  /** Minutes since local midnight, 0..1439. */
  minute: number;
  /** Offset from UTC in minutes at that instant (e.g. -300 for New York in winter). */
  offsetMin: number;
}

const WEEKDAYS: Record<string, Weekday> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws RangeError for an unknown zone; settings validation (iana-timezone format) rejects those first.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The clinic's wall clock at instant `at` (ms since the epoch) in `timeZone`. */
export function wallClock(at: number, timeZone: string): WallClock {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(at))) parts[p.type] = p.value;
  const hour = Number(parts.hour) % 24;
  const minute = Number(parts.minute);
  const date = `${parts.year}-${parts.month}-${parts.day}`;
  const asUtc = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    hour,
    minute,
    Number(parts.second),
  );
  const offsetMin = Math.round((asUtc - Math.floor(at / 1000) * 1000) / 60_000);
  const weekday = WEEKDAYS[parts.weekday ?? ''];
  if (!weekday) throw new Error(`unexpected weekday "${parts.weekday}" from Intl for ${timeZone}`);
  return { date, weekday, minute: hour * 60 + minute, offsetMin };
}

/** "08:30" -> 510; "24:00" -> 1440. */
export function clockMinutes(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m) throw new Error(`not a HH:MM time: "${hhmm}"`);
  return Number(m[1]) * 60 + Number(m[2]);
}

export type HoursReason = 'open' | 'closed_day' | 'closure' | 'lunch' | 'outside_hours';

/** Is the clinic open at `at` (ms since the epoch), and why (not). */
export function openAt(hours: ClinicHours, at: number): { open: boolean; reason: HoursReason; wall: WallClock } {
  const wall = wallClock(at, hours.timezone);
  if (hours.closures?.some((c) => c.date === wall.date)) return { open: false, reason: 'closure', wall };
  const lunch = hours.lunch;
  if (lunch) {
    const s = clockMinutes(lunch.start);
    const e = clockMinutes(lunch.end);
    if (e > s && wall.minute >= s && wall.minute < e) return { open: false, reason: 'lunch', wall };
  }
  const day = hours.weekly[wall.weekday] ?? [];
  if (day.length === 0) return { open: false, reason: 'closed_day', wall };
  for (const iv of day) {
    const o = clockMinutes(iv.open);
    const c = clockMinutes(iv.close);
    if (c > o && wall.minute >= o && wall.minute < c) return { open: true, reason: 'open', wall };
  }
  return { open: false, reason: 'outside_hours', wall };
}

/**
 * Problems the schema cannot see: intervals whose close is not after their
 * open, overlapping intervals, a lunch that ends before it starts. Each names
 * the field, the value and what is accepted; an empty list means fine.
 */
export function checkHours(
  hours: Pick<ClinicHours, 'weekly' | 'lunch'>,
): { path: string; value: string; expected: string }[] {
  const out: { path: string; value: string; expected: string }[] = [];
  for (const [day, list] of Object.entries(hours.weekly)) {
    const sorted = (list ?? []).map((iv, i) => ({ i, o: clockMinutes(iv.open), c: clockMinutes(iv.close), iv }));
    for (const s of sorted) {
      if (s.c <= s.o)
        out.push({
          path: `/hours/weekly/${day}/${s.i}`,
          value: `${s.iv.open}-${s.iv.close}`,
          expected: 'close after open on the same day (use 24:00 for midnight)',
        });
    }
    sorted.sort((a, b) => a.o - b.o);
    for (let k = 1; k < sorted.length; k++) {
      const prev = sorted[k - 1];
      const cur = sorted[k];
      if (prev && cur && cur.o < prev.c)
        out.push({
          path: `/hours/weekly/${day}/${cur.i}`,
          value: `${cur.iv.open}-${cur.iv.close}`,
          expected: `an interval not overlapping ${prev.iv.open}-${prev.iv.close}`,
        });
    }
  }
  if (hours.lunch && clockMinutes(hours.lunch.end) <= clockMinutes(hours.lunch.start))
    out.push({
      path: '/hours/lunch',
      value: `${hours.lunch.start}-${hours.lunch.end}`,
      expected: 'a lunch end after its start',
    });
  return out;
}
