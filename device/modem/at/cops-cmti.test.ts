/**
 * +COPS (3GPP TS 27.007 7.3) and +CMTI (3GPP TS 27.005 3.4.1) as modems send
 * them: lines written from the specs' syntax, with the variants firmware
 * takes (quoted or bare values, <AcT> present or not, spaces after commas,
 * every storage name), and the lines that must be refused.
 */
import { describe, expect, it } from 'vitest';
import { COPS_SET_LONG_FORMAT, parseCops, plmnCode } from './network.js';
import { formatCmgr, MAX_SMS_INDEX, parseCmti } from './sms.js';
import { matchUrc } from './urc.js';

describe('+COPS: <mode>[,<format>,<oper>[,<AcT>]] (27.007 7.3)', () => {
  it.each([
    // [what, line, mode, format, operator, code, act]
    ['long alphanumeric with E-UTRAN AcT', '+COPS: 0,0,"T-Mobile",7', 0, 'long', 'T-Mobile', null, 7],
    [
      'long alphanumeric without AcT (GSM-only firmware)',
      '+COPS: 0,0,"vodafone UK"',
      0,
      'long',
      'vodafone UK',
      null,
      null,
    ],
    ['short alphanumeric, manual mode, UTRAN', '+COPS: 1,1,"TMO",2', 1, 'short', 'TMO', null, 2],
    ['name with a comma inside the quotes', '+COPS: 0,0,"Foo, Inc.",0', 0, 'long', 'Foo, Inc.', null, 0],
    ['bare (unquoted) name', '+COPS: 0,0,Orange F,0', 0, 'long', 'Orange F', null, 0],
    ['no space after the colon', '+COPS:4,0,"AT&T",7', 4, 'long', 'AT&T', null, 7],
    ['spaces after the commas', '+COPS: 0, 0, "Telekom.de", 7', 0, 'long', 'Telekom.de', null, 7],
    ['numeric, 3-digit MNC, quoted', '+COPS: 0,2,"310260",7', 0, 'numeric', null, '310-260', 7],
    ['numeric, 2-digit MNC, no AcT', '+COPS: 0,2,"23415"', 0, 'numeric', null, '234-15', null],
    ['numeric, bare', '+COPS: 0,2,46000,7', 0, 'numeric', null, '460-00', 7],
    ['numeric with a space between MCC and MNC', '+COPS: 0,2,"310 410",2', 0, 'numeric', null, '310-410', 2],
    ['numeric format but not an MCC+MNC', '+COPS: 0,2,"bogus",7', 0, 'numeric', null, null, 7],
    [
      'a code in the long-name field (no name in the modem table)',
      '+COPS: 0,0,"310260",7',
      0,
      'long',
      null,
      '310-260',
      7,
    ],
    ['an unknown <format> is not read as a name', '+COPS: 0,9,"X",7', 0, null, null, null, 7],
    ['not registered: mode only', '+COPS: 0', 0, null, null, null, null],
    ['deregistered', '+COPS: 2', 2, null, null, null, null],
    ['format with an empty operator', '+COPS: 0,0,"",7', 0, 'long', null, null, 7],
  ] as const)('%s: %s', (_what, line, mode, format, operator, code, act) => {
    expect(parseCops(line)).toEqual({ mode, format, operator, code, act });
  });

  it.each(['+CREG: 0,1', 'COPS: 0,0,"X"', '+COPS: ', '+COPS: x,0,"X"'])('is not a +COPS answer: %s', (line) => {
    expect(parseCops(line)).toBeNull();
  });

  it('MCC/MNC codes: 3 digits and 2 or 3 digits, nothing else', () => {
    expect(plmnCode('00101')).toBe('001-01');
    expect(plmnCode('310-260')).toBe('310-260');
    expect(plmnCode('3102600')).toBeNull();
    expect(plmnCode('3102')).toBeNull();
    expect(plmnCode('T-Mobile')).toBeNull();
  });

  it('the format command sets long alphanumeric (mode 3 changes the format only)', () => {
    expect(COPS_SET_LONG_FORMAT).toBe('AT+COPS=3,0');
  });
});

describe('+CMTI: <mem>,<index> (27.005 3.4.1)', () => {
  it.each([
    ['SIM storage, quoted', '+CMTI: "SM",3', 'SM', 3],
    ['modem storage, index 0 (0-based firmware)', '+CMTI: "ME",0', 'ME', 0],
    ['"MT" (SM and ME together)', '+CMTI: "MT",12', 'MT', 12],
    ['status report storage', '+CMTI: "SR",1', 'SR', 1],
    ['broadcast storage, highest index', `+CMTI: "BM",${MAX_SMS_INDEX}`, 'BM', MAX_SMS_INDEX],
    ['bare memory name', '+CMTI: SM,5', 'SM', 5],
    ['space after the comma', '+CMTI: "SM", 12', 'SM', 12],
    ['no space after the colon', '+CMTI:"ME",7', 'ME', 7],
  ])('reads %s: %s', (_what, line, mem, index) => {
    expect(parseCmti(line)).toEqual({ mem, index });
    expect(matchUrc(line)).toEqual({ type: 'sms', mem, index });
    expect(formatCmgr(index)).toBe(`AT+CMGR=${index}`);
  });

  it.each([
    ['negative index', '+CMTI: "SM",-1'],
    ['negative zero', '+CMTI: "SM",-0'],
    ['signed index', '+CMTI: "SM",+3'],
    ['non-numeric index', '+CMTI: "SM",abc'],
    ['hex index', '+CMTI: "SM",0x1F'],
    ['fractional index', '+CMTI: "SM",3.5'],
    ['exponent', '+CMTI: "SM",1e3'],
    ['index past the highest location', `+CMTI: "SM",${MAX_SMS_INDEX + 1}`],
    ['empty index', '+CMTI: "SM",'],
    ['no index', '+CMTI: "SM"'],
    ['no memory', '+CMTI: ,3'],
    ['memory that is not a name', '+CMTI: "S M",3'],
    ['a third field', '+CMTI: "SM",3,1'],
    ['nothing', '+CMTI:'],
  ])('refuses a %s: %s (no URC, so no read is sent)', (_what, line) => {
    expect(parseCmti(line)).toBeNull();
    expect(matchUrc(line)).toBeNull();
  });
});
