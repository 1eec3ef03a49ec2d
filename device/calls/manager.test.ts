import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { FakeModem } from '../../test/helpers/fake-modem.js';
import { MemoryEventSink } from '../events.js';
import {
  CallManager,
  FORWARDING_RETRY_MS,
  VOICEMAIL_RESULT_WAIT_MS,
  type VoicemailCall,
  type VoicemailResult,
} from './manager.js';
import { type DeepPartial, mergePartial, settingsFrom } from './settings.js';
import { type CallStore, MemoryCallStore } from './store.js';

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
    repeatCallerWindowH: 24,
  },
  rollover: { number: ROLLOVER, networkForwarding: true, noReplyTimeS: 25 },
  followUpSms: { enabled: true, text: 'Sorry we missed your call', windowH: 24, excludePrefixes: ['+1555999'] },
};

let ids = 0;
function setup(
  over: DeepPartial<DeviceSettings> = {},
  opts: {
    store?: CallStore;
    modem?: FakeModem;
    voicemailResult?: (callId: string) => Promise<VoicemailResult>;
  } = {},
) {
  const modem = opts.modem ?? new FakeModem();
  const sink = new MemoryEventSink();
  const store = opts.store ?? new MemoryCallStore();
  const box = { settings: settingsFrom(mergePartial(BASE, over)) };
  const voicemails: VoicemailCall[] = [];
  const mgr = new CallManager({
    modem,
    sink,
    store,
    settings: () => box.settings,
    newCallId: () => `call-${++ids}`,
    onVoicemail: (v) => voicemails.push(v),
    ...(opts.voicemailResult ? { voicemailResult: opts.voicemailResult } : {}),
    provisionForwarding: false,
  });
  const types = () => sink.events.map((e) => e.type);
  const step = async (ms: number) => {
    await vi.advanceTimersByTimeAsync(ms);
    await mgr.idle();
  };
  return { modem, sink, store, box, mgr, voicemails, types, step };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.parse('2026-11-26T15:00:00Z')); // a Thursday
});
afterEach(() => {
  vi.useRealTimers();
});

