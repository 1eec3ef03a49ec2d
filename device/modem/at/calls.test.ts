import { describe, expect, it } from 'vitest';
import {
  formatChld,
  formatDeflect,
  parseCcwa,
  parseClcc,
  parseClccList,
  parseClip,
  parseHuaweiCend,
  parseQindCcinfo,
} from './calls.js';

describe('+CLCC (27.007 7.18)', () => {
  it.each([
    [
      'SIM800L incoming, empty alpha',
      '+CLCC: 1,1,4,0,0,"+447700900123",145,""',
      { index: 1, direction: 'mt', stat: 'incoming', number: '+447700900123', numberType: 145, ended: false },
    ],
    ['EC25 national', '+CLCC: 1,1,4,0,0,"07700900123",129', { number: '07700900123', numberType: 129 }],
    ['withheld, empty number', '+CLCC: 1,1,4,0,0,"",128', { number: null, numberType: null, stat: 'incoming' }],
    ['missing number fields', '+CLCC: 2,1,5,0,0', { index: 2, stat: 'waiting', number: null }],
    ['active outgoing', '+CLCC: 1,0,0,0,0,"+15551234567",145', { direction: 'mo', stat: 'active' }],
    ['held multiparty', '+CLCC: 1,1,1,0,1,"+15551234567",145', { stat: 'held', multiparty: true }],
    ['SIM7600 pushed end (stat 6)', '+CLCC: 1,1,6,0,0,"+447700900123",145', { ended: true }],
    ['spaced', '+CLCC: 1, 1, 4, 0, 0, "+15551234567", 145', { stat: 'incoming', number: '+15551234567' }],
    ['data mode', '+CLCC: 1,1,0,1,0,"+15551234567",145', { mode: 'data' }],
  ])('%s', (_m, line, want) => {
    expect(parseClcc(line)).toMatchObject(want);
  });

  it('rejects broken lines', () => {
    expect(parseClcc('+CLCC: x,1,4')).toBeNull();
    expect(parseClcc('+CLCC: 1,7,4,0,0')).toBeNull();
    expect(parseClcc('+CLCC:')).toBeNull();
  });

  it('lists calls and leaves out ended ones', () => {
    const list = parseClccList([
      '+CLCC: 1,1,0,0,0,"+15551234567",145',
      '+CLCC: 2,1,5,0,0,"+15557654321",145',
      '+CLCC: 3,1,6,0,0,"+15550000000",145',
    ]);
    expect(list.map((c) => [c.index, c.stat])).toEqual([
      [1, 'active'],
      [2, 'waiting'],
    ]);
    expect(parseClccList([])).toEqual([]);
  });

  it('reads Quectel +QIND: "ccinfo" (EC25)', () => {
    expect(parseQindCcinfo('+QIND: "ccinfo",1,1,4,0,0,"+447700900123",145')).toMatchObject({
      index: 1,
      stat: 'incoming',
      number: '+447700900123',
    });
    expect(parseQindCcinfo('+QIND: "csq",20,99')).toBeNull();
  });
});

describe('+CLIP (27.007 7.6)', () => {
  it.each([
    ['SIM800L', '+CLIP: "+447700900123",145,"",0,"",0', '+447700900123', false],
    ['EC25', '+CLIP: "07700900123",129,,,,0', '07700900123', false],
    ['Huawei E3531', '+CLIP: "+447700900123",145,,,,0', '+447700900123', false],
    ['old short form', '+CLIP: "+15551234567",145', '+15551234567', false],
    ['withheld (validity 1)', '+CLIP: "",128,,,,1', null, true],
    ['not available (validity 2)', '+CLIP: "",128,,,,2', null, true],
    ['SIM800L withheld', '+CLIP: "",128,"",0,"",1', null, true],
    ['network sends text for withheld', '+CLIP: "Unknown",128,,,,1', null, true],
    ['unquoted number', '+CLIP: +15551234567,145,,,,0', '+15551234567', false],
    ['empty with no validity', '+CLIP: "",129', null, true],
  ])('%s: %s', (_m, line, number, withheld) => {
    expect(parseClip(line)).toMatchObject({ number, withheld });
  });
});

describe('+CCWA (27.007 7.12), ^CEND', () => {
  it('reads waiting calls', () => {
    expect(parseCcwa('+CCWA: "+447700900456",145,1')).toMatchObject({
      number: '+447700900456',
      classx: 1,
      withheld: false,
    });
    expect(parseCcwa('+CCWA: "+447700900456",145,1,"",0')).toMatchObject({ number: '+447700900456' });
    expect(parseCcwa('+CCWA: "",128,1,,1')).toMatchObject({ number: null, withheld: true });
  });
  it('reads Huawei ^CEND', () => {
    expect(parseHuaweiCend('^CEND:1,0,104,16')).toEqual({ index: 1, cause: 16 });
    expect(parseHuaweiCend('^CEND:2,12,29')).toEqual({ index: 2, cause: 29 });
  });
});

describe('call control formatting', () => {
  it('formats AT+CTFR and AT+CHLD, refusing bad input', () => {
    expect(formatDeflect('+15551234567')).toBe('AT+CTFR="+15551234567",145');
    expect(formatDeflect('0800123456')).toBe('AT+CTFR="0800123456",129');
    expect(() => formatDeflect('+1555";ATD112')).toThrow(/not a phone number/);
    expect(formatChld(1)).toBe('AT+CHLD=1');
    expect(formatChld(12)).toBe('AT+CHLD=12');
    expect(() => formatChld(-1)).toThrow(RangeError);
  });
});
