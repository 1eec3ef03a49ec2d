/**
 * The Show scenarios of issue 6, end to end: the CallManager drives the REAL
 * modem driver (createModem, serialport) talking AT to the REAL modem
 * emulator (device/sim/modem) over a socat pty pair.
 *
 * The call manager runs on a clinic clock the test steps by hand
 * (test/helpers/clock.ts): clinic time stands still while the driver and the
 * emulator work in real time, and moves only when the test says "3 s pass"
 * (one ring interval) or "the caller waits 12 s". So every figure the
 * manager computes (time to answer, talk time, abandoned up to 5 s against
 * missed) is exact, however slowly a loaded machine passes the AT traffic.
 * The emulator rings every 300 ms of real time; the test counts those rings
 * before it moves the clock past them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CallManager, type VoicemailCall } from '../device/calls/manager.js';
import { type DeepPartial, mergePartial, settingsFrom } from '../device/calls/settings.js';
import { type CallStore, MemoryCallStore } from '../device/calls/store.js';
import { MemoryEventSink } from '../device/events.js';
import { modemConfig } from '../device/modem/config.js';
import { createModem } from '../device/modem/driver.js';
import { ModemEmulator } from '../device/sim/modem/emulator.js';
import type { DeviceSettings } from '../shared/contract/settings.js';
import { waitFor } from '../shared/wait.js';
import { SteppedClock } from './helpers/clock.js';

const RING_MS = 300; // real ms between the emulator's RINGs
const RING_S = 3; // clinic seconds between RINGs, as on a real network
const ROLLOVER = '+15550009999';
const ALICE = '+15551230001';
const BOB = '+15551230002';
const allDay = [{ open: '00:00', close: '24:00' }];
const BASE: DeepPartial<DeviceSettings> = {
  clinic: { timezone: 'UTC' },
  hours: { weekly: { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay } },
  calls: {
    inHours: 'ring-then-rollover',
    afterHours: 'voicemail',
    ringTimeoutS: 20,
    abandonedMaxS: 5,
    ringLostAfterS: 10,
  },
  rollover: { number: ROLLOVER, networkForwarding: true, noReplyTimeS: 25 },
  followUpSms: { enabled: true, text: 'Sorry we missed your call', windowH: 24, excludePrefixes: ['+1555999'] },
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length)
    await cleanups
      .pop()?.()
      .catch(() => undefined);
});

interface BootOptions {
  settings?: DeepPartial<DeviceSettings>;
  startAt?: string;
  store?: CallStore;
  emu?: ModemEmulator;
}

async function boot(opts: BootOptions = {}) {
  const emu = opts.emu ?? new ModemEmulator({ vendor: 'sim7600', ringIntervalMs: RING_MS });
  if (!opts.emu) cleanups.push(() => emu.stop());
  const { path } = await emu.start();
  const modem = createModem(modemConfig({ path, callPollMs: 250, ringEndMs: 1000, clipWaitMs: 50 }));
  cleanups.push(() => modem.stop());
  await modem.start();
  expect(modem.state).toBe('ready');
  const sink = new MemoryEventSink();
  const box = { settings: settingsFrom(mergePartial(BASE, opts.settings)) };
  const voicemails: VoicemailCall[] = [];
  const clock = new SteppedClock(Date.parse(opts.startAt ?? '2026-11-26T15:00:00Z'));
  const mgr = new CallManager({
    modem,
    sink,
    settings: () => box.settings,
    clock,
    store: opts.store ?? new MemoryCallStore(),
    onVoicemail: (v) => voicemails.push(v),
    provisionForwarding: false,
  });
  cleanups.push(() => mgr.stop());
  await mgr.start();
  const ended = () => sink.ofType('call.ended');
  const rings = () => mgr.snapshot().calls[0]?.rings ?? 0;
  /** Clinic time passes: s seconds (timers due on the way run). */
  const pass = (s: number) => clock.advance(s * 1000);
  /** Let the first call ring until its n-th RING, 3 s of clinic time per ring after the first. */
  const ringUntil = async (n: number) => {
    await waitFor(() => rings() >= 1, 'the first RING');
    for (let k = 2; k <= n; k++) {
      await waitFor(() => rings() >= k, `RING ${k}`);
      pass(RING_S);
    }
  };
  return { emu, modem, sink, mgr, box, voicemails, ended, clock, pass, ringUntil };
}

