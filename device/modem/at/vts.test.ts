import { describe, expect, it } from 'vitest';
import { formatVts } from './vts.js';

describe('AT+VTS, the tone before recording (27.007 C.11)', () => {
  it('one DTMF character and a duration in tenths of a second', () => {
    expect(formatVts('1', 500)).toBe('AT+VTS=1,5');
    expect(formatVts('#', 100)).toBe('AT+VTS=#,1');
  });

  it('refuses what the modem cannot take', () => {
    expect(() => formatVts('12', 500)).toThrow(/one DTMF character/);
    expect(() => formatVts('1', 30_000)).toThrow(/100 to 25500 ms/);
  });
});
