/**
 * Seeded noise under the whole driver (device/modem/driver.ts and the parts
 * it composes) while a command is in flight: URCs the driver acts on (RING,
 * +CLIP, +CMTI, NO CARRIER, +CCWA, ...), signal and registration reports,
 * and junk lines, cut into random serial chunks, arrive between AT+CSQ and
 * its answer. The command still gets exactly its own answer (a URC's line is
 * never taken for it), the commands the noise triggers (AT+CLCC, AT+CMGR)
 * run and end, and the driver stays ready.
 *
 * The seed is printed with any failure; CALLBOX_FUZZ_SEED=<n> replays it.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { genericModem, startedDriver } from './helpers/modem-fake-stream.js';
import { fuzzSeed, SeededRandom, withSeed } from './helpers/property.js';

describe('driver under seeded noise with a command in flight (CALLBOX_FUZZ_SEED replays)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('AT+CSQ in flight through bursts of URCs and junk: its own answer every time, the driver stays ready', async () => {
    await withSeed(fuzzSeed(), async (seed) => {
      const rnd = new SeededRandom(seed);
      let hold = false;
      const { modem, stream } = await startedDriver(
        genericModem((cmd) => {
          if (cmd === 'AT+CSQ' && hold) return null; // answered by the test, after the noise
          if (cmd.startsWith('AT+CMGR=')) return '\r\n+CMS ERROR: 321\r\n';
          return undefined;
        }),
        { ringEndMs: 5000, clipWaitMs: 300 },
        { logger: pino({ level: 'silent' }) }, // the unreadable SMS the noise announces are expected
      );
      const noise = [
        () => 'RING',
        () => `+CLIP: "+1555${String(rnd.int(10_000_000)).padStart(7, '0')}",145,,,,0`,
        () => `+CMTI: "SM",${rnd.int(30)}`,
        () => 'NO CARRIER',
        () => '+CCWA: "+15557654321",145,1',
        () => `+CREG: ${rnd.pick([1, 2, 5])}`,
        () => `^RSSI: ${rnd.int(32)}`,
        () => 'VOICE CALL: END: 000012',
        () => 'MISSED_CALL: 10:15AM +15551234567',
        () => '+CUSD: 2',
        () => 'SMS Ready',
        () => `junk ${rnd.int(1000)} "quoted,comma"`,
        () => `+CMTI: "SM",-${rnd.int(9) + 1}`,
      ];
      const signals: (number | null)[] = [];
      for (let round = 0; round < 30; round++) {
        hold = true;
        const sent = stream.written.length;
        const p = modem.refreshNetwork();
        let settled = false;
        p.then(
          () => {
            settled = true;
          },
          () => {
            settled = true;
          },
        );
        for (let i = 0; i < 20 && !stream.written.slice(sent).includes('AT+CSQ'); i++)
          await vi.advanceTimersByTimeAsync(0);
        expect(stream.written.slice(sent)).toContain('AT+CSQ');
        let text = '';
        const n = 5 + rnd.int(40);
        for (let i = 0; i < n; i++) text += `\r\n${rnd.pick(noise)()}\r\n`;
        text += '\r\n+CSQ: 20,99\r\n\r\nOK\r\n';
        const wire = Buffer.from(text);
        for (let i = 0; i < wire.length; ) {
          const k = 1 + rnd.int(48);
          stream.push(wire.subarray(i, i + k));
          i += k;
        }
        hold = false;
        await vi.advanceTimersByTimeAsync(3000); // the commands the noise asked for (AT+CLCC, AT+CMGR) run too
        expect(settled, `round ${round}: refreshNetwork never settled`).toBe(true);
        const net = await p;
        signals.push(net.signalDbm);
      }
      // +CSQ: 20 is -73 dBm; a ^RSSI in the noise may change the signal only until the next AT+CSQ answer.
      expect(signals).toEqual(signals.map(() => -73));
      expect(modem.state).toBe('ready');
      await modem.stop();
    });
  });
});