describe('calls end to end (driver + modem emulator over a pty)', () => {
  it('answered on the third ring: ATA sent, 3 rings, time to answer and talk time in the events', async () => {
    const { emu, sink, mgr, ended, pass, ringUntil } = await boot();
    const idx = emu.incomingCall(ALICE);
    await ringUntil(3);
    expect(await mgr.answer('button')).toBe(sink.ofType('call.incoming')[0]?.callId);
    expect(emu.commands).toContain('ATA');
    await waitFor(() => emu.calls[0]?.stat === 'active', 'call active at the emulator');
    pass(10);
    emu.callerHangsUp(idx);
    await waitFor(() => ended().length === 1, 'call.ended');
    expect(sink.events.map((e) => e.type)).toEqual(['call.incoming', 'call.answered', 'call.ended']);
    const answered = sink.ofType('call.answered')[0];
    expect(answered).toMatchObject({ number: ALICE, by: 'button', rings: 3 });
    // two ring intervals (6 s of clinic time) after the first ring
    expect(answered?.timeToAnswerMs).toBe(6000);
    const e = ended()[0];
    expect(e).toMatchObject({ outcome: 'answered', rings: 3, inHours: true, repeatCaller: false });
    expect(e?.durationMs).toBe(10_000);
    expect(emu.smsSent).toEqual([]);
  });

  it('missed: the caller gives up after 12 s; call.ended missed and one follow-up SMS', async () => {
    const { emu, mgr, sink, ended, pass, ringUntil } = await boot();
    const idx = emu.incomingCall(ALICE);
    await ringUntil(3); // 6 s
    pass(6);
    emu.callerHangsUp(idx);
    await waitFor(() => ended().length === 1, 'call.ended');
    expect(ended()[0]).toMatchObject({ outcome: 'missed', timeToAnswerMs: null, durationMs: 0 });
    expect(ended()[0]?.rings).toBeGreaterThanOrEqual(3);
    await emu.waitUntil(() => emu.smsSent.length > 0, 3000, 'follow-up SMS');
    expect(emu.smsSent).toEqual([{ to: ALICE, text: 'Sorry we missed your call', parts: 1 }]);
    await waitFor(() => sink.ofType('call.followup_sms').length === 1, 'call.followup_sms');
    expect(sink.ofType('call.followup_sms')[0]).toMatchObject({ number: ALICE, status: 'sent' });
    expect(mgr.snapshot().missedCount).toBe(1);
    expect(emu.commands.some((c) => /^ATA$|^AT\+CTFR/.test(c))).toBe(false);
  });

  it('abandoned: the caller hangs up within 5 s; no follow-up SMS', async () => {
    const { emu, mgr, ended, pass, ringUntil } = await boot();
    const idx = emu.incomingCall(BOB);
    await ringUntil(1);
    pass(5); // the boundary itself: rang exactly abandonedMaxS
    emu.callerHangsUp(idx);
    await waitFor(() => ended().length === 1, 'call.ended');
    expect(ended()[0]).toMatchObject({ outcome: 'abandoned', number: BOB });
    await mgr.idle(); // the follow-up decision has been taken
    expect(emu.smsSent).toEqual([]);
  });

  it('voicemail after the ring timeout: the box answers at 20 s and the recorder hook gets the call', async () => {
    const { emu, sink, voicemails, ended, mgr, clock, pass, ringUntil } = await boot({
      settings: { calls: { inHours: 'ring-then-voicemail' } },
    });
    const idx = emu.incomingCall(ALICE);
    await ringUntil(1);
    clock.advance(19_999);
    await mgr.idle();
    expect(emu.commands).not.toContain('ATA');
    clock.advance(1);
    await emu.waitForCommand(/^ATA$/, 5000);
    await waitFor(() => voicemails.length === 1, 'voicemail hook');
    expect(voicemails[0]).toMatchObject({ callId: sink.ofType('call.incoming')[0]?.callId, number: ALICE });
    expect(mgr.snapshot().inVoicemail).toBe(true);
    await waitFor(() => emu.calls[0]?.stat === 'active', 'voicemail call active');
    pass(15);
    emu.callerHangsUp(idx);
    await waitFor(() => ended().length === 1, 'call.ended');
    expect(sink.ofType('call.answered')[0]).toMatchObject({ by: 'voicemail' });
    expect(ended()[0]).toMatchObject({ outcome: 'voicemail', timeToAnswerMs: null });
    expect(ended()[0]?.durationMs).toBe(15_000);
    expect(emu.smsSent).toEqual([]);
  });

  it('after hours (rollover mode): deflected to the answering service at once with AT+CTFR', async () => {
    const { emu, sink, ended } = await boot({
      settings: { hours: { weekly: { thu: [{ open: '08:00', close: '12:00' }] } }, calls: { afterHours: 'rollover' } },
      startAt: '2026-11-26T22:00:00Z', // Thursday 22:00 UTC: closed
    });
    emu.incomingCall(BOB);
    await waitFor(() => ended().length === 1, 'call.ended');
    expect(emu.deflections).toEqual([{ number: BOB, to: ROLLOVER }]);
    expect(sink.ofType('call.incoming')[0]).toMatchObject({ inHours: false });
    expect(sink.ofType('call.rolled_over')[0]).toMatchObject({ to: ROLLOVER, how: 'deflect' });
    expect(ended()[0]).toMatchObject({ outcome: 'rolled_over', inHours: false });
    expect(ended()[0]?.rings).toBeLessThanOrEqual(1);
  });

  it('in hours (ring-then-rollover): deflected after the ring timeout', async () => {
    const { emu, mgr, ended, clock, ringUntil } = await boot();
    emu.incomingCall(ALICE);
    await ringUntil(6); // 15 s
    clock.advance(4999);
    await mgr.idle();
    expect(emu.commands.some((c) => c.startsWith('AT+CTFR'))).toBe(false);
    clock.advance(1);
    await emu.waitForCommand(/^AT\+CTFR/, 5000);
    await waitFor(() => ended().length === 1, 'call.ended');
    expect(ended()[0]).toMatchObject({ outcome: 'rolled_over' });
    expect(ended()[0]?.rings).toBeGreaterThanOrEqual(6);
    expect(emu.deflections).toEqual([{ number: ALICE, to: ROLLOVER }]);
  });

  it('a withheld caller: tracked with number null, never texted', async () => {
    const { emu, mgr, sink, ended, pass, ringUntil } = await boot();
    const idx = emu.incomingCall(null);
    await ringUntil(1);
    pass(11);
    emu.callerHangsUp(idx);
    await waitFor(() => ended().length === 1, 'call.ended');
    expect(sink.ofType('call.incoming')[0]).toMatchObject({ number: null, withheld: true });
    expect(ended()[0]).toMatchObject({ outcome: 'missed', number: null, withheld: true });
    await mgr.idle(); // the follow-up decision has been taken
    expect(emu.smsSent).toEqual([]);
  });

  it('two callers back to back: two calls with their own ids; the same number again is a repeat caller', async () => {
    const { emu, mgr, sink, ended, pass } = await boot();
    const a = emu.incomingCall(ALICE);
    await waitFor(() => mgr.snapshot().ringing, 'ringing');
    await mgr.answer('handset');
    await waitFor(() => emu.calls[0]?.stat === 'active', 'first call active');
    pass(5);
    emu.callerHangsUp(a);
    await waitFor(() => ended().length === 1, 'first call.ended');
    const b = emu.incomingCall(ALICE);
    await waitFor(() => sink.ofType('call.incoming').length === 2, 'second call.incoming');
    pass(11);
    emu.callerHangsUp(b);
    await waitFor(() => ended().length === 2, 'second call.ended');
    expect(ended().map((e) => e.outcome)).toEqual(['answered', 'missed']);
    expect(ended()[0]?.callId).not.toBe(ended()[1]?.callId);
    expect(sink.ofType('call.incoming').map((e) => e.repeatCaller)).toEqual([false, true]);
  });

  it('call waiting: the second caller is tracked as waiting and answered with AT+CHLD=2', async () => {
    const { emu, mgr, sink, ended } = await boot();
    const a = emu.incomingCall(ALICE);
    await waitFor(() => mgr.snapshot().ringing, 'ringing');
    await mgr.answer('handset');
    await waitFor(() => mgr.snapshot().inCall, 'in call');
    const b = emu.incomingCall(BOB);
    await waitFor(() => mgr.snapshot().waiting, 'waiting call');
    expect(sink.ofType('call.incoming')[1]).toMatchObject({ number: BOB, waiting: true });
    await mgr.answer('button');
    expect(emu.commands).toContain('AT+CHLD=2');
    await waitFor(() => sink.ofType('call.answered').length === 2, 'second call answered');
    expect(sink.ofType('call.answered')[1]).toMatchObject({ number: BOB, by: 'button' });
    await waitFor(() => emu.calls.find((c) => c.index === a)?.stat === 'held', 'first call held');
    emu.callerHangsUp(b);
    await waitFor(() => ended().length === 1, 'second caller ended');
    emu.callerHangsUp(a);
    await waitFor(() => ended().length === 2, 'both ended');
    expect(ended().map((e) => [e.number, e.outcome])).toEqual([
      [BOB, 'answered'],
      [ALICE, 'answered'],
    ]);
    expect(mgr.snapshot()).toMatchObject({ inCall: false, waiting: false, calls: [] });
  });

  it('on the day the clocks go forward (New York): 08:59 EDT is after hours, 09:00 EDT in hours', async () => {
    // 2026-03-08 12:59:40 UTC = 08:59:40 EDT (on the old EST offset it would be 07:59:40)
    const { emu, mgr, sink, ended, pass } = await boot({
      settings: {
        clinic: { timezone: 'America/New_York' },
        hours: { weekly: { sun: [{ open: '09:00', close: '12:00' }] } },
        calls: { inHours: 'ring-then-rollover', afterHours: 'voicemail' },
      },
      startAt: '2026-03-08T12:59:40Z',
    });
    const a = emu.incomingCall(ALICE);
    await emu.waitForCommand(/^ATA$/);
    await waitFor(() => mgr.snapshot().inVoicemail, 'voicemail');
    emu.callerHangsUp(a);
    await waitFor(() => ended().length === 1, 'first call.ended');
    pass(25); // now past 09:00 EDT
    emu.incomingCall(BOB);
    await waitFor(() => sink.ofType('call.incoming').length === 2, 'second call.incoming');
    pass(20); // the ring timeout
    await emu.waitForCommand(/^AT\+CTFR/);
    await waitFor(() => ended().length === 2, 'second call.ended');
    expect(sink.ofType('call.incoming').map((e) => e.inHours)).toEqual([false, true]);
    expect(ended().map((e) => e.outcome)).toEqual(['voicemail', 'rolled_over']);
  });

  it('the follow-up SMS goes once per number per window, and never to withheld or excluded numbers', async () => {
    const { emu, mgr, ended, sink, pass } = await boot();
    for (const [i, n] of [ALICE, ALICE, null, '+15559990123'].entries()) {
      const idx = emu.incomingCall(n);
      await waitFor(() => sink.ofType('call.incoming').length === i + 1, `call.incoming ${i + 1}`);
      pass(11);
      emu.callerHangsUp(idx);
      await waitFor(() => ended().length === i + 1, `call.ended ${i + 1}`);
      await mgr.idle(); // its follow-up SMS sent or skipped
    }
    expect(ended().map((e) => e.outcome)).toEqual(['missed', 'missed', 'missed', 'missed']);
    expect(emu.smsSent).toEqual([{ to: ALICE, text: 'Sorry we missed your call', parts: 1 }]);
    expect(sink.ofType('call.followup_sms')).toHaveLength(1);
  });
});
