import { describe, expect, it } from 'vitest';
import { formatCcfc, parseCcfc, parseCcfcList } from './forwarding.js';

describe('AT+CCFC (27.007 7.11)', () => {
  it('formats every mode', () => {
    expect(formatCcfc({ reason: 'unconditional', mode: 'query' })).toBe('AT+CCFC=0,2');
    expect(formatCcfc({ reason: 'busy', mode: 'register', number: '+15551234567' })).toBe(
      'AT+CCFC=1,3,"+15551234567",145,1',
    );
    expect(formatCcfc({ reason: 'no_reply', mode: 'register', number: '+15551234567', timeS: 20 })).toBe(
      'AT+CCFC=2,3,"+15551234567",145,1,,,20',
    );
    expect(formatCcfc({ reason: 'not_reachable', mode: 'erase' })).toBe('AT+CCFC=3,4');
    expect(formatCcfc({ reason: 'all', mode: 'disable' })).toBe('AT+CCFC=4,0');
    expect(formatCcfc({ reason: 'all_conditional', mode: 'enable', classx: 1 })).toBe('AT+CCFC=5,1,,,1');
  });

  it('refuses bad input with a clear message', () => {
    expect(() => formatCcfc({ reason: 'no_reply', mode: 'register', number: '+1555', timeS: 45 })).toThrow(/1 to 30/);
    expect(() => formatCcfc({ reason: 'busy', mode: 'register' })).toThrow(/needs a number/);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    expect(() => formatCcfc({ reason: 'sometimes' as any, mode: 'query' })).toThrow(/not one of/);
    expect(() => formatCcfc({ reason: 'busy', mode: 'register', number: 'abc' })).toThrow(/not a phone number/);
  });

  it.each([
    ['SIM800L not active', '+CCFC: 0,7', { enabled: false, classx: 7, number: null, time: null }],
    ['EC25 active voice', '+CCFC: 1,1,"+447700900123",145', { enabled: true, classx: 1, number: '+447700900123' }],
    ['no reply with time', '+CCFC: 1,1,"+447700900123",145,,,20', { enabled: true, time: 20 }],
    ['Huawei spaced', '+CCFC: 1, 1, "07700900123", 129', { enabled: true, number: '07700900123' }],
    ['registered but disabled', '+CCFC: 0,1,"+15551234567",145', { enabled: false, number: '+15551234567' }],
  ])('reads %s', (_m, line, want) => {
    expect(parseCcfc(line, 'busy')).toMatchObject({ reason: 'busy', ...want });
  });

  it('reads multi-class answers', () => {
    const l = parseCcfcList(['+CCFC: 1,1,"+15551234567",145', '+CCFC: 0,4', 'junk'], 'unconditional');
    expect(l.map((s) => [s.classx, s.enabled])).toEqual([
      [1, true],
      [4, false],
    ]);
  });
});