describe('CallManager: outcomes', () => {
  it('answered on the third ring by the button: figures in call.answered and call.ended', async () => {
    const { modem, sink, mgr, step, types } = setup();
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(5000);
    modem.ring(ALICE);
    await step(5000);
    modem.ring(ALICE);
    await step(1000);
    expect(mgr.snapshot()).toMatchObject({ ringing: true, inCall: false });
    expect(await mgr.answer('button')).toBe(sink.ofType('call.incoming')[0]?.callId);
    await step(60_000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(types()).toEqual(['call.incoming', 'call.answered', 'call.ended']);
    expect(sink.ofType('call.incoming')[0]).toMatchObject({
      number: ALICE,
      withheld: false,
      inHours: true,
      waiting: false,
    });
    expect(sink.ofType('call.answered')[0]).toMatchObject({ by: 'button', rings: 3, timeToAnswerMs: 11_000 });
    expect(sink.ofType('call.ended')[0]).toMatchObject({
      outcome: 'answered',
      rings: 3,
      timeToAnswerMs: 11_000,
      durationMs: 60_000,
      repeatCaller: false,
      inHours: true,
    });
    const callIds = new Set(sink.events.map((e) => (e.body as { callId: string }).callId));
    expect(callIds.size).toBe(1);
    expect(mgr.snapshot()).toMatchObject({ ringing: false, inCall: false, missedCount: 0, calls: [] });
    await mgr.stop();
  });

  it('answered elsewhere: the network reports the call active -> answered by network', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const idx = modem.incoming(BOB);
    await step(3000);
    modem.networkAnswers(idx);
    await step(10_000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(sink.ofType('call.answered')[0]).toMatchObject({ by: 'network', rings: 1, timeToAnswerMs: 3000 });
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'answered', durationMs: 10_000 });
    await mgr.stop();
  });

  it('missed: the caller hangs up after abandonedMaxS and before the ring timeout', async () => {
    const { modem, sink, mgr, step, types } = setup();
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(5000);
    modem.ring(ALICE);
    await step(7000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(types()).toEqual(['call.incoming', 'call.ended', 'call.followup_sms']);
    expect(sink.ofType('call.ended')[0]).toMatchObject({
      outcome: 'missed',
      rings: 2,
      timeToAnswerMs: null,
      durationMs: 0,
    });
    expect(mgr.snapshot().missedCount).toBe(1);
    mgr.acknowledgeMissed();
    expect(mgr.snapshot().missedCount).toBe(0);
    expect(modem.commands.filter((c) => c.startsWith('deflect') || c === 'answer')).toEqual([]);
    await mgr.stop();
  });

  it('abandoned: the caller hangs up within abandonedMaxS; no follow-up SMS', async () => {
    const { modem, sink, mgr, step, types } = setup();
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(4000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(types()).toEqual(['call.incoming', 'call.ended']);
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'abandoned', rings: 1 });
    expect(modem.sent).toEqual([]);
    await mgr.stop();
  });

  it('voicemail after the ring timeout (ring-then-voicemail): the box answers and the recorder hook runs', async () => {
    const { modem, sink, mgr, step, voicemails, types } = setup({ calls: { inHours: 'ring-then-voicemail' } });
    await mgr.start();
    const idx = modem.incoming(ALICE);
    for (let i = 0; i < 3; i++) {
      await step(6000);
      modem.ring(ALICE);
    }
    await step(1999);
    expect(modem.commands).not.toContain('answer');
    await step(1);
    expect(modem.commands).toContain('answer');
    expect(voicemails).toEqual([
      // in hours and nobody answered: the "all staff busy" greeting
      { callId: sink.ofType('call.incoming')[0]?.callId, number: ALICE, maxLengthMs: 120_000, situation: 'busy' },
    ]);
    expect(mgr.snapshot()).toMatchObject({ inVoicemail: true, ringing: false });
    await step(30_000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(types()).toEqual(['call.incoming', 'call.answered', 'call.ended']);
    expect(sink.ofType('call.answered')[0]).toMatchObject({ by: 'voicemail', rings: 4, timeToAnswerMs: 20_000 });
    expect(sink.ofType('call.ended')[0]).toMatchObject({
      outcome: 'voicemail',
      durationMs: 30_000,
      timeToAnswerMs: null,
    });
    expect(modem.sent).toEqual([]);
    await mgr.stop();
  });

  it('hangs up a voicemail that outlasts voicemail.maxLengthS', async () => {
    const { modem, sink, mgr, step } = setup({ calls: { inHours: 'voicemail' }, voicemail: { maxLengthS: 30 } });
    await mgr.start();
    modem.incoming(ALICE);
    await step(0);
    expect(sink.ofType('call.answered')[0]).toMatchObject({ by: 'voicemail' });
    // 30 s of message after a greeting of at most 60 s, plus 10 s.
    await step(99_000);
    expect(modem.commands).not.toContain('hangUp');
    await step(1000);
    expect(modem.commands).toContain('hangUp');
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'voicemail', durationMs: 100_000 });
    await mgr.stop();
  });

  it('a voicemail whose recording failed ends as voicemail_failed with the reason, counted as missed', async () => {
    const asked: string[] = [];
    const { modem, sink, mgr, step } = setup(
      { calls: { inHours: 'voicemail' } },
      {
        voicemailResult: async (callId) => {
          asked.push(callId);
          return { stored: false, reason: 'recording failed: ALSA device busy' };
        },
      },
    );
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(0);
    await step(20_000);
    modem.callerHangsUp(idx);
    await step(0);
    const ended = sink.ofType('call.ended')[0];
    expect(asked).toEqual([ended?.callId]);
    expect(ended).toMatchObject({
      outcome: 'voicemail_failed',
      voicemailError: 'recording failed: ALSA device busy',
      durationMs: 20_000,
    });
    // The missed-call indicator counts it, and the caller gets the follow-up SMS like a missed caller.
    expect(mgr.snapshot().missedCount).toBe(1);
    expect(modem.sent.map((m) => m.to)).toEqual([ALICE]);
    await mgr.stop();
  });

  it('a kept voicemail stays "voicemail"; a recorder that never answers counts as failed after the bound', async () => {
    const kept = setup({ calls: { inHours: 'voicemail' } }, { voicemailResult: async () => ({ stored: true }) });
    await kept.mgr.start();
    const i1 = kept.modem.incoming(ALICE);
    await kept.step(10_000);
    kept.modem.callerHangsUp(i1);
    await kept.step(0);
    expect(kept.sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'voicemail' });
    expect(kept.sink.ofType('call.ended')[0]).not.toHaveProperty('voicemailError');
    expect(kept.mgr.snapshot().missedCount).toBe(0);
    await kept.mgr.stop();

    const stuck = setup({ calls: { inHours: 'voicemail' } }, { voicemailResult: () => new Promise(() => undefined) });
    await stuck.mgr.start();
    const i2 = stuck.modem.incoming(BOB);
    await stuck.step(10_000);
    stuck.modem.callerHangsUp(i2);
    await vi.advanceTimersByTimeAsync(VOICEMAIL_RESULT_WAIT_MS - 1);
    expect(stuck.sink.ofType('call.ended')).toEqual([]);
    await stuck.step(1);
    expect(stuck.sink.ofType('call.ended')[0]).toMatchObject({
      outcome: 'voicemail_failed',
      voicemailError: `the recording was not stored within ${VOICEMAIL_RESULT_WAIT_MS / 1000} s`,
    });
    await stuck.mgr.stop();
  });

  it('rolls over after the ring timeout (ring-then-rollover): AT+CTFR to the rollover number', async () => {
    const { modem, sink, mgr, step, types } = setup();
    await mgr.start();
    modem.incoming(ALICE);
    await step(19_000);
    expect(modem.commands).toEqual([]);
    await step(1000);
    expect(modem.commands).toEqual([`deflect ${ROLLOVER}`]);
    expect(types()).toEqual(['call.incoming', 'call.rolled_over', 'call.ended']);
    expect(sink.ofType('call.rolled_over')[0]).toMatchObject({ to: ROLLOVER, how: 'deflect', rings: 1 });
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'rolled_over', durationMs: 0 });
    expect(modem.sent).toEqual([]);
    await mgr.stop();
  });

  it('falls back to voicemail when the deflect fails or no rollover number is set', async () => {
    const a = setup();
    a.modem.failNext.set('deflect', new CallboxError(ErrorCode.ModemCommandFailed, '+CME ERROR: 3'));
    await a.mgr.start();
    a.modem.incoming(ALICE);
    await a.step(20_000);
    expect(a.modem.commands).toEqual([`deflect ${ROLLOVER}`, 'answer']);
    expect(a.types()).toEqual(['call.incoming', 'call.answered']);
    expect(a.sink.ofType('call.answered')[0]?.by).toBe('voicemail');
    await a.mgr.stop();

    const b = setup({ rollover: { number: null } });
    await b.mgr.start();
    b.modem.incoming(ALICE);
    await b.step(20_000);
    expect(b.modem.commands).toEqual(['answer']);
    await b.mgr.stop();
  });

  it('after hours with mode rollover: deflected at once', async () => {
    const { modem, sink, mgr, step } = setup({
      hours: { weekly: { thu: [{ open: '08:00', close: '12:00' }] } },
      calls: { afterHours: 'rollover' },
    });
    await mgr.start();
    modem.incoming(BOB);
    await step(0);
    expect(modem.commands).toEqual([`deflect ${ROLLOVER}`]);
    expect(sink.ofType('call.incoming')[0]).toMatchObject({ inHours: false });
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'rolled_over', inHours: false });
    await mgr.stop();
  });

  it('a withheld caller is tracked with number null and never texted', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const idx = modem.incoming(null);
    await step(12_000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(sink.ofType('call.incoming')[0]).toMatchObject({ number: null, withheld: true, repeatCaller: false });
    expect(sink.ofType('call.ended')[0]).toMatchObject({ number: null, withheld: true, outcome: 'missed' });
    expect(modem.sent).toEqual([]);
    await mgr.stop();
  });

  it('a late RING for a call AT+CLCC does not list records nothing (no phantom call)', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    modem.ring(ALICE);
    await step(30_000);
    expect(sink.events).toEqual([]);
    expect(modem.commands).toEqual([]);
    await mgr.stop();
  });

  it('a RING with the CLCC list not pushed yet: the call is found by asking AT+CLCC, and the RING counts', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const idx = modem.incoming(ALICE, { push: false, ring: false });
    modem.ring(ALICE);
    await step(6000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'missed', rings: 1 });
    await mgr.stop();
  });

  it('a modem without AT+CLCC: the call is tracked from RINGs and ended when they stop for ringLostAfterS', async () => {
    const { modem, sink, mgr, step } = setup();
    modem.clccUnsupported = true;
    await mgr.start();
    modem.ring(ALICE);
    await step(0);
    expect(mgr.snapshot().ringing).toBe(true);
    await step(9999);
    expect(sink.ofType('call.ended')).toEqual([]);
    await step(1);
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'missed', rings: 1 });
    await mgr.stop();
  });

  it('the network no-reply forwarding took the call: rolled over by forwarding', async () => {
    const { modem, sink, mgr, step } = setup({ calls: { ringTimeoutS: 60 } });
    await mgr.start();
    await mgr.provisionForwarding();
    const idx = modem.incoming(ALICE);
    await step(25_000);
    modem.callerHangsUp(idx); // the network forwarded it after noReplyTimeS
    await step(0);
    expect(sink.ofType('call.rolled_over')[0]).toMatchObject({ how: 'forwarding', to: ROLLOVER });
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'rolled_over' });
    await mgr.stop();
  });
});

