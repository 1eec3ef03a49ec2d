import { describe, expect, it } from 'vitest';
import { csqToDbm, parseCops, parseCsq, parseHuaweiHcsq, parseHuaweiRssi, parseRegistration } from './network.js';

// Real responses; the comment names the modem they were seen from.
describe('+CREG/+CGREG/+CEREG (27.007 7.2)', () => {
  const solicited: [string, string, object][] = [
    ['SIM800L', '+CREG: 1,1', { n: 1, registration: 'home', lac: null, cellId: null }],
    ['SIM800L', '+CREG: 2,1,"1A2B","3C4D"', { n: 2, registration: 'home', lac: '1A2B', cellId: '3C4D' }],
    ['SIM7600E', '+CREG: 2,5,"3A9C","06C1D0F",7', { registration: 'roaming', lac: '3A9C', cellId: '06C1D0F', act: 7 }],
    ['EC25', '+CREG: 2,1,"2B4F","8F6A01B",7', { registration: 'home', act: 7 }],
    [
      'Huawei E3531 (spaced)',
      '+CREG: 2, 1, "00C3", "0000A13B"',
      { registration: 'home', lac: '00C3', cellId: '0000A13B' },
    ],
    ['Huawei E173 (unquoted)', '+CREG: 2,1,00C3,A13B', { registration: 'home', lac: '00C3', cellId: 'A13B' }],
    ['generic (not registered)', '+CREG: 0,0', { registration: 'not_registered', lac: null }],
    ['generic (denied)', '+CREG: 2,3', { registration: 'denied' }],
    ['EC25 (+CEREG emergency)', '+CEREG: 2,8', { kind: 'CEREG', registration: 'emergency_only' }],
    ['SIM7600 (+CGREG searching)', '+CGREG: 0,2', { kind: 'CGREG', registration: 'searching' }],
    ['lower-case hex', '+CREG: 2,1,"00c3","a13b"', { lac: '00C3', cellId: 'A13B' }],
  ];
  it.each(solicited)('%s: %s', (_model, line, want) => {
    expect(parseRegistration(line, true)).toMatchObject(want);
  });

  const unsolicited: [string, string, object][] = [
    ['SIM800L', '+CREG: 1', { n: null, registration: 'home', lac: null }],
    ['SIM800L', '+CREG: 5,"1A2B","3C4D"', { registration: 'roaming', lac: '1A2B', cellId: '3C4D' }],
    ['EC25', '+CREG: 1,"2B4F","8F6A01B",7', { registration: 'home', lac: '2B4F', act: 7 }],
    ['Huawei', '+CREG: 2', { registration: 'searching' }],
    ['stat 11', '+CREG: 11', { registration: 'emergency_only' }],
    ['unknown stat', '+CREG: 42', { registration: 'unknown' }],
  ];
  it.each(unsolicited)('unsolicited %s: %s', (_model, line, want) => {
    expect(parseRegistration(line, false)).toMatchObject(want);
  });

  it('rejects lines without a stat', () => {
    expect(parseRegistration('+CREG: ', false)).toBeNull();
    expect(parseRegistration('+CSQ: 1,2', false)).toBeNull();
  });
});

describe('+CSQ (27.007 8.5) and Huawei signal reports', () => {
  it.each([
    ['SIM800L', '+CSQ: 14,99', -85],
    ['EC25', '+CSQ: 31,0', -51],
    ['SIM7600 no signal', '+CSQ: 99,99', null],
    ['weakest', '+CSQ: 0,99', -113],
    ['spaced', '+CSQ:  20 , 99', -73],
  ])('%s: %s -> %s dBm', (_m, line, dbm) => {
    expect(parseCsq(line)?.dbm).toBe(dbm);
  });
  it('maps out-of-range values to unknown', () => {
    expect(csqToDbm(32)).toBeNull();
    expect(csqToDbm(-1)).toBeNull();
  });
  it('reads ^RSSI and ^HCSQ (Huawei E3531/E3372)', () => {
    expect(parseHuaweiRssi('^RSSI: 17')).toBe(-79);
    expect(parseHuaweiRssi('^RSSI:99')).toBeNull();
    expect(parseHuaweiHcsq('^HCSQ:"LTE",49,39,141,29')).toEqual({ sysmode: 'LTE', dbm: -71 });
    expect(parseHuaweiHcsq('^HCSQ: "NOSERVICE"')).toEqual({ sysmode: 'NOSERVICE', dbm: null });
    expect(parseHuaweiHcsq('^HCSQ:"WCDMA",255,255,255')).toEqual({ sysmode: 'WCDMA', dbm: null });
  });
});

describe('+COPS (27.007 7.3)', () => {
  it.each([
    ['EC25', '+COPS: 0,0,"T-Mobile",7', 'T-Mobile', 7],
    ['SIM800L', '+COPS: 0,0,"vodafone UK"', 'vodafone UK', null],
    ['SIM7600 numeric', '+COPS: 0,2,"310260",7', null, 7],
    ['not registered', '+COPS: 0', null, null],
  ])('%s: %s', (_m, line, operator, act) => {
    expect(parseCops(line)).toMatchObject({ operator, act });
    if (line.includes(',2,')) expect(parseCops(line)?.code).toBe('310-260');
  });
});
