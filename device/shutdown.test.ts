import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { getLogger, MemoryLogStream, setupLogging } from '../shared/log.js';
import { FORCED_EXIT_MARGIN_MS, FORCED_EXIT_MS, shutdownHandler } from './shutdown.js';

const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });
const log = getLogger('test:shutdown');

afterEach(() => {
  vi.useRealTimers();
});

describe('box shutdown', () => {
  it('gives up on a hung stop after FORCED_EXIT_MS (exit 1, logged), not a moment before', async () => {
    vi.useFakeTimers();
    const exits: number[] = [];
    const shutdown = shutdownHandler({ stop: () => new Promise(() => undefined), exit: (c) => exits.push(c), log });
    void shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(FORCED_EXIT_MS - 1);
    expect(exits).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(exits).toEqual([1]);
    expect(logs.lines.some((l) => l.msg === 'shutdown took longer than 15 s: exiting')).toBe(true);
  });

  it('a clean stop exits 0 and leaves no timer; a second signal exits 1 at once', async () => {
    vi.useFakeTimers();
    const exits: number[] = [];
    let finish: () => void = () => undefined;
    const shutdown = shutdownHandler({
      stop: () =>
        new Promise<void>((r) => {
          finish = r;
        }),
      exit: (c) => exits.push(c),
      log,
    });
    const first = shutdown('SIGTERM');
    await vi.advanceTimersByTimeAsync(1000);
    await shutdown('SIGINT');
    expect(exits).toEqual([1]);
    finish();
    await first;
    expect(exits).toEqual([1, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a failing stop exits 1 at once', async () => {
    vi.useFakeTimers();
    const exits: number[] = [];
    await shutdownHandler({ stop: () => Promise.reject(new Error('store locked')), exit: (c) => exits.push(c), log })(
      'SIGTERM',
    );
    expect(exits).toEqual([1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the forced exit comes well before systemd’s SIGKILL (TimeoutStopSec of the unit)', () => {
    const unit = readFileSync(join(import.meta.dirname, '..', 'systemd', 'callbox-device.service'), 'utf8');
    const m = /^TimeoutStopSec=(\d+)$/m.exec(unit);
    expect(m, 'TimeoutStopSec in callbox-device.service').not.toBeNull();
    const killAfterMs = Number(m?.[1]) * 1000;
    expect(FORCED_EXIT_MS + FORCED_EXIT_MARGIN_MS).toBeLessThanOrEqual(killAfterMs);
  });
});