describe('CallManager: several calls', () => {
  it('two callers back to back: two calls, separate ids, the second from the same number is a repeat caller', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const a = modem.incoming(ALICE);
    await step(2000);
    await mgr.answer('handset');
    await step(30_000);
    modem.callerHangsUp(a);
    await step(1000);
    const b = modem.incoming(ALICE);
    await step(8000);
    modem.callerHangsUp(b);
    await step(0);
    const ended = sink.ofType('call.ended');
    expect(ended.map((e) => e.outcome)).toEqual(['answered', 'missed']);
    expect(ended[0]?.callId).not.toBe(ended[1]?.callId);
    expect(sink.ofType('call.incoming').map((e) => e.repeatCaller)).toEqual([false, true]);
    expect(ended[1]?.repeatCaller).toBe(true);
    await mgr.stop();
  });

  it('call waiting: a second call during an answered one is tracked and can be answered (AT+CHLD=2)', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const a = modem.incoming(ALICE);
    await step(1000);
    await mgr.answer('handset');
    await step(5000);
    const b = modem.incoming(BOB);
    await step(3000);
    expect(mgr.snapshot()).toMatchObject({ inCall: true, waiting: true, ringing: false });
    expect(sink.ofType('call.incoming')[1]).toMatchObject({ number: BOB, waiting: true });
    await mgr.answer('button');
    expect(modem.commands).toContain('hold 2');
    expect(sink.ofType('call.answered')[1]).toMatchObject({
      number: BOB,
      by: 'button',
      rings: 0,
      timeToAnswerMs: 3000,
    });
    await step(10_000);
    modem.callerHangsUp(b);
    await step(0);
    modem.callerHangsUp(a);
    await step(0);
    expect(sink.ofType('call.ended').map((e) => [e.number, e.outcome, e.durationMs])).toEqual([
      [BOB, 'answered', 10_000],
      [ALICE, 'answered', 18_000],
    ]);
    await mgr.stop();
  });

  it('call waiting unanswered: rolled over after the ring timeout, the first call untouched', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const a = modem.incoming(ALICE);
    await step(1000);
    await mgr.answer('handset');
    modem.incoming(BOB);
    await step(20_000);
    expect(modem.commands).toEqual(['answer', `deflect ${ROLLOVER}`]);
    expect(sink.ofType('call.ended').map((e) => [e.number, e.outcome])).toEqual([[BOB, 'rolled_over']]);
    expect(mgr.snapshot()).toMatchObject({ inCall: true, waiting: false });
    modem.callerHangsUp(a);
    await step(0);
    expect(sink.ofType('call.ended').map((e) => e.outcome)).toEqual(['rolled_over', 'answered']);
    await mgr.stop();
  });

  it('a late RING while a call is answered does not create a phantom call', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    modem.incoming(ALICE);
    await step(1000);
    await mgr.answer('handset');
    modem.ring(ALICE);
    await step(0);
    expect(sink.ofType('call.incoming')).toHaveLength(1);
    await mgr.stop();
  });
});

