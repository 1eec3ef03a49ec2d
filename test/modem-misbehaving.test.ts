/** End to end on a pty: a modem that stops answering, answers late, reboots mid-call or sends garbage. */
import { afterEach, describe, expect, it } from 'vitest';
import { type EmulatorBehavior, never, slow } from '../device/sim/modem/behaviors.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { nextEvent, type Rig, rig, waitState } from './modem-helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.stop();
  r = undefined;
});

describe('a misbehaving modem', () => {
  it('never answering AT+CLCC: the command times out naming it, the next one works', async () => {
    r = await rig('generic');
    const b = never(/^AT\+CLCC$/);
    r.emu.prepend(b);
    const t0 = Date.now();
    const err = await r.modem.listCalls().catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(isCallboxError(err, ErrorCode.ModemTimeout)).toBe(true);
    expect(err.message).toBe('AT+CLCC got no final result within 1000 ms');
    r.emu.removeBehavior(b);
    expect(await r.modem.listCalls()).toEqual([]);
    expect(r.modem.state).toBe('ready');
  });

  it('answering late (after the timeout): the late reply is not taken for the next command', async () => {
    r = await rig('generic');
    const late = slow(/^AT\+CSQ$/, 1300);
    r.emu.prepend(late);
    const first = await r.modem.refreshNetwork().catch((e) => e);
    expect(isCallboxError(first, ErrorCode.ModemTimeout)).toBe(true);
    r.emu.removeBehavior(late);
    // The late "+CSQ/OK" arrives while the driver resyncs; the forwarding query gets its own answer.
    await r.modem.setForwarding('busy', true, '+15559876543');
    const fwd = await r.modem.queryForwarding('busy');
    expect(fwd).toEqual([{ reason: 'busy', enabled: true, number: '+15559876543', classx: 1, time: null }]);
    expect(r.modem.stats.resyncs).toBeGreaterThan(0);
  });

  it('stopping mid-command for good: after maxConsecutiveTimeouts the driver resets, then reopens', async () => {
    r = await rig('generic', { maxConsecutiveTimeouts: 2 });
    const dead: EmulatorBehavior = { name: 'dead', onCommand: () => ({ final: null }) };
    r.emu.prepend(dead);
    const results = await Promise.all([r.modem.listCalls(), r.modem.listCalls()].map((p) => p.catch((e) => e)));
    for (const e of results) expect(e).toBeInstanceOf(Error);
    await waitState(r.modem, 'disconnected', 8000); // reset did not help: the port is reopened
    r.emu.removeBehavior(dead);
    await waitState(r.modem, 'ready', 8000);
    expect(r.modem.stats.resets).toBe(1);
  });

  it('rebooting in the middle of a call: the call ends and the driver re-initialises', async () => {
    r = await rig('sim7600');
    r.emu.incomingCall('+15551234567');
    await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    await r.modem.answer();
    const ended = nextEvent(r.modem, 'callEnded');
    await r.emu.reboot();
    expect((await ended)[0]).toEqual({ index: 1, reason: 'modem_restarted' });
    await waitState(r.modem, 'ready');
    expect(r.emu.settings.echo).toBe(false); // re-initialised: ATE0 again
    expect(r.emu.settings.cvhu).toBe(0);
  });

  it('garbage on the line: counted as discarded, calls still come through', async () => {
    r = await rig('generic');
    for (let i = 0; i < 20; i++) r.emu.injectGarbage();
    const ring = nextEvent(r.modem, 'ring');
    r.emu.incomingCall('+15551234567');
    expect((await ring)[0].number).toBe('+15551234567');
    expect(r.modem.stats.discarded).toBeGreaterThan(0);
    expect(await r.modem.listCalls()).toHaveLength(1);
  });

  it('network loss and return are reported', async () => {
    r = await rig('generic');
    const lost = nextEvent(r.modem, 'network', (n) => n.registration === 'searching');
    r.emu.networkLoss();
    await lost;
    const back = nextEvent(r.modem, 'network', (n) => n.registration === 'home');
    r.emu.networkRestore();
    await back;
    expect((await r.modem.refreshNetwork()).signalDbm).toBe(-73);
  });
});
