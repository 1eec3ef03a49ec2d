import { describe, expect, it } from 'vitest';
import { decodePdu, encodeDeliver, encodeSubmit, fromGsm7, packSeptets, toGsm7, unpackSeptets } from './pdu.js';
import { cmgrPduLine, parseCmglPdu, parseCmgrPdu, parseCmgrText, parseCmgs, parseCmti, planSms } from './sms.js';

describe('PDUs (TS 23.040, TS 23.038)', () => {
  it('decodes a real SMS-DELIVER (GSM 7-bit, with SMSC)', () => {
    const d = decodePdu('07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07');
    expect(d).toMatchObject({ type: 'deliver', address: '+31641600986', text: 'How are you?', concat: null });
    expect(d.at).toBe('2002-08-26T19:37:41.000Z');
  });

  it('decodes a real SMS-SUBMIT with a relative validity period', () => {
    expect(decodePdu('0011000B916407281553F80000AA0AE8329BFD4697D9EC37')).toMatchObject({
      type: 'submit',
      address: '+46708251358',
      text: 'hellohello',
    });
  });

  it('packs and unpacks septets, extension characters included', () => {
    const s = toGsm7('Price: 5€ [ok] {a|b} ~^\\');
    expect(s).not.toBeNull();
    const packed = packSeptets(s as number[]);
    expect(fromGsm7(unpackSeptets(packed, (s as number[]).length))).toBe('Price: 5€ [ok] {a|b} ~^\\');
    expect(toGsm7('你好')).toBeNull();
  });

  it('round-trips single and concatenated messages in both alphabets', () => {
    for (const text of ['Hello @ 5$', 'x'.repeat(400), 'Grüße aus Köln — 你好 👋'.repeat(6), 'Ωmega']) {
      const parts = encodeSubmit('+15551234567', text, 42);
      const decoded = parts.map((p) => decodePdu(p.hex));
      expect(decoded.map((d) => d.text).join('')).toBe(text);
      for (const d of decoded) expect(d.address).toBe('+15551234567');
      if (parts.length > 1) expect(decoded.map((d) => d.concat?.seq)).toEqual(parts.map((_, i) => i + 1));
      for (const p of parts) expect(p.hex.length / 2 - 1).toBe(p.tpduLength);
    }
  });

  it('splits at 160/153 septets and 70/67 UCS-2 units without breaking pairs', () => {
    expect(encodeSubmit('+15551234567', 'a'.repeat(160), 1)).toHaveLength(1);
    expect(encodeSubmit('+15551234567', 'a'.repeat(161), 1)).toHaveLength(2);
    expect(encodeSubmit('+15551234567', 'ж'.repeat(70), 1)).toHaveLength(1);
    expect(encodeSubmit('+15551234567', 'ж'.repeat(71), 1)).toHaveLength(2);
    const emoji = '👋'.repeat(40); // 80 UTF-16 units
    const parts = encodeSubmit('+15551234567', emoji, 1).map((p) => decodePdu(p.hex).text);
    expect(parts.join('')).toBe(emoji);
    expect(parts.every((t) => !/[\ud800-\udbff]$/.test(t))).toBe(true);
  });

  it('encodes a DELIVER the emulator stores and decodes it back', () => {
    const at = new Date('2026-11-26T10:00:00Z');
    expect(decodePdu(encodeDeliver('+15551234567', 'Hi €', at))).toMatchObject({
      address: '+15551234567',
      text: 'Hi €',
      at: '2026-11-26T10:00:00.000Z',
    });
    expect(decodePdu(encodeDeliver('+15551234567', 'Привет', at)).text).toBe('Привет');
  });

  it('refuses malformed PDUs with a clear error', () => {
    expect(() => decodePdu('zz')).toThrow(/hex/);
    expect(() => decodePdu('00')).toThrow(/too short/);
  });
});