describe('CallManager: clinic hours and the clock change', () => {
  it('on the day the clocks go forward (New York) a call is in or after hours by the local wall clock', async () => {
    const sunday = [{ open: '09:00', close: '12:00' }];
    const { modem, sink, mgr, step } = setup({
      clinic: { timezone: 'America/New_York' },
      hours: { weekly: { sun: sunday, mon: [], tue: [], wed: [], thu: [], fri: [], sat: [] } },
      calls: { inHours: 'ring-then-rollover', afterHours: 'voicemail' },
    });
    // 2026-03-08 12:30 UTC = 08:30 EDT (it would be 07:30 on yesterday's offset): closed -> voicemail at once
    vi.setSystemTime(Date.parse('2026-03-08T12:30:00Z'));
    await mgr.start();
    const a = modem.incoming(ALICE);
    await step(0);
    expect(sink.ofType('call.incoming')[0]).toMatchObject({ inHours: false });
    expect(sink.ofType('call.answered')[0]).toMatchObject({ by: 'voicemail' });
    modem.callerHangsUp(a);
    await step(0);
    // 13:00 UTC = 09:00 EDT: open -> rings, then rolls over
    vi.setSystemTime(Date.parse('2026-03-08T13:00:00Z'));
    modem.incoming(BOB);
    await step(20_000);
    expect(sink.ofType('call.incoming')[1]).toMatchObject({ inHours: true });
    expect(sink.ofType('call.ended').map((e) => [e.outcome, e.inHours])).toEqual([
      ['voicemail', false],
      ['rolled_over', true],
    ]);
    await mgr.stop();
  });
});

