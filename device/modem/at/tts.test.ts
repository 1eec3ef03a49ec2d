import { describe, expect, it } from 'vitest';
import { formatTtsPlay, formatTtsStop, parseTtsUrc, ttsUrcPrefix } from './tts.js';
import { matchUrc } from './urc.js';

describe('modem text-to-speech commands (SIMCom AT+CTTS, Quectel AT+QTTS)', () => {
  it('formats play (ASCII mode 2) and stop', () => {
    expect(formatTtsPlay('AT+CTTS', 'We are closed. Please leave a message.')).toBe(
      'AT+CTTS=2,"We are closed. Please leave a message."',
    );
    expect(formatTtsPlay('AT+QTTS', 'Hello')).toBe('AT+QTTS=2,"Hello"');
    expect(formatTtsStop('AT+QTTS')).toBe('AT+QTTS=0');
    expect(ttsUrcPrefix('AT+CTTS')).toBe('+CTTS:');
  });

  it('refuses text mode 2 cannot carry: a double quote, non-ASCII, empty, too long', () => {
    expect(() => formatTtsPlay('AT+CTTS', 'say "hi"')).toThrow(/double quote/);
    expect(() => formatTtsPlay('AT+CTTS', 'Grüße')).toThrow(/printable ASCII/);
    expect(() => formatTtsPlay('AT+CTTS', '')).toThrow(/empty/);
    expect(() => formatTtsPlay('AT+CTTS', 'a'.repeat(501))).toThrow(/at most 500/);
  });

  it('parses the done URC of both vendors, through the URC table too', () => {
    expect(parseTtsUrc('+CTTS: 0')).toEqual({ vendor: 'CTTS', status: 0 });
    expect(parseTtsUrc('+CTTS:0')).toEqual({ vendor: 'CTTS', status: 0 });
    expect(parseTtsUrc('+QTTS: 1')).toEqual({ vendor: 'QTTS', status: 1 });
    expect(parseTtsUrc('+CTTS: x')).toBeNull();
    expect(matchUrc('+QTTS: 0')).toEqual({ type: 'tts', status: 0 });
    expect(matchUrc('+CTTS: 0')).toEqual({ type: 'tts', status: 0 });
  });
});
