import { describe, expect, it } from 'vitest';
import { lastFour, parseSmsReply, samePhone } from './sms-reply.js';

describe('SMS replies to alerts', () => {
  it.each([
    ['ACK 1234', 'acknowledge'],
    ['ok 1234', 'acknowledge'],
    ['  yes #1234 thanks', 'acknowledge'],
    ['1234', 'acknowledge'],
    ['RESOLVE 1234', 'resolve'],
    ['done 1234', 'resolve'],
    ['r #1234', 'resolve'],
  ] as const)('reads %j as %s of alert 1234', (text, action) => {
    expect(parseSmsReply(text)).toEqual({ action, code: '1234' });
  });

  it.each(['hello', 'ACK 123', 'ACK 12345', 'call me at 555 1234', ''])('does not read %j as a reply', (text) => {
    expect(parseSmsReply(text)).toBeUndefined();
  });

  it('compares phone numbers across notations by their last digits', () => {
    expect(samePhone('+1 555 000 1001', '(555) 000-1001')).toBe(true);
    expect(samePhone('+15550001001', '+15550001002')).toBe(false);
    expect(samePhone('12345', '12345')).toBe(false); // too short to tell
    expect(lastFour('+1 555 000 1001')).toBe('…1001');
  });
});