describe('CallManager: restart in the middle of a call', () => {
  it('resumes an answered call from AT+CLCC: no second call.incoming, one call.ended with the full duration', async () => {
    const store = new MemoryCallStore();
    const modem = new FakeModem();
    const first = setup({}, { store, modem });
    await first.mgr.start();
    const idx = modem.incoming(ALICE);
    await first.step(4000);
    await first.mgr.answer('handset');
    await first.step(10_000);
    await first.mgr.stop(); // the process dies; the call goes on
    await first.step(5000);

    const second = setup({}, { store, modem });
    await second.mgr.start();
    await second.step(0);
    expect(second.mgr.snapshot()).toMatchObject({ inCall: true });
    expect(second.types()).toEqual([]);
    await second.step(6000);
    modem.callerHangsUp(idx);
    await second.step(0);
    expect(second.types()).toEqual(['call.ended']);
    const firstId = first.sink.ofType('call.incoming')[0]?.callId;
    expect(second.sink.ofType('call.ended')[0]).toMatchObject({
      callId: firstId,
      outcome: 'answered',
      durationMs: 21_000,
      timeToAnswerMs: 4000,
    });
    expect(await store.openCalls()).toEqual([]);
  });

  it('a call that ended while the box was down is ended once at start; a ringing call keeps its ring timeout', async () => {
    const store = new MemoryCallStore();
    const modem = new FakeModem();
    const first = setup({}, { store, modem });
    await first.mgr.start();
    const a = modem.incoming(ALICE);
    await first.step(1000);
    await first.mgr.answer('handset');
    const b = modem.incoming(BOB);
    await first.step(8000);
    await first.mgr.stop();
    modem.callerHangsUp(a); // nobody listening
    await first.step(2000);

    const second = setup({}, { store, modem });
    await second.mgr.start();
    await second.step(0);
    expect(second.sink.ofType('call.ended').map((e) => [e.number, e.outcome])).toEqual([[ALICE, 'answered']]);
    expect(second.sink.ofType('call.incoming')).toEqual([]);
    // Bob's call started 10 s ago; it rolls over 20 s after its first ring, not 20 s after the restart
    await second.step(9000);
    expect(modem.commands.filter((c) => c.startsWith('deflect'))).toEqual([]);
    await second.step(1000);
    expect(modem.commands.filter((c) => c.startsWith('deflect'))).toEqual([`deflect ${ROLLOVER}`]);
    expect(second.sink.ofType('call.ended').map((e) => [e.number, e.outcome])).toEqual([
      [ALICE, 'answered'],
      [BOB, 'rolled_over'],
    ]);
    await second.mgr.stop();
    expect(modem.calls).toEqual([]);
    void b;
  });
});

