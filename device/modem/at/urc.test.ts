import { describe, expect, it } from 'vitest';
import { matchUrc } from './urc.js';

describe('URC table', () => {
  it.each([
    ['RING', { type: 'ring', kind: 'RING' }],
    ['+CRING: VOICE', { type: 'ring', kind: 'VOICE' }],
    ['+CLIP: "+15551234567",145,,,,0', { type: 'clip', caller: { number: '+15551234567', withheld: false } }],
    ['+CLIP: "",128,,,,1', { type: 'clip', caller: { number: null, withheld: true } }],
    ['+CLCC: 1,1,4,0,0,"+15551234567",145', { type: 'call', call: { index: 1, stat: 'incoming' } }],
    ['+QIND: "ccinfo",2,1,5,0,0,"+15551234567",145', { type: 'call', call: { index: 2, stat: 'waiting' } }],
    ['+QIND: "csq",20,99', { type: 'ignored' }],
    ['NO CARRIER', { type: 'callEnd', reason: 'no_carrier', index: null }],
    ['^CEND:1,0,104,16', { type: 'callEnd', reason: 'cend', index: 1 }],
    ['VOICE CALL: END: 000012', { type: 'callEnd', reason: 'voice_call_end' }],
    ['MISSED_CALL: 10:15AM +15551234567', { type: 'callEnd', reason: 'missed_call' }],
    ['+CCWA: "+15557654321",145,1', { type: 'waiting', caller: { number: '+15557654321' } }],
    ['+CMTI: "SM",4', { type: 'sms', mem: 'SM', index: 4 }],
    ['+CREG: 5', { type: 'registration', info: { kind: 'CREG', registration: 'roaming' } }],
    ['+CGREG: 1,"00C3","A13B"', { type: 'registration', info: { kind: 'CGREG', lac: '00C3' } }],
    ['+CEREG: 3', { type: 'registration', info: { kind: 'CEREG', registration: 'denied' } }],
    ['+CUSD: 0,"Balance 5.00",15', { type: 'ussd', result: { status: 0, text: 'Balance 5.00' } }],
    ['^RSSI: 20', { type: 'signal', dbm: -73 }],
    ['^HCSQ:"LTE",49,39,141,29', { type: 'signal', dbm: -71 }],
    ['RDY', { type: 'boot' }],
    ['*ATREADY: 1', { type: 'boot' }],
    ['+CPIN: NOT INSERTED', { type: 'sim', status: { state: 'missing' } }],
    ['SMS Ready', { type: 'ignored' }],
    ['^BOOT:12345,0,0,0,6', { type: 'ignored' }],
  ])('%s', (line, want) => {
    expect(matchUrc(line)).toMatchObject(want);
  });

  it('returns null for lines that are no URC', () => {
    expect(matchUrc('+CSQ: 20,99')).toBeNull();
    expect(matchUrc('hello')).toBeNull();
    expect(matchUrc('+CLCC: garbage')).toBeNull();
  });

  it('decodes Huawei packed USSD when asked', () => {
    expect(matchUrc('+CUSD: 0,"C8329BFD06",15', { ussdPacked: true })).toMatchObject({ result: { text: 'Hello' } });
  });
});
