/** End to end on a pty: each vendor profile is detected and its quirks are handled. */
import { afterEach, describe, expect, it } from 'vitest';
import { nextEvent, type Rig, rig } from './modem-helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.stop();
  r = undefined;
});

describe('vendor quirks', () => {
  it('SIM7600: profile from CGMI/CGMM, AT+CVHU=0 so ATH works, pushed +CLCC, MISSED_CALL', async () => {
    r = await rig('sim7600', { callPollMs: 60_000 });
    expect(r.modem.identity.profile).toBe('sim7600');
    expect(r.emu.commands).toEqual(expect.arrayContaining(['AT+CVHU=0', 'AT+CLCC=1']));
    expect(r.emu.settings.cvhu).toBe(0);
    const ring = nextEvent(r.modem, 'ring');
    r.emu.incomingCall('+447700900123');
    expect((await ring)[0].number).toBe('+447700900123');
    const ended = nextEvent(r.modem, 'callEnded');
    r.emu.callerHangsUp();
    expect((await ended)[0]).toMatchObject({ index: 1 });
  });

  it('SIM800: ATH first for hang-up', async () => {
    r = await rig('sim800');
    expect(r.modem.identity.profile).toBe('sim800');
    r.emu.incomingCall('+447700900123');
    await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    await r.modem.answer();
    await r.modem.hangUp();
    expect(r.emu.commands).toContain('ATH');
    expect(r.emu.calls).toEqual([]);
  });

  it('EC25: +QIND "ccinfo" pushes call state', async () => {
    r = await rig('ec25', { callPollMs: 60_000 });
    expect(r.modem.identity.profile).toBe('ec25');
    expect(r.emu.settings.qindCcinfo).toBe(true);
    const calls = nextEvent(r.modem, 'calls', (c) => c.length === 1);
    r.emu.incomingCall('+447700900123');
    expect((await calls)[0][0]).toMatchObject({ stat: 'incoming', number: '+447700900123' });
    await r.modem.answer();
    const ended = nextEvent(r.modem, 'callEnded');
    r.emu.callerHangsUp();
    expect((await ended)[0]).toMatchObject({ index: 1 });
  });

  it('Huawei: ^RSSI inside replies, ^CEND, packed USSD', async () => {
    r = await rig('huawei');
    expect(r.modem.identity.profile).toBe('huawei');
    const net = nextEvent(r.modem, 'network', (n) => n.signalDbm === -83);
    r.emu.setSignal(15);
    await net;
    // A ^RSSI lands inside the AT+CSQ reply; both come out right.
    const status = await r.modem.refreshNetwork();
    expect(status.signalDbm).toBe(-83);
    expect(r.modem.stats.discarded).toBe(0);
    expect(await r.modem.ussd('*100#')).toEqual({ status: 0, text: 'Your balance is 5.00 EUR' });
    r.emu.incomingCall('+447700900123');
    await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    const ended = nextEvent(r.modem, 'callEnded');
    r.emu.callerHangsUp();
    expect((await ended)[0]).toMatchObject({ index: 1, reason: 'cend' });
  });
});