describe('CallManager: follow-up SMS', () => {
  async function missCall(ctx: ReturnType<typeof setup>, number: string | null) {
    const idx = ctx.modem.incoming(number);
    await ctx.step(8000);
    ctx.modem.callerHangsUp(idx);
    await ctx.step(0);
  }

  it('texts a missed caller once per window, with the configured text', async () => {
    const ctx = setup();
    await ctx.mgr.start();
    await missCall(ctx, ALICE);
    await ctx.step(3_600_000);
    await missCall(ctx, ALICE);
    expect(ctx.modem.sent).toEqual([{ to: ALICE, text: 'Sorry we missed your call' }]);
    expect(ctx.sink.ofType('call.followup_sms')).toEqual([
      { callId: ctx.sink.ofType('call.ended')[0]?.callId, number: ALICE, status: 'sent' },
    ]);
    await ctx.step(24 * 3_600_000);
    await missCall(ctx, ALICE);
    expect(ctx.modem.sent).toHaveLength(2);
    await ctx.mgr.stop();
  });

  it('never texts withheld, excluded-prefix or national-format numbers, nor when disabled', async () => {
    const ctx = setup();
    await ctx.mgr.start();
    await missCall(ctx, null);
    await missCall(ctx, '+15559990123');
    await missCall(ctx, '5551230003');
    expect(ctx.modem.sent).toEqual([]);
    ctx.box.settings = settingsFrom(mergePartial(BASE, { followUpSms: { enabled: false } }));
    await missCall(ctx, BOB);
    expect(ctx.modem.sent).toEqual([]);
    expect(ctx.sink.ofType('call.ended').map((e) => e.outcome)).toEqual(['missed', 'missed', 'missed', 'missed']);
    await ctx.mgr.stop();
  });

  it('a failed SMS is reported and does not use up the window', async () => {
    const ctx = setup();
    await ctx.mgr.start();
    ctx.modem.failNext.set('sendSms', new CallboxError(ErrorCode.ModemCommandFailed, '+CMS ERROR: 38'));
    await missCall(ctx, ALICE);
    expect(ctx.sink.ofType('call.followup_sms')[0]).toMatchObject({ status: 'failed', reason: '+CMS ERROR: 38' });
    await missCall(ctx, ALICE);
    expect(ctx.sink.ofType('call.followup_sms').map((e) => e.status)).toEqual(['failed', 'sent']);
    expect(ctx.modem.sent).toHaveLength(1);
    await ctx.mgr.stop();
  });
});

