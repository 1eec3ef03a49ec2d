/** End to end on a pty: the modem's port vanishes (USB unplug) and comes back. */
import { afterEach, describe, expect, it } from 'vitest';
import { never } from '../device/sim/modem/behaviors.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { waitFor } from '../shared/wait.js';
import { nextEvent, type Rig, rig, waitState } from './modem-helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.stop();
  r = undefined;
});

describe('unplug and replug', () => {
  it('goes disconnected, fails the pending command clearly, ends the call, and recovers on replug', async () => {
    r = await rig('generic');
    r.emu.incomingCall('+15551234567');
    await nextEvent(r.modem, 'calls', (c) => c.length === 1);
    r.emu.prepend(never(/^AT\+CCFC/));
    const pending = r.modem.queryForwarding('busy').catch((e) => e);
    await r.emu.waitForCommand(/^AT\+CCFC/);
    const ended = nextEvent(r.modem, 'callEnded');
    await r.emu.unplug();
    await waitState(r.modem, 'disconnected');
    const err = await pending;
    expect(isCallboxError(err, ErrorCode.ModemDisconnected)).toBe(true);
    expect((await ended)[0]).toEqual({ index: 1, reason: 'disconnected' });
    const now = await r.modem.listCalls().catch((e) => e);
    expect(isCallboxError(now, ErrorCode.ModemDisconnected)).toBe(true);

    const modem = r.modem;
    await waitFor(() => modem.stats.reopens >= 2, 'two failed reopen attempts');
    await r.emu.replug();
    await waitState(r.modem, 'ready', 5000);
    expect(r.modem.stats.reopens).toBeGreaterThan(0);
    // The line works again end to end.
    const ring = nextEvent(r.modem, 'ring');
    r.emu.incomingCall('+15551234567');
    expect((await ring)[0].number).toBe('+15551234567');
  });
});
