import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FleetBusEvents } from './bus.js';
import { FleetBus } from './bus.js';
import { Presence } from './presence.js';

const status = (state: 'online' | 'offline', reason?: string) => ({
  v: 1 as const,
  state,
  at: new Date().toISOString(),
  ...(reason ? { reason } : {}),
});

describe('presence: the heartbeat timeout is the truth, status and will are hints', () => {
  let bus: FleetBus;
  let changes: FleetBusEvents['presence.changed'][];
  let presence: Presence;
  const owner = {};

  beforeEach(() => {
    vi.useFakeTimers();
    bus = new FleetBus();
    changes = [];
    bus.on('presence.changed', owner, (c) => {
      changes.push(c);
    });
    presence = new Presence(bus, undefined, { offlineAfterMs: 60_000, flushMs: 10_000 });
    presence.start();
  });
  afterEach(async () => {
    await presence.stop();
    vi.useRealTimers();
  });

  it('goes online on traffic and offline after the timeout of silence', () => {
    presence.seen('cb-1');
    expect(presence.isOnline('cb-1')).toBe(true);
    vi.advanceTimersByTime(59_000);
    expect(presence.isOnline('cb-1')).toBe(true);
    presence.seen('cb-1'); // a heartbeat resets the clock
    vi.advanceTimersByTime(59_000);
    expect(presence.isOnline('cb-1')).toBe(true);
    vi.advanceTimersByTime(20_000);
    expect(presence.isOnline('cb-1')).toBe(false);
    expect(changes.map((c) => [c.online, c.reason])).toEqual([
      [true, 'traffic'],
      [false, 'timeout'],
    ]);
  });

  it('takes a live will as offline at once, and traffic after it as online again', () => {
    presence.seen('cb-2');
    presence.status('cb-2', status('offline', 'will'), false);
    expect(presence.isOnline('cb-2')).toBe(false);
    expect(changes.at(-1)?.reason).toBe('will');
    presence.seen('cb-2');
    expect(presence.isOnline('cb-2')).toBe(true);
  });

  it('does not take a retained "online" status as a sign of life', () => {
    presence.status('cb-3', status('online'), true);
    expect(presence.isOnline('cb-3')).toBe(false);
    expect(changes).toEqual([]);
  });

  it('keeps boxes seeded from the store online only until their heartbeat times out', () => {
    presence.seed([{ deviceId: 'cb-5', lastSeen: Date.now() - 50_000 }]);
    expect(presence.isOnline('cb-5')).toBe(true);
    vi.advanceTimersByTime(15_000);
    expect(presence.isOnline('cb-5')).toBe(false);
    expect(changes).toEqual([expect.objectContaining({ deviceId: 'cb-5', online: false, reason: 'timeout' })]);
  });

  it('stops announcing to an owner once its listeners are removed', () => {
    bus.removeAll(owner);
    presence.seen('cb-4');
    expect(changes).toEqual([]);
    expect(bus.listenerCount('presence.changed')).toBe(0);
  });
});
