/**
 * The live stream's ring and heartbeat without a server: what a client resuming after an id gets (the
 * messages since, filtered to its clinic, or reset when they are gone or of another run), the 15 s
 * keep-alive comment (fake timers), and the end of a stream at its session's absolute expiry.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FleetBus } from '../bus.js';
import type { Fleet } from '../fleet.js';
import { LiveStream } from './live.js';

function fakeReply() {
  const written: string[] = [];
  let ended = false;
  const raw = {
    writableLength: 0,
    writeHead: () => undefined,
    write: (s: string) => {
      written.push(s);
      return true;
    },
    on: () => undefined,
    end: () => {
      ended = true;
    },
    destroy: () => undefined,
  };
  return { reply: { hijack: () => undefined, raw } as never, written, ended: () => ended };
}

const admin = { user: 'admin', role: 'admin' as const, clinicId: null };
const nora = { user: 'nora', role: 'clinic' as const, clinicId: 'north' };

describe('LiveStream', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('replays what a client missed, to its clinic only, or says reset when the ring lost it', () => {
    const live = new LiveStream({} as Fleet, 5);
    for (let i = 1; i <= 4; i++) live.publish('event', { i }, i % 2 ? 'north' : 'south');
    const missedAll = live.missed(`${live.run}.1`, { clinicId: null });
    expect(missedAll?.map((t) => /"i":(\d)/.exec(t)?.[1])).toEqual(['2', '3', '4']);
    const missedNorth = live.missed(`${live.run}.1`, { clinicId: 'north' });
    expect(missedNorth?.map((t) => /"i":(\d)/.exec(t)?.[1])).toEqual(['3']);
    expect(live.missed(`${live.run}.4`, { clinicId: null })).toEqual([]);
    for (let i = 5; i <= 9; i++) live.publish('event', { i }, 'north');
    expect(live.missed(`${live.run}.2`, { clinicId: null })).toBeNull(); // 3 is gone: the ring holds 5-9
    expect(live.missed(`${live.run}.4`, { clinicId: null })).toHaveLength(5);
    expect(live.missed(`${live.run}.99`, { clinicId: null })).toBeNull();
    expect(live.missed('otherrun.4', { clinicId: null })).toBeNull();
    expect(live.missed('garbage', { clinicId: null })).toBeNull();
  });

  it("tells each clinic's pages that its call-back list changed (calllog), and no other clinic's", async () => {
    const bus = new FleetBus();
    const live = new LiveStream({ bus, store: { listBoxes: async () => [] } } as unknown as Fleet, 10);
    await live.start();
    try {
      live.publish('event', { i: 0 }, 'north'); // id 1: the point both clients resume from
      bus.emit('calllog.changed', { clinicIds: ['north', 'south'] });
      await vi.waitFor(() => expect(live.missed(`${live.run}.1`, { clinicId: null })).toHaveLength(2));
      const north = live.missed(`${live.run}.1`, { clinicId: 'north' }) ?? [];
      expect(north).toHaveLength(1);
      expect(north[0]).toMatch(/^id: .*\nevent: calllog\ndata: \{"clinicId":"north"\}/);
    } finally {
      await live.stop();
    }
  });

  it('sends each client its clinic only, a keep-alive every 15 s, and ends a stream at its session expiry', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-01T10:00:00.000Z') });
    const live = new LiveStream({ bus: { removeAll: () => undefined } } as unknown as Fleet, 10);
    // start() needs a store; the heartbeat alone is armed here as start() arms it.
    (live as unknown as { heartbeat: NodeJS.Timeout }).heartbeat = setInterval(
      () => (live as unknown as { beat(): void }).beat(),
      15_000,
    );
    const a = fakeReply();
    const n = fakeReply();
    live.attach(a.reply, admin, undefined);
    live.attach(n.reply, nora, undefined, { idHash: 'h', expiresAt: '2026-12-01T10:00:40.000Z' });
    live.publish('presence', { deviceId: 'd1' }, 'south');
    live.publish('presence', { deviceId: 'd2' }, 'north');
    expect(a.written.filter((t) => t.startsWith('id:'))).toHaveLength(2);
    expect(n.written.filter((t) => t.startsWith('id:'))).toEqual([expect.stringContaining('"d2"')]);
    vi.advanceTimersByTime(15_000);
    expect(a.written.at(-1)).toBe(': keep-alive\n\n');
    expect(n.written.at(-1)).toBe(': keep-alive\n\n');
    vi.advanceTimersByTime(30_000); // past nora's session expiry (10:00:40)
    expect(n.ended()).toBe(true);
    expect(a.ended()).toBe(false);
    expect(live.size).toBe(1);
    live.endSession('h');
    await live.stop();
    expect(a.ended()).toBe(true);
  });
});