describe('CallManager: network forwarding', () => {
  it('provisioning registers busy, no reply (with its time) and not reachable, read back and reported', async () => {
    const { modem, sink, mgr } = setup();
    const states = await mgr.provisionForwarding();
    expect(states).toEqual([
      { reason: 'busy', enabled: true, number: ROLLOVER, confirmed: true },
      { reason: 'no_reply', enabled: true, number: ROLLOVER, confirmed: true },
      { reason: 'not_reachable', enabled: true, number: ROLLOVER, confirmed: true },
    ]);
    expect(modem.commands.filter((c) => c.startsWith('setForwarding'))).toEqual([
      'setForwarding busy on',
      'setForwarding no_reply on 25',
      'setForwarding not_reachable on',
    ]);
    expect(sink.ofType('forwarding.state')).toEqual(states);
    // again: already registered, nothing written, still confirmed
    modem.commands.length = 0;
    expect((await mgr.provisionForwarding()).every((s) => s.confirmed)).toBe(true);
    expect(modem.commands.filter((c) => c.startsWith('setForwarding'))).toEqual([]);
  });

  it('forwarding the network did not confirm is tried again a minute later until it is', async () => {
    const { modem, mgr, step } = setup();
    await mgr.start();
    modem.failNext.set('setForwarding', new CallboxError(ErrorCode.ModemCommandFailed, '+CME ERROR: 30'));
    const first = await mgr.provisionForwarding();
    expect(first.filter((s) => !s.confirmed).map((s) => s.reason)).toEqual(['busy']);
    await step(FORWARDING_RETRY_MS - 1000);
    expect(modem.forwarding.has('busy')).toBe(false);
    await step(2000);
    expect(modem.forwarding.get('busy')).toMatchObject({ number: ROLLOVER });
    // Confirmed now: no further retries.
    modem.commands.length = 0;
    await step(3 * FORWARDING_RETRY_MS);
    expect(modem.commands.filter((c) => c.startsWith('setForwarding'))).toEqual([]);
    await mgr.stop();
  });

  it('provisioning removes conditional forwarding when networkForwarding is off', async () => {
    const { modem, mgr, box } = setup();
    await mgr.provisionForwarding();
    box.settings = settingsFrom(mergePartial(BASE, { rollover: { networkForwarding: false } }));
    const states = await mgr.provisionForwarding();
    expect(states.map((s) => [s.reason, s.enabled, s.confirmed])).toEqual([
      ['busy', false, true],
      ['no_reply', false, true],
      ['not_reachable', false, true],
    ]);
    expect(modem.forwarding.size).toBe(0);
  });

  it('forwarding.set on and off: idempotent, confirmed by query, reported; national-format answers match', async () => {
    const { modem, sink, mgr } = setup();
    modem.nationalForwardingNumbers = true;
    const h = mgr.commandHandlers();
    const ctx = { topic: 't', id: 'i' };
    expect(await h['forwarding.set']?.({ enabled: true }, ctx)).toEqual({
      reason: 'unconditional',
      enabled: true,
      number: ROLLOVER,
      confirmed: true,
    });
    expect(mgr.snapshot().forwardingOn).toBe(true);
    expect(await mgr.setForwarding({ enabled: true })).toMatchObject({ confirmed: true });
    expect(modem.commands.filter((c) => c.startsWith('setForwarding'))).toEqual(['setForwarding unconditional on']);
    expect(await mgr.setForwarding({ enabled: false, reasonText: 'alert resolved' })).toEqual({
      reason: 'unconditional',
      enabled: false,
      number: null,
      confirmed: true,
    });
    expect(mgr.snapshot().forwardingOn).toBe(false);
    expect(sink.ofType('forwarding.state').map((s) => s.enabled)).toEqual([true, true, false]);
    const q = await h['forwarding.query']?.({}, ctx);
    expect(q?.states.map((s) => [s.reason, s.enabled])).toEqual([
      ['unconditional', false],
      ['busy', false],
      ['no_reply', false],
      ['not_reachable', false],
    ]);
  });

  it('reports confirmed: false when the network does not take the change, and the modem error when it fails', async () => {
    const { modem, sink, mgr } = setup();
    modem.ignoreForwardingWrites = true;
    expect(await mgr.setForwarding({ enabled: true, number: BOB })).toEqual({
      reason: 'unconditional',
      enabled: false,
      number: null,
      confirmed: false,
    });
    modem.ignoreForwardingWrites = false;
    modem.failNext.set('setForwarding', new CallboxError(ErrorCode.ModemCommandFailed, '+CME ERROR: 30'));
    await expect(mgr.setForwarding({ enabled: true })).rejects.toMatchObject({ code: ErrorCode.ModemCommandFailed });
    expect(sink.ofType('forwarding.state').map((s) => s.confirmed)).toEqual([false, false]);
  });

  it('rejects bad commands with a clear error and changes nothing', async () => {
    const { modem, mgr, box } = setup();
    await expect(mgr.setForwarding({ enabled: true, number: '555-1234' })).rejects.toMatchObject({
      code: ErrorCode.ValidationFailed,
      message: expect.stringContaining('/number'),
    });
    await expect(mgr.setForwarding({ enabled: 'yes' } as never)).rejects.toMatchObject({
      message: expect.stringContaining('/enabled'),
    });
    box.settings = settingsFrom(mergePartial(BASE, { rollover: { number: null } }));
    await expect(mgr.setForwarding({ enabled: true })).rejects.toMatchObject({
      code: ErrorCode.ValidationFailed,
      message: expect.stringContaining('rollover.number is not set'),
    });
    expect(modem.commands).toEqual([]);
  });

  it('start() provisions in the background and applySettings() re-provisions when the rollover changes', async () => {
    const modem = new FakeModem();
    const sink = new MemoryEventSink();
    const box = { settings: settingsFrom(BASE) };
    const mgr = new CallManager({ modem, sink, settings: () => box.settings });
    await mgr.start();
    await mgr.idle();
    expect([...modem.forwarding.keys()].sort()).toEqual(['busy', 'no_reply', 'not_reachable']);
    mgr.applySettings(); // nothing changed: nothing written
    await mgr.idle();
    expect(modem.commands.filter((c) => c.startsWith('setForwarding'))).toHaveLength(3);
    box.settings = settingsFrom(mergePartial(BASE, { rollover: { number: BOB } }));
    mgr.applySettings();
    await mgr.idle();
    expect(modem.forwarding.get('busy')?.number).toBe(BOB);
    await mgr.stop();
  });
});

describe('CallManager: odd CLCC lists', () => {
  it('an index listed twice in one list is one call', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(0);
    const dup = modem.calls[0];
    if (!dup) throw new Error('no call');
    modem.emit('calls', [dup, { ...dup }]);
    await step(8000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(sink.ofType('call.incoming')).toHaveLength(1);
    expect(sink.ofType('call.ended')).toHaveLength(1);
    await mgr.stop();
  });
});

