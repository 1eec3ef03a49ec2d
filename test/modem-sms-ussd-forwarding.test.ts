/** End to end on a pty: SMS out (text, UCS-2, concatenated) and in, USSD, call forwarding state. */
import { afterEach, describe, expect, it } from 'vitest';
import { fails } from '../device/sim/modem/behaviors.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { nextEvent, type Rig, rig } from './modem-helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.stop();
  r = undefined;
});

describe('SMS, USSD and forwarding over the pty', () => {
  it('sends plain text in text mode, names in UCS-2, long texts in parts', async () => {
    r = await rig('generic');
    expect(await r.modem.sendSms('+15551234567', 'Missed call from front desk.')).toHaveLength(1);
    expect(await r.modem.sendSms('+15551234567', 'Rückruf bitte: Frau Öztürk, 王医生')).toHaveLength(1);
    const long = 'Panic button pressed at reception. '.repeat(8);
    expect(await r.modem.sendSms('+15551234567', long)).toHaveLength(2);
    expect(r.emu.smsSent).toEqual([
      { to: '+15551234567', text: 'Missed call from front desk.', parts: 1 },
      { to: '+15551234567', text: 'Rückruf bitte: Frau Öztürk, 王医生', parts: 1 },
      { to: '+15551234567', text: long, parts: 2 },
    ]);
  });

  it('reports a network refusal of an SMS clearly', async () => {
    r = await rig('generic');
    r.emu.prepend(fails(/^AT\+CMGS/, '+CMS ERROR: 331'));
    const err = await r.modem.sendSms('+15551234567', 'hello').catch((e) => e);
    expect(isCallboxError(err, ErrorCode.ModemCommandFailed)).toBe(true);
    expect(err.message).toContain('+CMS ERROR: 331');
  });

  it('reads a received SMS after +CMTI and leaves it on the SIM until told to delete it', async () => {
    r = await rig('generic');
    const sms = nextEvent(r.modem, 'sms');
    const index = r.emu.receiveSms('+15557654321', 'Can I get my refill today? €5');
    const [got] = await sms;
    expect(got).toMatchObject({ index, indexes: [index], from: '+15557654321', text: 'Can I get my refill today? €5' });
    expect(got.key).toMatch(/^[0-9a-f]{64}$/);
    expect(r.emu.smsStore.get(index as number)?.stat).toBe(1); // read, still stored
    await r.modem.deleteSms(index as number);
    expect(r.emu.smsStore.size).toBe(0);
  });

  it('joins a long received SMS from its concatenated parts and names every part', async () => {
    r = await rig('generic');
    const text = 'Hello, this is the pharmacy. Your prescription is ready for pick-up at the front desk. '.repeat(3);
    const sms = nextEvent(r.modem, 'sms');
    r.emu.receiveSms('+15557654321', text);
    const [got] = await sms;
    expect(got).toMatchObject({ from: '+15557654321', text, indexes: [1, 2] });
  });

  it('lists what was stored while nobody listened when it becomes ready, with the same key as before', async () => {
    r = await rig('generic');
    const first = nextEvent(r.modem, 'sms');
    r.emu.receiveSms('+15557654321', 'Stored before the restart');
    const [before] = await first;
    await r.modem.stop();
    // Arrive while the driver is away (and the modem, reset, has no +CMTI indication set).
    r.emu.receiveSms('+15550001111', 'Arrived while the box was off');
    r.emu.receiveSms('+15550002222', 'Long one while off: '.repeat(10));
    // The same message may be reported more than once (a +CMTI the pty kept while the box was off, and the
    // listing): always under the same key, which is what the box dedupes on.
    const seen = new Map<string, string>();
    r.modem.on('sms', (s) => seen.set(s.key, s.text));
    await r.modem.start();
    await r.emu.waitUntil(() => seen.size >= 3, 10_000, 'three stored messages reported');
    expect(r.emu.commands).toContain('AT+CMGL=4');
    expect([...seen.values()].sort()).toEqual(
      ['Arrived while the box was off', 'Long one while off: '.repeat(10), 'Stored before the restart'].sort(),
    );
    expect(seen.get(before.key)).toBe('Stored before the restart');
    expect(r.emu.smsStore.size).toBe(4); // nothing deleted by the driver itself
  });

  it('runs a USSD balance check', async () => {
    r = await rig('generic');
    expect(await r.modem.ussd('*100#')).toEqual({ status: 0, text: 'Your balance is 5.00 EUR' });
    expect(await r.modem.ussd('*999#')).toEqual({ status: 4, text: null });
  });

  it('keeps forwarding state per reason: register, query, erase', async () => {
    r = await rig('generic');
    await r.modem.setForwarding('no_reply', true, '+15559876543', 15);
    await r.modem.setForwarding('busy', true, '+15551112222');
    expect(await r.modem.queryForwarding('no_reply')).toEqual([
      { reason: 'no_reply', enabled: true, number: '+15559876543', classx: 1, time: 15 },
    ]);
    expect((await r.modem.queryForwarding('busy'))[0]?.number).toBe('+15551112222');
    expect(r.emu.forwarding.get(2)).toMatchObject({ number: '+15559876543', time: 15 });
    await r.modem.setForwarding('no_reply', false);
    expect(await r.modem.queryForwarding('no_reply')).toEqual([
      { reason: 'no_reply', enabled: false, number: null, classx: 7, time: null },
    ]);
    expect((await r.modem.queryForwarding('busy'))[0]?.enabled).toBe(true);
  });
});
