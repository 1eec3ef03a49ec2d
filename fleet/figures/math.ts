/**
 * The arithmetic of the call figures, pure (no IO): which buckets a call
 * falls in on its clinic's wall clock, the answer-time histogram, and the
 * figures derived from stored counters. The formulas are the ones
 * docs/FIGURES.md gives; its definitions and this file change together.
 */
import type { Static } from '@sinclair/typebox';
import { type Weekday, wallClock } from '../../shared/clinic-hours.js';
import { ANSWER_BUCKETS_S, type FigureBucket, type FiguresSchema } from '../../shared/contract/figures-ops.js';
import type { Counter } from './migrations.js';

export type Figures = Static<typeof FiguresSchema>;
export type Counters = Record<Counter, number>;

export const HIST_SIZE = ANSWER_BUCKETS_S.length + 1;
const WEEKDAY_INDEX: Record<Weekday, number> = { mon: 0, tue: 1, wed: 2, thu: 3, fri: 4, sat: 5, sun: 6 };
const DAY_MS = 86_400_000;

export function zeroCounters(): Counters {
  return {
    offered: 0,
    answered: 0,
    abandoned: 0,
    shortAbandoned: 0,
    missed: 0,
    rolledOver: 0,
    voicemail: 0,
    voicemailFailed: 0,
    answeredInTarget: 0,
    repeatCalls: 0,
    followupSmsSent: 0,
    followupSmsFailed: 0,
    answerMsSum: 0,
  };
}

export function zeroHistogram(): number[] {
  return Array.from({ length: HIST_SIZE }, () => 0);
}

/** The histogram bucket of an answer time: the first whose upper bound (seconds, inclusive) holds it, else the last. */
export function histIndex(answerMs: number): number {
  const i = ANSWER_BUCKETS_S.findIndex((s) => answerMs <= s * 1000);
  return i < 0 ? ANSWER_BUCKETS_S.length : i;
}

/**
 * The 90th percentile answer time from the histogram: the upper bound of the bucket holding the
 * nearest-rank 90th percentile (rank ceil(0.9 n)); a percentile in the open last bucket reads as the top
 * bound (300 s). Null when nothing was answered.
 */
export function p90FromHistogram(hist: readonly number[]): number | null {
  const n = hist.reduce((a, b) => a + b, 0);
  if (n === 0) return null;
  const rank = Math.ceil(0.9 * n);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i] ?? 0;
    if (seen >= rank) return ANSWER_BUCKETS_S[Math.min(i, ANSWER_BUCKETS_S.length - 1)] ?? null;
  }
  return null;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/** The figures of stored counters (docs/FIGURES.md). */
export function deriveFigures(c: Counters, hist: readonly number[]): Figures {
  const base = c.offered - c.shortAbandoned;
  return {
    offered: c.offered,
    answered: c.answered,
    abandoned: c.abandoned,
    shortAbandoned: c.shortAbandoned,
    missed: c.missed,
    rolledOver: c.rolledOver,
    voicemail: c.voicemail,
    voicemailFailed: c.voicemailFailed,
    answeredInTarget: c.answeredInTarget,
    repeatCalls: c.repeatCalls,
    followupSmsSent: c.followupSmsSent,
    followupSmsFailed: c.followupSmsFailed,
    asaS: c.answered > 0 ? Math.round(c.answerMsSum / c.answered) / 1000 : null,
    p90AnswerS: p90FromHistogram(hist),
    serviceLevel: ratio(c.answeredInTarget, base),
    abandonRate: ratio(c.abandoned - c.shortAbandoned, base),
    answerHistogram: [...hist],
  };
}

export function addInto(into: Counters, more: Counters): void {
  for (const k of Object.keys(into) as Counter[]) into[k] += more[k];
}

/** "2026-11-26" + n days (calendar arithmetic, no time zone). */
export function addDays(date: string, n: number): string {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y ?? 0, (m ?? 1) - 1, d ?? 1) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Monday 0 ... Sunday 6 of a calendar date. */
export function weekdayOf(date: string): number {
  const [y, m, d] = date.split('-').map(Number);
  return (new Date(Date.UTC(y ?? 0, (m ?? 1) - 1, d ?? 1)).getUTCDay() + 6) % 7;
}

/** The Monday of a date's week. */
export function weekStart(date: string): string {
  return addDays(date, -weekdayOf(date));
}

export interface LocalBuckets {
  hour: string;
  day: string;
  week: string;
  /** Monday 0 ... Sunday 6. */
  weekday: number;
  hourOfDay: number;
}

/** The buckets an instant falls in on the clock of `timeZone` ("YYYY-MM-DDTHH:00" bucket starts). */
export function localBuckets(atMs: number, timeZone: string): LocalBuckets {
  const w = wallClock(atMs, timeZone);
  const hourOfDay = Math.floor(w.minute / 60);
  const hh = String(hourOfDay).padStart(2, '0');
  return {
    hour: `${w.date}T${hh}:00`,
    day: `${w.date}T00:00`,
    week: `${weekStart(w.date)}T00:00`,
    weekday: WEEKDAY_INDEX[w.weekday],
    hourOfDay,
  };
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** Every bucket start of a grain between two local dates (inclusive), in order (calendar stepping, no Intl). */
export function bucketStarts(grain: FigureBucket, from: string, to: string): string[] {
  const out: string[] = [];
  const [ty, tm, td] = to.split('-').map(Number);
  const last = Date.UTC(ty ?? 0, (tm ?? 1) - 1, td ?? 1);
  const first = grain === 'week' ? weekStart(from) : from;
  const [fy, fm, fd] = first.split('-').map(Number);
  const step = grain === 'week' ? 7 * DAY_MS : DAY_MS;
  const d = new Date(Date.UTC(fy ?? 0, (fm ?? 1) - 1, fd ?? 1));
  for (; d.getTime() <= last; d.setTime(d.getTime() + step)) {
    const day = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
    if (grain === 'hour') for (let h = 0; h < 24; h++) out.push(`${day}T${pad2(h)}:00`);
    else out.push(`${day}T00:00`);
  }
  return out;
}

/** The local date of an instant in a zone. */
export function localDate(atMs: number, timeZone: string): string {
  return wallClock(atMs, timeZone).date;
}

/**
 * The instant a wall-clock date starts in a zone (the first instant whose local date is `date`): found
 * from the zone's offset around it (DST-safe to the minute, no date library needed).
 */
export function startOfLocalDate(date: string, timeZone: string): number {
  const [y, m, d] = date.split('-').map(Number);
  const utcMidnight = Date.UTC(y ?? 0, (m ?? 1) - 1, d ?? 1);
  let guess = utcMidnight - wallClock(utcMidnight, timeZone).offsetMin * 60_000;
  // The offset at the guess may differ (a DST change that day): adjust once more.
  guess = utcMidnight - wallClock(guess, timeZone).offsetMin * 60_000;
  // Back to the first instant of the date when midnight itself does not exist (clocks skip it).
  while (wallClock(guess - 60_000, timeZone).date === date) guess -= 60_000;
  while (wallClock(guess, timeZone).date !== date) guess += 60_000;
  return guess;
}
