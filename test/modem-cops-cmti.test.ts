/**
 * The driver with +COPS and +CMTI as modems send them (3GPP TS 27.007 7.3,
 * 27.005 3.4.1), over a scripted byte stream on fake timers: the operator
 * format is set at start-up, a modem that still answers with a number has
 * its operator reported as an MCC/MNC code, and a +CMTI whose index is not
 * a location number never turns into a read.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { modemTelemetry } from '../device/features/modem.js';
import { encodeDeliver } from '../device/modem/at/pdu.js';
import type { SmsReceived } from '../device/modem/types.js';
import { genericModem, startedDriver } from './helpers/modem-fake-stream.js';

describe('driver: +COPS format and +CMTI index', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sets AT+COPS=3,0 at start-up, before it asks AT+COPS?, and reports the name', async () => {
    let format = 2;
    const { modem, stream } = await startedDriver(
      genericModem((cmd) => {
        const m = /^AT\+COPS=3,(\d)$/.exec(cmd);
        if (m) {
          format = Number(m[1]);
          return '\r\nOK\r\n';
        }
        if (cmd === 'AT+COPS?')
          return `\r\n+COPS: 0,${format},"${format === 2 ? '310260' : 'T-Mobile'}",7\r\n\r\nOK\r\n`;
        return undefined;
      }),
    );
    const set = stream.written.indexOf('AT+COPS=3,0');
    expect(set).toBeGreaterThan(stream.written.indexOf('AT+CPIN?'));
    expect(set).toBeLessThan(stream.written.indexOf('AT+COPS?'));
    expect(modem.network).toMatchObject({ operator: 'T-Mobile', operatorCode: null });
    expect(modemTelemetry(modem).operator).toBe('T-Mobile');
    await modem.stop();
  });

  it.each([
    ['quoted, with AcT', '+COPS: 0,2,"310260",7', '310-260'],
    ['bare, without AcT', '+COPS: 0,2,23415', '234-15'],
    ['a code in the name field', '+COPS: 0,0,"46000",7', '460-00'],
  ])(
    'a modem that still answers numeric (%s) has its operator reported as a code, not a name',
    async (_w, line, code) => {
      const { modem } = await startedDriver(
        genericModem((cmd) => {
          if (cmd === 'AT+COPS=3,0') return '\r\nERROR\r\n'; // refused: start-up goes on
          if (cmd === 'AT+COPS?') return `\r\n${line}\r\n\r\nOK\r\n`;
          return undefined;
        }),
      );
      expect(modem.state).toBe('ready');
      expect(modem.network.operator).toBeNull();
      expect(modem.network.operatorCode).toBe(code);
      expect(modemTelemetry(modem).operator).toBe(code);
      await modem.stop();
    },
  );

  it('a +CMTI with a negative or non-numeric index is discarded, never read; a valid one is read', async () => {
    const pdu = encodeDeliver('+15557654321', 'hello', new Date('2026-11-26T10:00:00Z'));
    const { modem, stream } = await startedDriver(
      genericModem((cmd) => {
        if (cmd === 'AT+CMGR=2') return `\r\n+CMGR: 0,,${pdu.length / 2 - 1}\r\n${pdu}\r\n\r\nOK\r\n`;
        if (cmd.startsWith('AT+CMGR=')) return '\r\n+CMS ERROR: 321\r\n';
        return undefined;
      }),
    );
    const got: SmsReceived[] = [];
    const discarded: string[] = [];
    modem.on('sms', (s) => got.push(s));
    modem.on('discarded', (l) => discarded.push(l));
    const bad = ['+CMTI: "SM",-1', '+CMTI: "SM",abc', '+CMTI: "ME",', '+CMTI: "MT",-5'];
    stream.push(bad.map((l) => `\r\n${l}\r\n`).join(''));
    await vi.advanceTimersByTimeAsync(100);
    expect(stream.written.filter((c) => c.startsWith('AT+CMGR'))).toEqual([]);
    expect(discarded).toEqual(bad);
    stream.push('\r\n+CMTI: "SM",2\r\n');
    await vi.advanceTimersByTimeAsync(100);
    expect(stream.written.filter((c) => c.startsWith('AT+CMGR'))).toEqual(['AT+CMGR=2']);
    expect(got).toMatchObject([{ index: 2, from: '+15557654321', text: 'hello' }]);
    await modem.stop();
  });
});