describe('27.005 commands', () => {
  it('plans text mode for short plain text and PDU mode otherwise', () => {
    expect(planSms('+15551234567', 'Call back, room 4.', 1)).toEqual([
      { mode: 'text', command: 'AT+CMGS="+15551234567"', body: 'Call back, room 4.' },
    ]);
    const pdu = planSms('+15551234567', 'Grüße', 1);
    expect(pdu).toHaveLength(1);
    expect(pdu[0]?.mode).toBe('pdu');
    expect(pdu[0]?.command).toMatch(/^AT\+CMGS=\d+$/);
    expect(planSms('+15551234567', 'a'.repeat(200), 1).map((s) => s.mode)).toEqual(['pdu', 'pdu']);
    expect(planSms('+15551234567', 'user@example', 1)[0]?.mode).toBe('pdu'); // @ differs in GSM and ASCII
    expect(() => planSms('not a number', 'x', 1)).toThrow(/to "not a number"/);
    expect(() => planSms('+15551234567', '', 1)).toThrow(/empty/);
  });

  it.each([
    ['SIM800L', '+CMGS: 12', 12],
    ['EC25', '+CMGS: 255', 255],
    ['with scts', '+CMGS: 7,"26/11/26,10:00:00+00"', 7],
  ])('reads +CMGS from %s', (_m, line, mr) => {
    expect(parseCmgs(line)).toBe(mr);
  });

  it.each([
    ['SIM800L', '+CMTI: "SM",3', { mem: 'SM', index: 3 }],
    ['EC25', '+CMTI: "ME",0', { mem: 'ME', index: 0 }],
    ['spaced', '+CMTI: "SM", 12', { mem: 'SM', index: 12 }],
  ])('reads +CMTI from %s', (_m, line, want) => {
    expect(parseCmti(line)).toEqual(want);
  });

  it('reads AT+CMGR answers in PDU and text mode', () => {
    expect(
      parseCmgrPdu(['+CMGR: 0,,24', '07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07'])
        ?.text,
    ).toBe('How are you?');
    expect(parseCmgrPdu([])).toBeNull();
    expect(parseCmgrText(['+CMGR: "REC UNREAD","+447700900123",,"26/11/26,10:00:00+00"', 'Line 1', 'Line 2'])).toEqual({
      from: '+447700900123',
      text: 'Line 1\nLine 2',
      at: '26/11/26,10:00:00+00',
    });
  });
});

describe('AT+CMGL in PDU mode (27.005 4.1)', () => {
  const deliver = '07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07';
  it('lists stored messages with an empty <alpha> (Quectel EC25, SIM800) and a quoted empty one (SIMCom SIM7600)', () => {
    // EC25 / SIM800: +CMGL: <index>,<stat>,,<length>
    expect(parseCmglPdu([`+CMGL: 1,0,,24`, deliver, `+CMGL: 4,1,,24`, deliver])).toEqual([
      { index: 1, stat: 0, pdu: deliver },
      { index: 4, stat: 1, pdu: deliver },
    ]);
    // SIM7600: +CMGL: <index>,<stat>,"",<length>
    expect(parseCmglPdu([`+CMGL: 0,1,"",24`, deliver])).toEqual([{ index: 0, stat: 1, pdu: deliver }]);
    expect(decodePdu(parseCmglPdu([`+CMGL: 0,1,"",24`, deliver])[0]?.pdu ?? '').text).toBe('How are you?');
  });

  it('an empty store is an empty list; a header without its PDU is left out, the rest still counts', () => {
    expect(parseCmglPdu([])).toEqual([]);
    expect(parseCmglPdu(['+CMGL: 2,0,,24', '+CMGL: 3,0,,24', deliver])).toEqual([{ index: 3, stat: 0, pdu: deliver }]);
    expect(parseCmglPdu(['+CMGL: x,0,,24', deliver])).toEqual([]);
  });

  it('takes the PDU line of an AT+CMGR answer as stored', () => {
    expect(cmgrPduLine(['+CMGR: 0,,24', deliver])).toBe(deliver);
    expect(cmgrPduLine(['+CMGR: 0,,24'])).toBeNull();
  });
});
