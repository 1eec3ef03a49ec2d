/** End to end on a pty: the emulator rings, the real driver over serialport reports it, and the end of the call. */
import { afterEach, describe, expect, it } from 'vitest';
import { nextEvent, type Rig, rig } from './modem-helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.stop();
  r = undefined;
});

describe('incoming call over the pty', () => {
  it('reports the caller id, then the end when the caller hangs up unanswered', async () => {
    r = await rig('generic');
    expect(r.modem.state).toBe('ready');
    const ring = nextEvent(r.modem, 'ring');
    r.emu.incomingCall('+15551234567');
    expect((await ring)[0]).toEqual({ number: '+15551234567', withheld: false, count: 1 });
    const listed = await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    expect(listed[0][0]).toMatchObject({ index: 1, direction: 'mt', stat: 'incoming', number: '+15551234567' });
    const ended = nextEvent(r.modem, 'callEnded');
    r.emu.callerHangsUp(); // a 3GPP modem just stops ringing: the driver finds out from AT+CLCC
    expect((await ended)[0]).toMatchObject({ index: 1 });
    expect(r.modem.calls).toEqual([]);
  });

  it('reports a withheld caller id as withheld', async () => {
    r = await rig('generic');
    const ring = nextEvent(r.modem, 'ring');
    r.emu.incomingCall(null);
    expect((await ring)[0]).toEqual({ number: null, withheld: true, count: 1 });
  });

  it('answers with ATA, and reports NO CARRIER when the caller hangs up an active call', async () => {
    r = await rig('generic');
    const ring = nextEvent(r.modem, 'ring');
    r.emu.incomingCall('+15551234567');
    await ring;
    await r.modem.answer();
    await nextEvent(r.modem, 'calls', (c) => c[0]?.stat === 'active');
    const ended = nextEvent(r.modem, 'callEnded');
    r.emu.callerHangsUp();
    expect((await ended)[0]).toEqual({ index: 1, reason: 'no_carrier' });
  });

  it('hangs up and deflects', async () => {
    r = await rig('generic');
    r.emu.incomingCall('+15551234567');
    await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    const ended = nextEvent(r.modem, 'callEnded');
    await r.modem.deflect('+15559876543');
    expect((await ended)[0]).toMatchObject({ index: 1, reason: 'deflected' });
    expect(r.emu.deflections).toEqual([{ number: '+15551234567', to: '+15559876543' }]);

    r.emu.incomingCall('+15551234567');
    await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    await r.modem.answer();
    const ended2 = nextEvent(r.modem, 'callEnded');
    await r.modem.hangUp();
    expect((await ended2)[0]).toMatchObject({ index: 1, reason: 'hung_up' });
    expect(r.emu.calls).toEqual([]);
  });

  it('reports a second call waiting (+CCWA) and switches to it with AT+CHLD=2', async () => {
    r = await rig('generic');
    r.emu.incomingCall('+15551234567');
    await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    await r.modem.answer();
    const waiting = nextEvent(r.modem, 'callWaiting');
    r.emu.incomingCall('+15557654321');
    expect((await waiting)[0]).toEqual({ number: '+15557654321', withheld: false });
    await r.modem.hold(2);
    const calls = await r.modem.listCalls();
    expect(calls.map((c) => [c.index, c.stat])).toEqual([
      [1, 'held'],
      [2, 'active'],
    ]);
  });
});
