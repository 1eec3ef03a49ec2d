import { describe, expect, it } from 'vitest';
import { seeded } from '../../test/helpers/seeded.js';
import { backoffDelay, isLoopbackHost, tlsOptionsFor } from './link.js';

describe('reconnect backoff', () => {
  it('doubles from the minimum, is capped, and is jittered within [base/2, base]', () => {
    const rand = seeded(7);
    for (let attempt = 0; attempt < 40; attempt++) {
      const base = Math.min(60_000, 1000 * 2 ** attempt);
      const d = backoffDelay(attempt, 1000, 60_000, rand);
      expect(d).toBeGreaterThanOrEqual(base / 2);
      expect(d).toBeLessThanOrEqual(base);
    }
    expect(backoffDelay(0, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffDelay(100, 1000, 60_000, () => 0.999999)).toBe(60_000);
  });

  it('an outage of five hours costs a few hundred attempts, spread apart (no thundering herd)', () => {
    const rand = seeded(11);
    let t = 0;
    let attempts = 0;
    while (t < 5 * 3600_000) {
      t += backoffDelay(attempts++, 1000, 60_000, rand);
    }
    expect(attempts).toBeGreaterThan(5 * 60); // at least one try every minute
    expect(attempts).toBeLessThan(5 * 60 * 2 + 10); // at most one every 30 s once capped
    // Two boxes starting together drift apart.
    const a = seeded(1);
    const b = seeded(2);
    const da = Array.from({ length: 10 }, (_, i) => backoffDelay(i, 1000, 60_000, a));
    const db = Array.from({ length: 10 }, (_, i) => backoffDelay(i, 1000, 60_000, b));
    expect(da).not.toEqual(db);
  });
});

describe('TLS rule', () => {
  it('allows plain MQTT only on loopback and needs a pinned CA for TLS', () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(tlsOptionsFor('mqtt://127.0.0.1:1883', null)).toEqual({});
    expect(() => tlsOptionsFor('mqtt://10.1.2.3:1883', null)).toThrow(
      /mqtt\.url: got mqtt:\/\/10\.1\.2\.3:1883, expected mqtts/,
    );
    expect(() => tlsOptionsFor('mqtts://fleet.example:8883', null)).toThrow(/no CA is pinned/);
    expect(tlsOptionsFor('mqtts://fleet.example:8883', 'PEM')).toEqual({ ca: 'PEM', rejectUnauthorized: true });
    expect(() => tlsOptionsFor('not a url', null)).toThrow(/expected a broker URL/);
  });
});
