import { describe, expect, it } from 'vitest';
import { background } from './background.js';
import { getLogger, MemoryLogStream, setupLogging } from './log.js';
import { waitFor } from './wait.js';

describe('background', () => {
  it('logs a failed task with what it was and reports it; a failing report is logged too, nothing is unhandled', async () => {
    const logs = new MemoryLogStream();
    setupLogging({ level: 'info', destination: logs });
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      const reported: unknown[] = [];
      const log = getLogger('test:background');
      background(Promise.reject(new Error('disk gone')), log, 'reopen alert a1', (e) => {
        reported.push(e);
      });
      background(Promise.reject(new Error('store locked')), log, 'flush', async () => {
        throw new Error('alert store down too');
      });
      background(Promise.resolve(7), log, 'fine');
      const msgs = () => logs.lines.filter((l) => l.ns === 'test:background').map((l) => l.msg);
      await waitFor(() => msgs().length >= 3, 'three log lines');
      expect(reported.map((e) => (e as Error).message)).toEqual(['disk gone']);
      expect(msgs()).toEqual([
        'background task failed: reopen alert a1',
        'background task failed: flush',
        'reporting a failed background task failed: flush',
      ]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
