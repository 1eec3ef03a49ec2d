import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeviceSettingsSchema } from '../../shared/contract/settings.js';
import { MemoryEventSink } from '../events.js';
import { attachPanicButton, PanicController, panicSmsText } from './panic.js';
import { PanicButton } from './panic-button.js';

const timing = { debounceMs: 30, holdMs: 1000, doublePressMs: 600, stuckMs: 60_000 };

function settings(contacts = ['+15550001111', '+15550002222']) {
  const s = Value.Default(DeviceSettingsSchema, {}) as ReturnType<typeof Value.Default>;
  const d = Value.Cast(DeviceSettingsSchema, s);
  d.clinic.name = 'Main St Clinic';
  d.clinic.timezone = 'UTC';
  d.panic.contacts = contacts;
  return d;
}

class FakeModem {
  sent: { to: string; text: string; at: number }[] = [];
  failNext = 0;
  async sendSms(to: string, text: string): Promise<number[]> {
    await new Promise((r) => setTimeout(r, 500)); // the network takes a moment
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('+CMS ERROR: 332 network timeout');
    }
    this.sent.push({ to, text, at: Date.now() });
    return [this.sent.length];
  }
}

function setup(opts: { link?: boolean; contacts?: string[] } = {}) {
  const sink = new MemoryEventSink();
  const modem = new FakeModem();
  const s = settings(opts.contacts);
  const controller = new PanicController({
    sink,
    modem: () => modem,
    settings: () => s,
    boxName: 'CB-0001',
    smsRetryMinS: 15,
    smsRetryMaxS: 300,
    ackShowMs: 60_000,
  });
  controller.setLink(opts.link ?? true);
  const button = new PanicButton('gpio', () => timing);
  attachPanicButton(button, controller);
  const indicator: string[] = [];
  controller.on('indicator', (s) => indicator.push(s));
  return { sink, modem, controller, button, indicator, settings: s };
}