describe('CallManager: stale lists', () => {
  it('a CLCC list queued before a fresher one does not bring an ended call back', async () => {
    const { modem, sink, mgr, step } = setup({ calls: { inHours: 'voicemail' } });
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(0);
    expect(sink.ofType('call.answered')[0]).toMatchObject({ by: 'voicemail' });
    const active = modem.calls.map((c) => ({ ...c }));
    // The caller hangs up; the manager learns it from a fresh AT+CLCC (a RING it cannot place)
    // while an older pushed list showing the call active is still queued behind it.
    modem.calls = [];
    modem.ring(ALICE);
    modem.emit('calls', active);
    await step(0);
    expect(sink.ofType('call.ended')).toHaveLength(1);
    expect(sink.ofType('call.incoming')).toHaveLength(1);
    expect(mgr.snapshot().calls).toEqual([]);
    void idx;
    await mgr.stop();
  });
});

describe('CallManager: a list read before the end was reported', () => {
  it('does not bring the ended call back, but a real new call on the same index is believed after AT+CLCC', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(8000);
    const stale = modem.calls.map((c) => ({ ...c }));
    modem.callerHangsUp(idx);
    modem.emit('calls', stale); // the driver delivers an AT+CLCC reply it read just before the end
    await step(0);
    expect(sink.ofType('call.incoming')).toHaveLength(1);
    expect(sink.ofType('call.ended')).toHaveLength(1);
    expect(mgr.snapshot().calls).toEqual([]);
    // the same caller calls straight back and the network reuses the index: AT+CLCC confirms it
    modem.calls = stale;
    modem.emit('calls', stale);
    await step(0);
    expect(sink.ofType('call.incoming')).toHaveLength(2);
    expect(mgr.snapshot().ringing).toBe(true);
    await mgr.stop();
  });
});

describe('CallManager: a late end report for a reused index', () => {
  it('does not end the next caller who got the same index', async () => {
    const { modem, sink, mgr, step } = setup();
    await mgr.start();
    const first = modem.incoming(ALICE);
    await step(8000);
    modem.calls = []; // the first caller hangs up; the network gives the next caller the same index at once
    modem.calls.push({
      index: first,
      direction: 'mt',
      stat: 'incoming',
      mode: 'voice',
      multiparty: false,
      number: null,
      numberType: null,
    });
    modem.emit(
      'calls',
      modem.calls.map((c) => ({ ...c })),
    );
    await step(0);
    modem.emit('callEnded', { index: first, reason: 'late NO CARRIER' }); // the end line of the first call, late
    await step(8000);
    expect(sink.ofType('call.ended').map((e) => [e.number, e.outcome])).toEqual([[ALICE, 'missed']]);
    expect(sink.ofType('call.incoming').map((e) => e.number)).toEqual([ALICE, null]);
    expect(mgr.snapshot()).toMatchObject({ ringing: true });
    await mgr.stop();
  });
});

describe('CallManager: started before the modem', () => {
  it('registers network forwarding once the modem reports ready', async () => {
    const modem = new FakeModem();
    modem.state = 'initializing';
    const box = { settings: settingsFrom(BASE) };
    const mgr = new CallManager({ modem, sink: new MemoryEventSink(), settings: () => box.settings });
    await mgr.start();
    await mgr.idle();
    expect(modem.commands).toEqual([]);
    await modem.start();
    await mgr.idle();
    expect([...modem.forwarding.keys()].sort()).toEqual(['busy', 'no_reply', 'not_reachable']);
    await mgr.stop();
  });
});

describe('CallManager: unreadable clinic hours', () => {
  it('still tracks the call (as in hours) when the time zone cannot be used', async () => {
    const { modem, sink, mgr, step, box } = setup();
    box.settings = { ...box.settings, clinic: { ...box.settings.clinic, timezone: 'Mars/Olympus_Mons' } };
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(8000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(sink.ofType('call.incoming')[0]).toMatchObject({ inHours: true });
    expect(sink.ofType('call.ended')[0]).toMatchObject({ outcome: 'missed' });
    await mgr.stop();
  });
});

describe('CallManager: indicators', () => {
  it("reports every change to 'change' listeners, and a failing listener does not stop the call's handling", async () => {
    const { modem, sink, mgr, step } = setup();
    const seen: boolean[] = [];
    mgr.on('change', (s) => seen.push(s.ringing));
    mgr.on('change', () => {
      throw new Error('LED driver fell over');
    });
    await mgr.start();
    const idx = modem.incoming(ALICE);
    await step(8000);
    modem.callerHangsUp(idx);
    await step(0);
    expect(seen).toContain(true);
    expect(seen.at(-1)).toBe(false);
    expect(sink.events.map((e) => e.type)).toEqual(['call.incoming', 'call.ended', 'call.followup_sms']);
    expect(mgr.snapshot().missedCount).toBe(1);
    await mgr.stop();
  });
});
