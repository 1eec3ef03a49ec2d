import { describe, expect, it } from 'vitest';
import { formatCpinEntry, parseCpin, parseIdentity, simStateFromError } from './basic.js';
import { parseFinal } from './results.js';
import { formatCusd, parseCusd } from './ussd.js';

describe('identity (27.007 5.1-5.6)', () => {
  it.each([
    ['SIM7600 CGMI', ['SIMCOM INCORPORATED'], '+CGMI:', 'SIMCOM INCORPORATED'],
    ['SIM7600 CGMR (prefixed)', ['+CGMR: LE20B04SIM7600M22'], '+CGMR:', 'LE20B04SIM7600M22'],
    ['EC25 CGMM', ['EC25'], '+CGMM:', 'EC25'],
    ['Huawei CGSN', ['IMEI: 867584030123456'], '+CGSN:', '867584030123456'],
    ['quoted CGMI', ['+CGMI: "Telit"'], '+CGMI:', 'Telit'],
    ['nothing', [], '+CIMI:', null],
  ])('%s', (_m, lines, prefix, want) => {
    expect(parseIdentity(lines, prefix)).toBe(want);
  });
});

describe('+CPIN (27.007 8.3)', () => {
  it.each([
    ['+CPIN: READY', 'ready'],
    ['+CPIN: SIM PIN', 'pin'],
    ['+CPIN: SIM PUK', 'puk'],
    ['+CPIN: NOT INSERTED', 'missing'],
    ['+CPIN: "READY"', 'ready'],
    ['+CPIN: PH-NET PIN', 'other'],
  ])('%s -> %s', (line, state) => {
    expect(parseCpin(line).state).toBe(state);
  });

  it('reads SIM state from +CME ERROR, numeric and verbose', () => {
    expect(simStateFromError(parseFinal('+CME ERROR: 10') as never)?.state).toBe('missing');
    expect(simStateFromError(parseFinal('+CME ERROR: SIM not inserted') as never)?.state).toBe('missing');
    expect(simStateFromError(parseFinal('+CME ERROR: SIM PIN required') as never)?.state).toBe('pin');
    expect(simStateFromError(parseFinal('ERROR') as never)).toBeNull();
    expect(() => formatCpinEntry('12a4')).toThrow(/4 to 8 digits/);
  });
});

describe('final results (V.250 5.7.2, 27.007 9.2, 27.005 3.2.5)', () => {
  it.each([
    ['OK', { kind: 'ok' }],
    ['ERROR', { kind: 'error' }],
    ['NO CARRIER', { kind: 'no_carrier' }],
    ['BUSY', { kind: 'busy' }],
    ['NO ANSWER', { kind: 'no_answer' }],
    ['NO DIALTONE', { kind: 'no_dialtone' }],
    ['CONNECT', { kind: 'connect' }],
    ['CONNECT 9600', { kind: 'connect' }],
    ['+CME ERROR: 30', { kind: 'cme', code: 30, text: 'no network service' }],
    ['+CME ERROR: SIM busy', { kind: 'cme', code: 14, text: 'SIM busy' }],
    ['+CME ERROR: vendor special', { kind: 'cme', code: null, text: 'vendor special' }],
    ['+CMS ERROR: 500', { kind: 'cms', code: 500 }],
    ['+CMS ERROR: 331', { kind: 'cms', code: 331, text: 'no network service' }],
  ])('%s', (line, want) => {
    expect(parseFinal(line)).toMatchObject(want);
  });
  it('is not fooled by look-alikes', () => {
    expect(parseFinal('OK?')).toBeNull();
    expect(parseFinal('+CSQ: 1,2')).toBeNull();
    expect(parseFinal('CONNECTED')).toBeNull();
  });
});

describe('USSD (27.007 7.15)', () => {
  it('formats plain and Huawei packed codes', () => {
    expect(formatCusd('*100#', false)).toBe('AT+CUSD=1,"*100#",15');
    expect(formatCusd('*100#', true)).toBe('AT+CUSD=1,"AA180C3602",15');
    expect(() => formatCusd('*100#";ATH', false)).toThrow(/USSD code/);
  });
  it.each([
    ['SIM800L', '+CUSD: 0,"Your balance is 5.00",15', false, { status: 0, text: 'Your balance is 5.00' }],
    ['EC25 no text', '+CUSD: 4', false, { status: 4, text: null }],
    ['Huawei packed', '+CUSD: 0,"D9775D0E6286E7749050FEBECFD3EE33685A9ECF",15', true, { status: 0 }],
    ['UCS-2 (dcs 72)', '+CUSD: 0,"0048006900210020",72', false, { status: 0, text: 'Hi! ' }],
  ])('reads %s', (_m, line, packed, want) => {
    expect(parseCusd(line, packed)).toMatchObject(want);
  });
  it('decodes a Huawei packed answer', () => {
    const packed = '+CUSD: 0,"C8329BFD06",15';
    expect(parseCusd(packed, true)?.text).toBe('Hello');
  });
});