/** `n` raw transitions 0.5 ms apart, alternating, starting from the button's current raw level. */
function bounce(button: PanicButton, n: number, from: boolean): boolean {
  let level = from;
  for (let i = 0; i < n; i++) {
    level = !level;
    button.input(level);
    vi.advanceTimersByTime(0.5);
  }
  return level;
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-26T14:05:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('panic button gestures', () => {
  it('a bounce storm (100 transitions in 50 ms) is one press', async () => {
    const { button, sink } = setup();
    const presses: number[] = [];
    const releases: number[] = [];
    button.on('press', () => presses.push(Date.now()));
    button.on('release', () => releases.push(Date.now()));
    // 51 edges as the contact closes (ends pressed), 49 as it opens (ends released): 100 in 50 ms
    expect(bounce(button, 51, false)).toBe(true);
    await vi.advanceTimersByTimeAsync(200);
    expect(bounce(button, 49, true)).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    expect(presses).toHaveLength(1);
    expect(releases).toHaveLength(1);
    // a single short press is not a panic
    expect(sink.events).toHaveLength(0);
  });

  it('pure noise (100 edges ending released) is no press at all', async () => {
    const { button } = setup();
    const presses: number[] = [];
    button.on('press', () => presses.push(Date.now()));
    expect(bounce(button, 100, false)).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(presses).toHaveLength(0);
  });

  it('a bouncy press held for a second is exactly one panic', async () => {
    const { button, sink } = setup();
    bounce(button, 51, false);
    await vi.advanceTimersByTimeAsync(1200);
    bounce(button, 49, true);
    await vi.advanceTimersByTimeAsync(2000);
    expect(sink.events.map((e) => e.type)).toEqual(['panic.pressed']);
    expect(sink.ofType('panic.pressed')[0]!.source).toBe('gpio');
  });

  it('a release before holdMs is not a panic; a double press is', async () => {
    const { button, sink } = setup();
    button.input(true);
    await vi.advanceTimersByTimeAsync(400);
    button.input(false);
    await vi.advanceTimersByTimeAsync(2000);
    expect(sink.events).toHaveLength(0);
    button.input(true);
    await vi.advanceTimersByTimeAsync(150);
    button.input(false);
    await vi.advanceTimersByTimeAsync(200);
    button.input(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(sink.events.map((e) => e.type)).toEqual(['panic.pressed']);
  });

  it('a hold of two minutes is one panic and one fault, not a storm', async () => {
    const { button, sink, controller } = setup();
    const faults: boolean[] = [];
    controller.on('buttonFault', (f) => faults.push(f));
    button.input(true);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sink.ofType('panic.fault')).toEqual([{ source: 'gpio', fault: 'stuck: held down for 60 s' }]);
    expect(sink.ofType('panic.pressed')).toHaveLength(1);
    button.input(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(faults).toEqual([true, false]);
    expect(sink.ofType('panic.fault')).toHaveLength(1);
  });

  it('a button stuck down at start-up reports a fault and raises no panic', async () => {
    const { button, sink } = setup();
    button.init(true);
    await vi.advanceTimersByTimeAsync(180_000);
    expect(sink.events.map((e) => e.type)).toEqual(['panic.fault']);
  });
});

describe('panic flow', () => {
  async function holdPress(button: PanicButton) {
    button.input(true);
    await vi.advanceTimersByTimeAsync(1100);
    button.input(false);
    await vi.advanceTimersByTimeAsync(100);
  }

  it('a press then a cancel sends nothing', async () => {
    const { button, sink, modem, indicator } = setup({ link: false });
    await holdPress(button);
    button.input(true);
    await vi.advanceTimersByTimeAsync(200);
    button.input(false);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(modem.sent).toEqual([]);
    expect(sink.events.map((e) => e.type)).toEqual(['panic.pressed', 'panic.cancelled']);
    expect(indicator).toEqual(['pending', 'idle']);
  });

  it('the cancelling press, even held, does not raise a new panic', async () => {
    const { button, sink } = setup();
    await holdPress(button);
    button.input(true);
    await vi.advanceTimersByTimeAsync(3000);
    button.input(false);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(sink.events.map((e) => e.type)).toEqual(['panic.pressed', 'panic.cancelled']);
  });

  it('the press is recorded before anything else, and an ack in time means no SMS', async () => {
    const { button, sink, modem, controller, indicator } = setup();
    await holdPress(button);
    expect(sink.events.map((e) => e.type)).toEqual(['panic.pressed']);
    const panicId = sink.ofType('panic.pressed')[0]!.panicId;
    await vi.advanceTimersByTimeAsync(5000);
    expect(await controller.handleAck({ panicId, by: 'ops:alice' })).toEqual({ acknowledged: true });
    expect(await controller.handleAck({ panicId, by: 'ops:alice' })).toEqual({ acknowledged: true });
    expect(await controller.handleAck({ panicId: '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a', by: 'x' })).toEqual({
      acknowledged: false,
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(modem.sent).toEqual([]);
    expect(sink.events.map((e) => e.type)).toEqual(['panic.pressed', 'panic.acknowledged']);
    expect(indicator).toEqual(['pending', 'sent', 'acknowledged', 'idle']);
  });

  it('no ack within ackTimeoutS: SMS to every contact with clinic name and time, recorded', async () => {
    const { button, sink, modem, indicator } = setup();
    const t0 = Date.now();
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(9000);
    expect(modem.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(3000);
    expect(modem.sent.map((s) => s.to)).toEqual(['+15550001111', '+15550002222']);
    expect(modem.sent[0]!.text).toContain('Main St Clinic');
    expect(modem.sent[0]!.text).toContain('CB-0001');
    expect(modem.sent[0]!.text).toContain('14:05');
    // the ack timeout counts from the confirmed press (1 s hold): SMS accepted within 10 s + sending time
    expect(modem.sent[0]!.at - t0).toBeLessThanOrEqual(1000 + 10_000 + 500 + 30);
    expect(sink.ofType('panic.sms').map((s) => [s.to, s.status, s.attempt])).toEqual([
      ['+15550001111', 'sent', 1],
      ['+15550002222', 'sent', 1],
    ]);
    expect(indicator.at(-1)).toBe('escalated');
    await vi.advanceTimersByTimeAsync(30 * 60_000);
    expect(modem.sent).toHaveLength(2);
  });

  it('with no link, SMS goes out right after the cancel window', async () => {
    const { button, modem } = setup({ link: false });
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(2500);
    expect(modem.sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1500);
    expect(modem.sent.length).toBeGreaterThan(0);
  });

  it('the link dropping while waiting for the ack starts the SMS at once', async () => {
    const { button, modem, controller } = setup({ link: true });
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(4000);
    expect(modem.sent).toHaveLength(0);
    controller.setLink(false);
    await vi.advanceTimersByTimeAsync(1100);
    expect(modem.sent).toHaveLength(2);
  });

  it('retries rounds with backoff until one SMS is accepted; an ack stops them', async () => {
    const { button, sink, modem } = setup({ contacts: ['+15550001111'] });
    modem.failNext = 3;
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(11_000); // round 1 fails
    await vi.advanceTimersByTimeAsync(15_500); // round 2 (after 15 s) fails
    await vi.advanceTimersByTimeAsync(30_500); // round 3 (after 30 s) fails
    expect(modem.sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(60_500); // round 4 (after 60 s) is accepted
    expect(modem.sent).toHaveLength(1);
    expect(sink.ofType('panic.sms').map((s) => [s.status, s.attempt])).toEqual([
      ['failed', 1],
      ['failed', 2],
      ['failed', 3],
      ['sent', 4],
    ]);
    expect(sink.ofType('panic.sms')[0]!.reason).toContain('CMS ERROR');
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(sink.ofType('panic.sms')).toHaveLength(4);
  });

  it('an ack during the retries stops them', async () => {
    const { button, sink, modem, controller } = setup({ contacts: ['+15550001111'] });
    modem.failNext = 100;
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(12_000);
    const panicId = sink.ofType('panic.pressed')[0]!.panicId;
    await controller.handleAck({ panicId, by: 'ops:bob' });
    const n = sink.ofType('panic.sms').length;
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(sink.ofType('panic.sms')).toHaveLength(n);
    expect(sink.events.at(-1)!.type).toBe('panic.acknowledged');
  });

  it('a second panic while the first waits is the same incident; after an SMS escalation it is a new one', async () => {
    const { button, sink, modem, indicator } = setup();
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(5000);
    await holdPress(button); // cancel window over: not a cancel, and the same incident
    expect(sink.ofType('panic.pressed')).toHaveLength(1);
    expect(sink.ofType('panic.cancelled')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(10_000); // SMS sent: escalated
    expect(indicator.at(-1)).toBe('escalated');
    expect(modem.sent).toHaveLength(2);
    await holdPress(button);
    const ids = sink.ofType('panic.pressed').map((p) => p.panicId);
    expect(ids).toHaveLength(2);
    expect(ids[0]).not.toBe(ids[1]);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(modem.sent).toHaveLength(4);
  });

  it('no contacts configured is a fault, recorded once', async () => {
    const { button, sink } = setup({ contacts: [] });
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sink.ofType('panic.fault')).toEqual([{ source: 'sms', fault: 'no escalation contacts configured' }]);
  });

  it('a failing outbox does not stop the SMS fallback', async () => {
    const { button, modem, controller } = setup({ link: false });
    const failing = { record: async () => Promise.reject(new Error('disk full')) };
    (controller as unknown as { opts: { sink: unknown } }).opts.sink = failing;
    await holdPress(button);
    await vi.advanceTimersByTimeAsync(5000);
    expect(modem.sent).toHaveLength(2);
  });

  it('panicSmsText names clinic, box and local time', () => {
    const text = panicSmsText(
      { name: 'Praxis Nord', timezone: 'Europe/Berlin' },
      'CB-9',
      new Date('2026-11-26T14:05:00Z'),
    );
    expect(text).toContain('Praxis Nord');
    expect(text).toContain('CB-9');
    expect(text).toContain('15:05');
  });
});

describe('panic SMS fallback that fails unexpectedly', () => {
  it('is recorded as a panic.fault, not left stuck, and the next trigger starts it again', async () => {
    const sink = new MemoryEventSink();
    const modem = new FakeModem();
    const s = settings(['+15550001111']);
    let broken = false;
    const controller = new PanicController({
      sink,
      modem: () => modem,
      settings: () => {
        if (broken) throw new Error('settings unreadable');
        return s;
      },
      boxName: 'CB-0001',
      smsRetryMinS: 15,
      smsRetryMaxS: 300,
      ackShowMs: 60_000,
    });
    controller.setLink(true);
    const button = new PanicButton('gpio', () => timing);
    attachPanicButton(button, controller);
    button.input(true);
    await vi.advanceTimersByTimeAsync(1100);
    button.input(false);
    await vi.advanceTimersByTimeAsync(100);
    await vi.advanceTimersByTimeAsync(5000);
    broken = true;
    controller.setLink(false); // starts the fallback, whose round now throws
    await vi.advanceTimersByTimeAsync(100);
    expect(sink.ofType('panic.fault')).toEqual([{ source: 'sms', fault: 'SMS fallback failed: settings unreadable' }]);
    expect(modem.sent).toEqual([]);
    broken = false;
    controller.setLink(true);
    controller.setLink(false); // the next trigger: not stuck as "running"
    await vi.advanceTimersByTimeAsync(1000);
    expect(modem.sent.map((m) => m.to)).toEqual(['+15550001111']);
    controller.stop();
  });
});
