import { describe, expect, it } from 'vitest';
import { bucketStarts, histIndex, localBuckets, p90FromHistogram, startOfLocalDate, weekStart } from './math.js';

describe('figures arithmetic', () => {
  it('puts answer times in the bucket whose upper bound holds them', () => {
    expect(histIndex(0)).toBe(0);
    expect(histIndex(5000)).toBe(0);
    expect(histIndex(5001)).toBe(1);
    expect(histIndex(300_000)).toBe(12);
    expect(histIndex(300_001)).toBe(13);
  });

  it('reads p90 as the bound of the bucket holding the nearest-rank 90th percentile', () => {
    expect(p90FromHistogram([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).toBeNull();
    // 10 calls: rank 9. Nine within 5 s, one at 60 s -> 5.
    expect(p90FromHistogram([9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0])).toBe(5);
    // 8 within 5 s, 2 at 60 s -> rank 9 falls in the 60 s bucket.
    expect(p90FromHistogram([8, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0])).toBe(60);
    expect(p90FromHistogram([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3])).toBe(300);
  });

  it('buckets on the clinic wall clock across a DST change, weeks from Monday', () => {
    // New York, 2026-03-08: clocks go from 02:00 to 03:00.
    expect(localBuckets(Date.parse('2026-03-08T06:59:00Z'), 'America/New_York').hour).toBe('2026-03-08T01:00');
    expect(localBuckets(Date.parse('2026-03-08T07:00:00Z'), 'America/New_York').hour).toBe('2026-03-08T03:00');
    const b = localBuckets(Date.parse('2026-03-08T07:00:00Z'), 'America/New_York');
    expect(b).toMatchObject({ day: '2026-03-08T00:00', week: '2026-03-02T00:00', weekday: 6, hourOfDay: 3 });
    expect(weekStart('2026-03-02')).toBe('2026-03-02');
    expect(startOfLocalDate('2026-03-08', 'America/New_York')).toBe(Date.parse('2026-03-08T05:00:00Z'));
    expect(startOfLocalDate('2026-03-09', 'America/New_York')).toBe(Date.parse('2026-03-09T04:00:00Z'));
    expect(startOfLocalDate('2026-11-24', 'Asia/Kolkata')).toBe(Date.parse('2026-11-23T18:30:00Z'));
  });

  it('lists every bucket of a range', () => {
    expect(bucketStarts('hour', '2026-03-08', '2026-03-08')).toHaveLength(24);
    expect(bucketStarts('day', '2026-02-27', '2026-03-02')).toEqual([
      '2026-02-27T00:00',
      '2026-02-28T00:00',
      '2026-03-01T00:00',
      '2026-03-02T00:00',
    ]);
    expect(bucketStarts('week', '2026-03-04', '2026-03-16')).toEqual([
      '2026-03-02T00:00',
      '2026-03-09T00:00',
      '2026-03-16T00:00',
    ]);
  });
});
