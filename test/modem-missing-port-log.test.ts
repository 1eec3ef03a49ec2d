/** A missing modem port is logged once, at warn, with its reason, not at info at every reopening attempt. */
import { describe, expect, it } from 'vitest';
import { modemConfig } from '../device/modem/config.js';
import { createModem } from '../device/modem/driver.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';

const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });

describe('a modem port that is not there', () => {
  it('is logged once at warn while the driver keeps trying', async () => {
    const modem = createModem(
      modemConfig({ path: '/dev/callbox-test-no-such-modem', reopenMinMs: 50, reopenMaxMs: 1000 }),
    );
    await modem.start();
    try {
      const end = Date.now() + 10_000;
      while (modem.stats.reopens < 4) {
        if (Date.now() > end) throw new Error('the driver did not retry');
        await new Promise((r) => setTimeout(r, 20));
      }
      const lines = logs.lines.filter((l) => String(l.msg).startsWith('modem '));
      const disconnected = lines.filter((l) => String(l.msg).startsWith('modem disconnected'));
      expect(disconnected).toHaveLength(1);
      expect(disconnected[0]).toMatchObject({ level: 'warn' });
      expect(String(disconnected[0]?.msg)).toContain('cannot open /dev/callbox-test-no-such-modem');
      expect(lines.filter((l) => String(l.msg) === 'modem opening')).toHaveLength(1); // the first try only
    } finally {
      await modem.stop();
    }
  });
});
